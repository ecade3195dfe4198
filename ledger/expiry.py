"""Reservation expiry: a hold whose `expires_at` has passed is released (reason `expired`).

Runs next to the projectors (`ledger serve`, `serve projector`, an API process with
`run_projector`); any number may run at once. Each release goes through the normal
command path (`EventStore.execute` of a `ReleaseStock`), so every invariant, the hash
chain and the write model are kept exactly as for a caller's release.

Why it never releases twice or releases a renewed hold: each hold is released in a
transaction that first locks its item's stream head, the row every append to the item
updates, and only then reads the hold again. A second scheduler that found the same hold
waits on that lock and then finds it gone; a job that renewed its hold in between has a
future `expires_at` by then and is left alone. The command id is derived from the hold
and the stream's version as well, so even a release recorded twice would be found as
already recorded by the store rather than written again.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid

import asyncpg
import structlog

from ledger import errors, statements
from ledger.background import BackgroundLoop
from ledger.commands import Line, ReleaseStock
from ledger.store import EventStore
from schemas import EventMetadata

log = structlog.get_logger("expiry")
_NAMESPACE = uuid.UUID("6f1d3c52-5a0e-4d55-9d1e-2d2c6b9e0e11")  # command ids of expiries
METADATA = EventMetadata(user_name="system")
# Errors that mean the database went away, not that a hold is bad: the loop waits and retries.
_CONNECTION_LOST = (asyncpg.PostgresConnectionError, asyncpg.InterfaceError, OSError,
                    asyncpg.exceptions.OperatorInterventionError)


async def release_if_expired(conn: asyncpg.Connection, org_id: int, item_id: int, location_id: int, job_id: int) -> bool:
    """Release what the job still holds at the place if its expiry has passed; whether it did."""
    # The stream lock makes "read the hold, then release it" one step for every writer.
    async with conn.transaction():
        version = await conn.fetchval(statements.LOCK_ITEM_STREAM, org_id, f"item-{item_id}")
        hold = await conn.fetchrow(statements.READ_HOLD, item_id, location_id, job_id)
        if version is None or hold is None or not hold["expired"]:
            return False  # released, consumed or renewed since it was found
        command_id = uuid.uuid5(
            _NAMESPACE, f"{org_id}/{item_id}/{location_id}/{job_id}/{hold['expires_at'].isoformat()}/{version}"
        )
        command = ReleaseStock(
            job_id=job_id, reason="expired",
            lines=[Line(item_id=item_id, location_id=location_id, quantity=hold["quantity"])],
        )
        result = await EventStore(conn).execute(org_id, command, metadata=METADATA, command_id=command_id)
    return not result.replayed


class ExpiryScheduler(BackgroundLoop):
    def __init__(self, pool: asyncpg.Pool, *, interval: float = 1.0, batch: int = 200):
        self.interval = interval  # how late past its expiry a hold may be released, at most
        self.batch = batch
        self.released = 0  # by this scheduler
        self._pool = pool
        super().__init__("reservation expiry")

    async def run(self) -> None:
        while not self._stopping.is_set():
            released = 0
            try:
                released = await self.run_once()
            except _CONNECTION_LOST as exc:
                log.warning("expiry could not reach the database", error=repr(exc))
            except Exception:  # noqa: BLE001 - a scheduler must outlive its bugs; it tries again
                log.exception("expiry failed; trying again")
            if released < self.batch:  # a full batch released: more may be waiting, go on at once
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(self.interval):
                        await self._stopping.wait()

    async def run_once(self) -> int:
        """Release the expired holds found now (up to `batch`); the number released."""
        holds = await self._pool.fetch(statements.READ_EXPIRED_HOLDS, self.batch)
        released = 0
        for h in holds:
            if self._stopping.is_set():
                break
            try:
                async with self._pool.acquire() as conn:
                    if await release_if_expired(conn, h["org_id"], h["item_id"], h["location_id"], h["job_id"]):
                        released += 1
                        log.info("reservation expired", org_id=h["org_id"], item_id=h["item_id"],
                                 location_id=h["location_id"], job_id=h["job_id"])
            except errors.LedgerError as refused:  # not expected: the hold was read under the lock
                log.error("expired hold not released", error=repr(refused), **dict(h))
        self.released += released
        return released
