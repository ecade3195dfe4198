"""Reads see the writes before them (DESIGN 6, Consistency), with no header.

Before a read runs, one statement asks for the organization's last committed position
(every command whose answer was sent before this read arrived is at or below it). The
process's checkpoint watch (projections/watch.py) knows, from the projector's
notifications, how far the read models have got: when they have got there, which is the
common case, the read goes on at once, and its only cost is that one-row index scan.
Otherwise it waits, woken by the projector's commit, re-reading the checkpoints itself
now and then, and after `WAIT_SECONDS` it is refused (`503 not_caught_up`, with
Retry-After), never answered from a model that is behind.

`min_position` (query) or `X-Ledger-Min-Position` (header) ask for at least a position
(typically the `X-Ledger-Position` of a command answered elsewhere); `consistency=eventual`
(query) or `X-Ledger-Consistency: eventual` skip the wait for the head, for callers that
prefer the fastest answer.
"""

from __future__ import annotations

from typing import Annotated, Literal

import asyncpg
from litestar import Request
from litestar.params import QueryParameter

from ledger import errors
from projections import statements
from projections.watch import CheckpointWatch

WAIT_SECONDS = 3.0
Consistency = Annotated[
    Literal["strong", "eventual"] | None,
    QueryParameter(description="eventual: do not wait for the writes answered before this read (default strong)"),
]


class Reads:
    """What a read of the read models needs: the pool it queries, and the checkpoint
    watch it waits on. One object, so a read route takes one injected parameter (litestar
    resolves two dependencies of one route in a task group: 70 us a request)."""

    __slots__ = ("checkpoints", "pool")

    def __init__(self, pool: asyncpg.Pool, checkpoints: CheckpointWatch):
        self.pool, self.checkpoints = pool, checkpoints

    async def caught_up(self, request: Request, min_position: int | None, consistency: str | None = None) -> None:
        wanted = _asked_position(request, min_position)
        eventual = (consistency or request.headers.get("x-ledger-consistency", "")).lower() == "eventual"  # type: ignore[union-attr]  # a header read with a default is a str
        if eventual and not wanted:
            return
        # A position no command was ever given cannot be waited for: the caller's mistake.
        if wanted and wanted > await self.pool.fetchval(statements.READ_POSITIONS_HANDED_OUT):
            raise errors.ValidationFailed("min_position is beyond the ledger's last position", code="unknown_position")
        target = wanted if eventual else max(wanted, await self.pool.fetchval(statements.READ_ORG_HEAD, request.user.org_id))
        if target <= self.checkpoints.reached:
            return
        if not await self.checkpoints.wait(target, timeout=WAIT_SECONDS):
            raise errors.NotCaughtUp(position=target)


def _asked_position(request: Request, min_position: int | None) -> int:
    wanted = min_position or 0
    header = request.headers.get("x-ledger-min-position")
    if header is not None:
        try:
            asked = int(header)
        except ValueError:
            asked = -1
        if not 0 <= asked < 2**63:  # checked before max(): a negative header is refused, not ignored
            raise errors.ValidationFailed("X-Ledger-Min-Position must be a ledger position (an integer)")
        wanted = max(wanted, asked)
    if not 0 <= wanted < 2**63:
        raise errors.ValidationFailed("min_position must be a ledger position")
    return wanted
