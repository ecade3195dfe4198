"""Waiting for the read models to reach a ledger position, woken by the projector.

Every read waits until the read models have applied every event committed before it
arrived (api/consistency.py asks for the ledger's head, then waits here). Most of the
time they already have and nothing waits. When they have not, polling the checkpoints
would add its interval to every such read, so instead:

- the projector announces each batch it commits (`pg_notify('ledger_checkpoints', ...)`
  inside the statement that moves its checkpoints, so the message is sent at commit and
  costs nothing in the write path), and one listening connection per process wakes the
  reads waiting in it;
- a read that has to wait first nudges the projectors (`NOTIFY ledger_wake`): a projector
  idling between polls then polls at once instead of after its idle interval.

Notifications only make waits short; they are not needed for correctness. A waiter
re-reads the checkpoints itself every `RECHECK` seconds, so a lost listening connection
(the database restarting) slows waits down but never answers a read from a model that is
behind.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Iterable

import asyncpg
import structlog

from projections import statements
from projections.catalog import READ_MODEL_NAMES

log = structlog.get_logger("projections")

CHECKPOINTS_CHANNEL = "ledger_checkpoints"
WAKE_CHANNEL = "ledger_wake"
RECHECK = 0.05  # seconds between a waiter's own checkpoint reads, without notifications
_RECONNECT = 1.0


class CheckpointWatch:
    """One per process: the lowest checkpoint of the read models, kept current by notifications."""

    def __init__(self, pool: asyncpg.Pool, dsn: str, names: Iterable[str] = READ_MODEL_NAMES):
        self._pool, self._dsn = pool, dsn
        self._names = sorted(set(names))
        self._positions: dict[str, int] = {}
        self._moved = asyncio.Event()  # set and replaced at every notification
        self._conn: asyncpg.Connection | None = None
        self._task: asyncio.Task | None = None
        self._last_wake = 0.0

    @property
    def reached(self) -> int:
        """The position every read model has applied, as far as notifications tell (0: unknown)."""
        if len(self._positions) < len(self._names):
            return 0
        return min(self._positions[n] for n in self._names)

    def start(self) -> None:
        self._task = asyncio.create_task(self._listen(), name="checkpoint watch")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        await self._disconnect()

    async def wait(self, position: int, timeout: float) -> bool:
        """Whether every read model reaches `position` within `timeout` seconds."""
        deadline = time.monotonic() + timeout
        woken = False
        while True:
            if self.reached >= position or await self._read_reached() >= position:
                return True
            if not woken:  # only a read that really waits nudges the projectors
                await self._wake_projectors()
                woken = True
            left = deadline - time.monotonic()
            if left <= 0:
                return False
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(min(RECHECK, left)):
                    await self._moved.wait()

    # --- notifications --------------------------------------------------------------

    def _on_checkpoints(self, _conn: object, _pid: int, _channel: str, payload: str) -> None:
        # payload: "name:position,name:position" for the checkpoints one batch moved.
        for pair in payload.split(","):
            name, _, position = pair.rpartition(":")
            if name in self._names:
                self._positions[name] = max(self._positions.get(name, 0), int(position))
        self._moved.set()
        self._moved = asyncio.Event()

    async def _listen(self) -> None:
        while True:
            try:
                self._conn = await asyncpg.connect(self._dsn, server_settings={"application_name": "ledger checkpoint watch"})
                await self._conn.add_listener(CHECKPOINTS_CHANNEL, self._on_checkpoints)
                await self._read_reached()  # after LISTEN: no move can fall between the two
                closed = asyncio.Event()
                self._conn.add_termination_listener(lambda _c: closed.set())  # noqa: B023 - awaited in this same iteration
                await closed.wait()
            except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
                log.warning("checkpoint watch disconnected; waits poll until it is back", error=repr(exc))
            await self._disconnect()
            await asyncio.sleep(_RECONNECT)

    async def _disconnect(self) -> None:
        conn, self._conn = self._conn, None
        self._positions.clear()  # unknown until read again: waiters read them themselves
        if conn is not None:
            with contextlib.suppress(Exception):
                await conn.close(timeout=1)

    async def _read_reached(self) -> int:
        rows = await self._pool.fetch(statements.READ_CHECKPOINTS, self._names)
        for row in rows:
            self._positions[row["name"]] = max(self._positions.get(row["name"], 0), row["position"])
        return self.reached

    async def _wake_projectors(self) -> None:
        # At most one nudge per millisecond from a process: a burst of waiting reads needs one.
        now = time.monotonic()
        if now - self._last_wake < 0.001:
            return
        self._last_wake = now
        with contextlib.suppress(Exception):  # only a hint: the projector polls anyway
            await self._pool.execute(statements.WAKE_PROJECTORS)
