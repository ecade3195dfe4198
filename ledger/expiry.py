"""Hold expiry: a hold whose `expires_at` has passed is released (reason `expired`).

Runs next to the projectors (`ledger serve`, `serve projector`, an API process with
`run_projector`); any number may run at once. Each release is an ordinary command:
`EventStore.execute` of a `ReleaseStock` on the pool, with no transaction of the
scheduler's around it, so the store owns its transactions (its optimistic append and
its retry under locks after a lost race) exactly as for a caller's release, and every
invariant, the hash chain and the write model are kept the same way.

Why it never releases twice or releases a renewed hold: the command carries the hold as
it was found expired (`expired_at` and the quantity), and `decide` releases it only if
the state the store appends to still has that very hold. A job that renewed its hold in
between has moved its `expires_at`; a hold released by a second scheduler (or the job)
is gone; either way the command records nothing. Two schedulers that found the same
hold at the same stream version derive the same command id, so the store's replay
detection (and the unique event ids) also find the second as already recorded.
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


def release_command(hold: asyncpg.Record) -> tuple[ReleaseStock, uuid.UUID]:
    """The release of one expired hold (a row of read_expired_holds.sql), and its command id."""
    command = ReleaseStock(
        job_id=hold["job_id"], reason="expired", expired_at=hold["expires_at"],
        lines=[Line(item_id=hold["item_id"], location_id=hold["location_id"], quantity=hold["quantity"])],
    )
    command_id = uuid.uuid5(_NAMESPACE, "/".join(map(str, (
        hold["org_id"], hold["item_id"], hold["location_id"], hold["job_id"], hold["expires_at"].isoformat(),
        hold["version"],
    ))))
    return command, command_id


class ExpiryScheduler(BackgroundLoop):
    def __init__(self, pool: asyncpg.Pool, *, interval: float = 1.0, batch: int = 200):
        self.interval = interval  # how late past its expiry a hold may be released, at most
        self.batch = batch
        self.released = 0  # by this scheduler
        self._pool = pool
        self.store = EventStore(pool)
        super().__init__("reservation expiry")

    async def run(self) -> None:
        while self._running():
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
        """Release the expired holds found now (up to `batch`); the number this call released."""
        holds = await self._pool.fetch(statements.READ_EXPIRED_HOLDS, self.batch)
        released = 0
        for h in holds:
            if self._stopping.is_set():
                break
            command, command_id = release_command(h)
            try:
                result = await self.store.execute(h["org_id"], command, metadata=METADATA, command_id=command_id)
            except errors.LedgerError as refused:  # not expected: decide releases only a hold as found
                log.error("expired hold not released", error=repr(refused), **dict(h))
                continue
            if result.events and not result.replayed:  # none: renewed or released since it was found
                released += 1
                log.info("reservation expired", org_id=h["org_id"], item_id=h["item_id"],
                         location_id=h["location_id"], job_id=h["job_id"])
        self.released += released
        return released
