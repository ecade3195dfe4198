"""Checkpoints: how far each projection has applied the ledger, and waiting for one.

A checkpoint moves only in the transaction that writes the rows of the events it passes,
so after any crash the rows and the checkpoint agree: resuming from the checkpoint
applies every event exactly once.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterable, Sequence

import asyncpg

from projections import statements
from projections.catalog import READ_MODEL_NAMES

# `wait_for_position` polls (tools and tests waiting for the read models); reads served by
# the API wait on the projector's notifications instead (projections/watch.py).
_FIRST_WAIT, _LONGEST_WAIT = 0.002, 0.02


class CheckpointMoved(Exception):
    """A checkpoint was not where its owner left it: someone else applied events too."""


async def claim_checkpoint(conn: asyncpg.Connection, name: str) -> int:
    """The position projection `name` resumes after (0 the first time)."""
    return await conn.fetchval(statements.CLAIM_CHECKPOINT, name)


async def save_checkpoints(conn: asyncpg.Connection, moves: Sequence[tuple[str, int, int]]) -> None:
    """Move checkpoints (name, from, to); call inside the transaction that applied the events."""
    moved = await conn.fetchval(
        statements.SAVE_CHECKPOINTS, [m[0] for m in moves], [m[1] for m in moves], [m[2] for m in moves]
    )
    if moved != len(moves):
        raise CheckpointMoved(f"a checkpoint of {[m[0] for m in moves]} moved under its owner")


async def wait_for_position(
    pool: asyncpg.Pool | asyncpg.Connection,
    position: int,
    *,
    timeout: float = 2.0,
    projections: Iterable[str] = READ_MODEL_NAMES,
) -> bool:
    """Whether the named projections have applied the ledger up to `position` within `timeout`.

    False also when one is stuck on a dead letter before it, or is not running at all.
    """
    names = sorted(set(projections))
    deadline = time.monotonic() + timeout
    pause = _FIRST_WAIT
    while True:
        if await pool.fetchval(statements.READ_CHECKPOINTS_REACHED, names, position):
            return True
        left = deadline - time.monotonic()
        if left <= 0:
            return False
        await asyncio.sleep(min(pause, left))
        pause = min(pause * 2, _LONGEST_WAIT)
