"""The projector: keeps projections current by applying the ledger to them, in order.

One projector runs one or more projections. It owns a projection while it holds that
projection's lease on its dedicated connection (ledger/lease.py); any number of
projectors may run, and the ones without a lock are standbys that try again every
`claim_interval` seconds, so a dead owner is replaced within about that long.

It reads the ledger through the never-skip `LedgerReader` (from the lowest checkpoint it
owns) and applies each batch to every projection it owns in ONE transaction on the
dedicated connection, together with their checkpoints. A batch that fails is rolled
back whole and tried again projection by projection, then event by event, to find the
event that cannot be applied: that one is parked as a dead letter and its projection
stops just before it, while the others go on.

There is no notification in the write path: the projector polls, every `fast_poll`
seconds while events flow and backing off to `idle_poll` when the ledger is quiet. A read
that has to wait for the read models cuts the pause short (`NOTIFY ledger_wake`, see
projections/watch.py), and each committed batch announces its checkpoints to the waiting
reads (in save_checkpoints.sql).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable, Sequence

import asyncpg
import structlog

from ledger.background import BackgroundLoop, Backoff
from ledger.lease import KEEPALIVES, Keepalives, LeaseConnection
from ledger.reader import LedgerReader
from projections import dead_letters, ownership
from projections.checkpoints import CheckpointMoved, claim_checkpoint, save_checkpoints
from projections.decoding import Undecodable, decode
from projections.projection import Projection
from projections.watch import WAKE_CHANNEL
from schemas import EventEnvelope

log = structlog.get_logger("projections")

# Errors that mean the connection (and with it ownership) is gone, not that an event is bad.
CONNECTION_LOST = (
    asyncpg.PostgresConnectionError,  # SQLSTATE class 08
    asyncpg.exceptions.OperatorInterventionError,  # class 57: terminated, shutting down
    asyncpg.InterfaceError,  # the connection was closed under us
    OSError,
)
_FAST_POLLS_AFTER_EVENTS = 20
_MAX_BACKOFF_STEPS = 50  # 1.5 ** 50 times fast_poll is far past any idle_poll


class Projector(BackgroundLoop):
    def __init__(
        self,
        pool: asyncpg.Pool,
        dsn: str,
        projections: Sequence[Projection],
        *,
        batch_size: int = 1000,
        claim_interval: float = 0.5,
        fast_poll: float = 0.005,
        # A poll whose horizon is held back by an in-flight transaction reads nothing, so
        # the first event after a quiet spell can wait two idle polls: 2 x 50 ms stays
        # within the 100 ms lag budget.
        idle_poll: float = 0.05,
        on_applied: Callable[[Sequence[EventEnvelope]], None] | None = None,  # after each batch
        keepalives: Keepalives = KEEPALIVES,  # a silent owner loses its projections after keepalives.drop_after
    ):
        names = [p.name for p in projections]
        if len(set(names)) != len(names):
            raise ValueError(f"projection names must be distinct: {names}")
        self.projections = list(projections)
        self.batch_size = batch_size
        self.claim_interval, self.fast_poll, self.idle_poll = claim_interval, fast_poll, idle_poll
        self.on_applied = on_applied
        self.owned: set[str] = set()
        self.checkpoints: dict[str, int] = {}  # of the projections owned
        self.stuck: dict[str, int] = {}  # projection -> position of the event it cannot apply
        self.dead_letters = 0  # parked by this projector
        self._woken = asyncio.Event()  # a read is waiting (projections/watch.py): poll now
        self._pool, self._dsn = pool, dsn
        self._conn: asyncpg.Connection | None = None  # the lease connection, while open
        # Read models are derived from the ledger: a batch need not wait for its WAL to
        # reach the disk (rows and checkpoint still commit together, and a crash takes
        # back both). Reads waiting for it then wait for no fsync.
        self.lease = LeaseConnection(dsn, "ledger projector", keepalives=keepalives,
                                     settings={"synchronous_commit": "off"})
        self._reader: LedgerReader | None = None
        super().__init__("projector")

    # --- running ------------------------------------------------------------------------

    async def run(self) -> None:
        backoff = Backoff()
        try:
            while self._running():
                started = time.monotonic()
                try:
                    await self._run_connected()
                except (*CONNECTION_LOST, CheckpointMoved) as exc:
                    log.warning("projector lost ownership", error=repr(exc), owned=sorted(self.owned))
                except Exception:  # noqa: BLE001 - a projector must outlive its bugs; it starts over
                    log.exception("projector failed; starting over", owned=sorted(self.owned))
                await self._disconnect()
                await self._sleep(backoff.next(ran_for=time.monotonic() - started))
        finally:
            await self._disconnect()

    @property
    def backend_pid(self) -> int | None:
        """The server process of the dedicated connection (what holds the locks)."""
        return self.lease.backend_pid

    async def _run_connected(self) -> None:
        self._conn = await self.lease.open()
        await self._conn.add_listener(WAKE_CHANNEL, lambda *_: self._woken.set())
        next_claim, idle_polls = 0.0, 0
        while self._running():
            if len(self.owned) < len(self.projections) and time.monotonic() >= next_claim:
                await self._claim()
                next_claim = time.monotonic() + self.claim_interval
            if not self._active():  # a standby, or all it owns is stuck: nothing to read for
                await self._sleep(self.claim_interval)
                continue
            self._woken.clear()  # a wake that comes during this poll calls for one more
            read = await self._step()
            # Held back by an append in flight: events are visible, just not final yet.
            idle_polls = 0 if read or (self._reader and self._reader.held_back) else idle_polls + 1
            if read < self.batch_size:  # a full batch: more is waiting, read on at once
                await self._nap(self._pause(idle_polls))

    async def _nap(self, seconds: float) -> None:
        """Sleep between polls; a read waiting for the read models cuts it short. (stop()
        waits for at most one nap: naps are no longer than idle_poll.)"""
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(seconds):
                await self._woken.wait()

    def _pause(self, idle_polls: int) -> float:
        # Events come in bursts with short gaps: keep polling fast for a while (about
        # 0.1 s) after the last one, then back off gradually to idle_poll.
        # The exponent is capped: 1.5 ** 1750 overflows a float, which an idle service's
        # projector reached after about 90 s and crashed on, every 90 s.
        quiet = min(idle_polls - _FAST_POLLS_AFTER_EVENTS, _MAX_BACKOFF_STEPS)
        return self.fast_poll if quiet <= 0 else min(self.idle_poll, self.fast_poll * 1.5**quiet)

    async def _disconnect(self) -> None:
        self._conn, self._reader = None, None
        owned, self.owned = self.owned, set()
        self.checkpoints.clear()
        self.stuck.clear()  # known again, from the dead letters, by whoever owns them next
        await self.lease.close()  # gives every projection back (a dead session's locks went with it)
        if owned:
            log.info("projector released", projections=sorted(owned))

    # --- ownership ----------------------------------------------------------------------

    async def _claim(self) -> None:
        for p in self.projections:
            if p.name in self.owned or not await self.lease.try_acquire(ownership.role(p.name)):
                continue
            # Read only now: a previous owner's last transaction ended before its lock did.
            self.checkpoints[p.name] = await claim_checkpoint(self._conn, p.name)
            self.owned.add(p.name)
            self.stuck.pop(p.name, None)  # a dead letter is tried again by each new owner
            self._reader = None  # read again from the lowest checkpoint owned
            log.info("projector took ownership", projection=p.name, checkpoint=self.checkpoints[p.name])

    def _active(self) -> list[Projection]:
        return [p for p in self.projections if p.name in self.owned and p.name not in self.stuck]

    # --- applying -----------------------------------------------------------------------

    async def _step(self) -> int:
        """Read one batch and apply it; the number of events read."""
        active = self._active()
        if self._reader is None:
            start = min(self.checkpoints[p.name] for p in active)
            self._reader = LedgerReader(self._pool, after=start, batch_size=self.batch_size)
        try:
            rows = await self._reader.poll_rows()
            if rows:
                await self._apply(active, rows)
        except BaseException:
            self._reader = None  # not applied as a whole: read again from the checkpoints
            raise
        return len(rows)

    async def _apply(self, active: list[Projection], rows: Sequence[asyncpg.Record]) -> None:
        last = rows[-1]["position"]
        decoded = [decode(row) for row in rows]
        work = [(p, [e for e in decoded if e.position > self.checkpoints[p.name]])
                for p in active if self.checkpoints[p.name] < last]
        if not work:
            return
        events = [e for e in decoded if isinstance(e, EventEnvelope)]
        if len(events) == len(decoded) and await self._transaction(work, last) is None:
            self._applied(events)
            return
        log.warning("batch failed; applying it projection by projection", first=rows[0]["position"], last=last)
        for p, batch in work:
            await self._apply_apart(p, batch, last)
        self._applied(events)

    async def _apply_apart(self, p: Projection, batch: list, last: int) -> None:
        if all(isinstance(e, EventEnvelope) for e in batch) and await self._transaction([(p, batch)], last) is None:
            return
        for e in batch:
            error = e.error if isinstance(e, Undecodable) else await self._transaction([(p, [e])], e.position)
            if error is not None:
                await dead_letters.park(self._conn, p.name, e.position, e.event_id, error)
                self.stuck[p.name] = e.position
                self.dead_letters += 1
                log.error("projection stuck on a dead letter", projection=p.name, position=e.position,
                          error=repr(error))
                return

    async def _transaction(self, work: list[tuple[Projection, list]], upto: int) -> Exception | None:
        """Apply events and move checkpoints to `upto`, all or nothing; the error if it failed."""
        try:
            # The one place projection rows are written: rows and checkpoints commit together.
            async with self._conn.transaction():  # type: ignore[union-attr]  # connected before the loop runs
                for p, events in work:
                    if events:
                        await p.apply(self._conn, events)
                await save_checkpoints(self._conn, [(p.name, self.checkpoints[p.name], upto) for p, _ in work])
        except (*CONNECTION_LOST, CheckpointMoved):
            raise
        except Exception as exc:  # noqa: BLE001 - an event or a projection is bad: isolate it
            return exc
        for p, _ in work:
            self.checkpoints[p.name] = upto
        return None

    def _applied(self, events: list[EventEnvelope]) -> None:
        if events and self.on_applied is not None:
            self.on_applied(events)
