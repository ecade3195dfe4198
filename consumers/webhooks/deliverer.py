"""The deliverer: sends due deliveries, records every attempt, schedules the next.

Any number of deliverers run side by side (one per process): each claims due deliveries
with `FOR UPDATE SKIP LOCKED` as a short lease, sends them, and records the outcome.
In flight at once: at most `concurrency` attempts per process and `endpoint_concurrency`
per endpoint, counted apart, and a claim only takes deliveries of endpoints with room, so
a slow or dead endpoint ties up its own few slots and never another endpoint's.

It wakes when the emitter in this process records deliveries, on a PostgreSQL
notification (the emitter or the API in another process), when a slot is given back,
when a retry it scheduled falls due, and otherwise every `poll_interval` seconds (which
finds what another deliverer scheduled and then died before attempting).
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import time
from collections import Counter

import asyncpg
import structlog

from consumers.webhooks import metrics, statements
from consumers.webhooks.sender import Sender
from consumers.webhooks.settings import WebhookSettings
from ledger.background import BackgroundLoop
from ledger.db import create_pool

log = structlog.get_logger("webhooks.deliverer")
_LEASE_MARGIN = 30.0  # seconds beyond the attempt's timeout before a claimed delivery is due again
_PRUNE_EVERY = 600.0  # seconds between sweeps of settled deliveries past their retention


class Deliverer(BackgroundLoop):
    def __init__(self, dsn: str, settings: WebhookSettings, *, name: str = "deliverer"):
        self.dsn, self.settings, self.name = dsn, settings, name
        self.sending: Counter[int] = Counter()  # attempts in flight, by endpoint
        self.attempted = self.delivered = 0  # since start
        self._tasks: set[asyncio.Task] = set()
        self._wake = asyncio.Event()
        super().__init__(f"webhook-{self.name}")

    def wake(self) -> None:
        self._wake.set()

    async def stop(self) -> None:
        """Stop claiming; let attempts in flight finish and be recorded (each is bounded
        by the timeout); one cut short is attempted again once its lease runs out."""
        self._wake.set()
        await super().stop()

    async def run(self) -> None:
        transient = (OSError, asyncpg.PostgresError, asyncpg.InterfaceError, TimeoutError)
        await self._retrying(self._run_connected, transient, log, "webhook deliverer")

    async def _run_connected(self) -> None:
        async with contextlib.AsyncExitStack() as stack:
            pool = await create_pool(self.dsn, min_size=1, max_size=min(self.settings.concurrency, 8) + 2)
            stack.push_async_callback(pool.close)
            listener = await asyncpg.connect(self.dsn)
            stack.push_async_callback(listener.close)
            await listener.add_listener(statements.CHANNEL, lambda *_: self._wake.set())
            sender = Sender(self.settings)
            stack.push_async_callback(sender.close)
            stack.push_async_callback(self._finish_in_flight)
            pruned_at = 0.0
            while self._running():
                if listener.is_closed():
                    raise OSError("the notification connection closed")
                self._wake.clear()
                if time.monotonic() - pruned_at > _PRUNE_EVERY:
                    await pool.execute(statements.PRUNE_WEBHOOK_DELIVERIES, self.settings.retention)
                    pruned_at = time.monotonic()
                if await self._claim(pool, sender):
                    continue  # there may be more due
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(self.settings.poll_interval):
                        await self._wake.wait()

    async def _claim(self, pool: asyncpg.Pool, sender: Sender) -> int:
        room = self.settings.concurrency - sum(self.sending.values())
        if room <= 0:
            return 0
        endpoints = list(self.sending)
        rows = await pool.fetch(
            statements.CLAIM_WEBHOOK_DELIVERIES, endpoints, [self.sending[e] for e in endpoints],
            self.settings.endpoint_concurrency, room, self.settings.timeout + _LEASE_MARGIN,
        )
        for row in rows:
            self.sending[row["endpoint_id"]] += 1
            task = asyncio.create_task(self._slot(pool, sender, row))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        return len(rows)

    async def _slot(self, pool: asyncpg.Pool, sender: Sender, row: asyncpg.Record | None) -> None:
        """One slot of an endpoint: attempt a delivery, then go on with the endpoint's next
        due one while the process has room to spare. When it has none, the slot is given
        back, so the claim loop shares the room out among endpoints by who is due first."""
        endpoint_id = row["endpoint_id"]  # type: ignore[index]  # called with a claimed row
        try:
            while row is not None:
                go_on = not self._stopping.is_set() and sum(self.sending.values()) < self.settings.concurrency
                row = await self._attempt(pool, sender, row, go_on)
        except Exception:  # a bug: the delivery's lease runs out and it is attempted again
            log.exception("webhook slot failed", endpoint_id=endpoint_id)
        finally:
            self.sending[endpoint_id] -= 1
            if self.sending[endpoint_id] <= 0:
                del self.sending[endpoint_id]
            self._wake.set()

    async def _attempt(self, pool: asyncpg.Pool, sender: Sender, row: asyncpg.Record, go_on: bool) -> asyncpg.Record | None:
        """Send one delivery and record how it went; the endpoint's next due delivery,
        claimed in the same round trip when `go_on`."""
        outcome = await sender.send(
            delivery_id=str(row["delivery_id"]), event_name=row["event_name"], url=row["url"],
            payload=row["payload"], secret=row["secret"], previous_secret=row["previous_secret"],
        )
        attempt = row["attempts"] + 1
        retry_in = None if outcome.ok or attempt >= row["max_attempts"] else self._retry_delay(attempt)
        try:
            following = await pool.fetchrow(
                statements.RECORD_WEBHOOK_ATTEMPT, row["delivery_id"], outcome.attempted_at, outcome.status_code,
                outcome.error, outcome.duration_ms, outcome.ok, retry_in, self.settings.disable_after,
                go_on, row["endpoint_id"], self.settings.timeout + _LEASE_MARGIN,
            )
        except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError):
            # Recorded nowhere: its lease runs out and it is attempted again (at least once).
            log.exception("webhook attempt could not be recorded", delivery_id=str(row["delivery_id"]))
            return None
        self.attempted += 1
        self.delivered += outcome.ok
        metrics.count_attempt(outcome.ok, retry_in is not None, outcome.duration_ms / 1000)
        if retry_in is not None:  # wake up for it (another deliverer may take it first)
            asyncio.get_running_loop().call_later(retry_in, self._wake.set)
        if not outcome.ok:
            log.info("webhook attempt failed", delivery_id=str(row["delivery_id"]), endpoint_id=row["endpoint_id"],
                     attempt=attempt, status_code=outcome.status_code, error=outcome.error, retry_in=retry_in)
        return following

    def _retry_delay(self, attempts_made: int) -> float:
        """The wait before the next attempt, from the schedule, with jitter."""
        schedule = self.settings.retry_schedule
        wait = schedule[min(attempts_made, len(schedule) - 1)]
        return wait * (1 + random.uniform(-self.settings.retry_jitter, self.settings.retry_jitter))

    async def _finish_in_flight(self) -> None:
        if not self._tasks:
            return
        _, late = await asyncio.wait(self._tasks, timeout=self.settings.timeout + 5.0)
        for task in late:
            task.cancel()
        await asyncio.gather(*late, return_exceptions=True)
