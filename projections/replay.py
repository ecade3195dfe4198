"""`ledger replay`: rebuild read models from the ledger and swap them in when caught up.

1. Rebuild into fresh tables in schema `REBUILD_SCHEMA`, set-based (rebuild.py), up to a
   settled horizon, then again up to the next one while the ledger keeps growing, until
   what is left is small. The live tables serve reads and the live projectors keep them
   current all along.
2. Take the projections' advisory locks, the ones their projectors own them by. A live
   owner is fenced off the way a dead one is: its session is ended, its open batch rolls
   back, and it stands by until the locks are free again (projector.py). Under the
   locks no live projector writes, and the last events go into the fresh tables.
3. Swap, one projection per transaction: drop its live tables, move the fresh copies into
   their place, and set its checkpoint to the position the copies reached. Reads wait
   for that transaction (milliseconds) and then see the new tables: never a half-built one.
4. Release the locks; a projector takes over from the new checkpoints.
"""

from __future__ import annotations

import asyncio
import hashlib
import time
from collections.abc import Callable, Sequence

import asyncpg
import msgspec
import structlog

from ledger import errors
from ledger.db import connect
from ledger.feed import settled_horizon
from projections import ownership
from projections.catalog import read_models
from projections.projection import ReadModel
from projections.rebuild import Rebuild
from projections.statements import READ_MODEL_SCHEMA, in_schema

log = structlog.get_logger("replay")
REBUILD_SCHEMA = "projections_replay"  # named after the command an operator ran
# One rebuild at a time: they would share the fresh schema.
_REBUILD_LOCK = int.from_bytes(hashlib.blake2b(b"ledger replay", digest_size=8).digest(), "big", signed=True)
_CLOSE_ENOUGH = 20_000  # positions left to rebuild when the live projections are fenced off
_SWAP_LOCK_TIMEOUT = "500ms"  # readers queue behind a waiting swap: it must not wait long


class RebuildReport(msgspec.Struct, kw_only=True):
    projections: list[str]
    events: int  # applied to the fresh tables
    position: int  # the checkpoint the swapped-in tables start from
    seconds: float
    took_over: list[int]  # server pids of the live owners fenced off

    @property
    def events_per_second(self) -> float:
        return self.events / self.seconds if self.seconds else 0.0


async def rebuild_read_models(
    dsn: str,
    names: Sequence[str] | None = None,
    *,
    progress: Callable[[int, int], None] | None = None,  # (position reached, horizon aimed at)
    chunk: int = 1_000_000,
    sessions: int = 2,  # the rebuild's lanes: about the database server's free cores
) -> RebuildReport:
    models = [m for m in read_models(REBUILD_SCHEMA) if not names or m.base_name in names]
    conns = [await connect(dsn) for _ in range(sessions)]  # dedicated: the first holds the advisory locks
    conn = conns[0]
    try:
        if not await conn.fetchval("SELECT pg_try_advisory_lock($1)", _REBUILD_LOCK):
            raise errors.RebuildRefused("another replay is running")
        try:
            return await _rebuild(conns, models, progress, chunk)
        finally:
            await conn.execute(f"DROP SCHEMA IF EXISTS {REBUILD_SCHEMA} CASCADE")  # what a failure left
    finally:
        for c in conns:
            await c.close()  # and with the first session, the rebuild lock


async def _rebuild(conns, models: list[ReadModel], progress, chunk: int) -> RebuildReport:
    started, conn = time.monotonic(), conns[0]
    await conn.execute(f"DROP SCHEMA IF EXISTS {REBUILD_SCHEMA} CASCADE")  # what a crashed rebuild left
    rebuild = Rebuild(conns, REBUILD_SCHEMA, models, chunk=chunk)
    await rebuild.prepare()
    position = await _catch_up(conn, rebuild, 0, progress)
    await rebuild.finish()
    position = await _catch_up(conn, rebuild, position, progress)
    took_over = await _take_ownership(conn, [m.base_name for m in models])
    try:
        position = await _rebuild_to(conn, rebuild, position, progress)
        await _swap(conn, models, position)
    finally:
        for m in models:
            await ownership.release(conn, m.base_name)
    return RebuildReport(projections=[m.base_name for m in models], events=rebuild.events, position=position,
                        seconds=time.monotonic() - started, took_over=took_over)


async def _rebuild_to(conn, rebuild: Rebuild, position: int, progress) -> int:
    """Rebuild up to the settled horizon of now."""
    horizon = await settled_horizon(conn, timeout=30)
    return await rebuild.run(position, horizon, progress and (lambda at: progress(at, horizon)))


async def _catch_up(conn, rebuild: Rebuild, position: int, progress) -> int:
    """Rebuild to successive horizons until what is left of the ledger is small."""
    while await settled_horizon(conn, timeout=30) - position > _CLOSE_ENOUGH:
        position = await _rebuild_to(conn, rebuild, position, progress)
    return position


async def _take_ownership(conn, names: list[str], *, timeout: float = 15.0) -> list[int]:
    """The projections' locks, fencing off their owners; the pids of the owners fenced off."""
    fenced: list[int] = []
    deadline = time.monotonic() + timeout
    for name in names:
        while not await ownership.try_own(conn, name):
            key = ownership.lock_key(name) & (2**64 - 1)
            owner = await conn.fetchval(in_schema("find_projection_owner"), key >> 32, key & 0xFFFFFFFF)
            if owner is not None and owner not in fenced:
                try:
                    await conn.fetchval("SELECT pg_terminate_backend($1)", owner)
                except asyncpg.InsufficientPrivilegeError:
                    raise errors.RebuildRefused(f"projection {name} is owned by session {owner}, which this role "
                                                "may not end: stop its projector, then replay") from None
                fenced.append(owner)
                log.info("replay fenced off a projector", projection=name, pid=owner)
            if time.monotonic() > deadline:
                raise errors.RebuildRefused(f"could not take projection {name} from its owner")
            await asyncio.sleep(0.01)
    return fenced


async def _swap(conn, models: Sequence[ReadModel], position: int) -> None:
    """Each projection's tables for their rebuilt copies, and its checkpoint, in one transaction.

    One projection at a time: read models already stand at checkpoints of their own, and
    no read joins two tables of one projection, so a reader can never hold one table of a
    swap while waiting for another (the lock cycle that locking every table at once would
    allow with a read that joins, say, locations and stock).
    """
    for model in models:
        for attempt in range(50):
            try:
                async with conn.transaction():
                    await conn.execute(f"SET LOCAL lock_timeout = '{_SWAP_LOCK_TIMEOUT}'")
                    await conn.execute("SET LOCAL synchronous_commit = on")  # whatever the session says
                    # Readers of these tables wait here until the swap commits: milliseconds.
                    await conn.execute(f"LOCK TABLE {', '.join(f'{READ_MODEL_SCHEMA}.{t}' for t in model.tables)} "
                                       "IN ACCESS EXCLUSIVE MODE")
                    for table in model.tables:
                        await conn.execute(f"DROP TABLE {READ_MODEL_SCHEMA}.{table}")
                        await conn.execute(f"ALTER TABLE {REBUILD_SCHEMA}.{table} SET SCHEMA {READ_MODEL_SCHEMA}")
                    await conn.execute(in_schema("set_checkpoints"), [model.base_name], [position])
                break
            except asyncpg.LockNotAvailableError:  # a long read holds a table: give way, try again
                await asyncio.sleep(min(0.01 * 2**attempt, 0.5))
        else:
            raise errors.RebuildRefused(f"the {model.base_name} read model stayed busy; could not swap it in")
