"""The emitter: a durable JetStream consumer on `ledger.>` that records webhook deliveries.

Each fetched batch is handled in one PostgreSQL transaction: the item levels `stock.low`
needs, the deliveries (ids derived from endpoint, event and name; inserted ON CONFLICT DO
NOTHING) and the emitter's checkpoint. Only after the commit are the messages acked, so a
crash anywhere means the batch comes again and records nothing twice (at least once,
nothing lost).

Item levels must be folded in event order, so exactly one emitter is active (the lease
"webhooks.emitter:<name>", ledger/lease.py, taken over when its owner's session ends) and
it reads strictly in stream order. A
previous owner may have left messages unacknowledged, which JetStream would redeliver
only after its ack wait, behind newer ones; so at every takeover the consumer is made
again to start just after the checkpoint, which PostgreSQL holds. A message that arrives
after a gap (one lost in a reconnect, say) starts the session over the same way.
"""

from __future__ import annotations

import contextlib
import uuid
from collections import defaultdict
from collections.abc import Callable

import asyncpg
import msgspec
import nats
import structlog

from consumers.webhooks import consumer, metrics, statements
from consumers.webhooks.fanout import EndpointFilter, level_key, plan
from consumers.webhooks.levels import ItemLevel
from consumers.webhooks.settings import WebhookSettings
from ledger.background import BackgroundLoop
from ledger.columns import columns
from ledger.lease import KEEPALIVES, Keepalives, LeaseConnection
from ledger.records import decode_envelope
from schemas import EventEnvelope

log = structlog.get_logger("webhooks.emitter")


class OutOfOrder(Exception):
    """A message came after a gap in the stream: start again from the checkpoint."""


class Emitter(BackgroundLoop):
    def __init__(
        self,
        dsn: str,
        nats_url: str,
        settings: WebhookSettings,
        *,
        name: str = "webhooks",
        batch_size: int = 500,
        on_recorded: Callable[[], None] | None = None,
        claim_interval: float = 0.5,
        keepalives: Keepalives = KEEPALIVES,  # a silent owner loses the lease after keepalives.drop_after
    ):
        self.dsn, self.nats_url, self.settings, self.name = dsn, nats_url, settings, name
        self.lease_role = f"webhooks.emitter:{name}"  # the lease this emitter owns by
        self.lease = LeaseConnection(dsn, "ledger webhook emitter", keepalives=keepalives)
        self.batch_size, self.claim_interval = batch_size, claim_interval
        self.on_recorded = on_recorded  # wakes this process's deliverer without a round trip
        self.owner = False
        self.sequence = 0  # the stream sequence handled and committed up to
        self.position = 0  # the ledger position of that message
        self.recorded = 0  # deliveries recorded since start
        super().__init__(f"webhook-emitter-{self.name}")

    async def run(self) -> None:
        transient = (OSError, asyncpg.PostgresError, asyncpg.InterfaceError, nats.errors.Error, TimeoutError, OutOfOrder)
        await self._retrying(self._run_connected, transient, log, "webhook emitter")

    async def _run_connected(self) -> None:
        async with contextlib.AsyncExitStack() as stack:
            conn = await self.lease.open()
            stack.push_async_callback(self.lease.close)  # gives the lease back
            self.owner = False
            if not await self.lease.acquire(self.lease_role, every=self.claim_interval, sleep=self._sleep):
                return
            self.owner = True
            stack.callback(setattr, self, "owner", False)
            nc = await nats.connect(self.nats_url, connect_timeout=2, max_reconnect_attempts=-1,
                                    name=f"webhook-emitter-{self.name}")
            stack.push_async_callback(nc.close)
            js = nc.jetstream()
            if not await self._stream_exists(js):
                return
            sub = await self._subscribe(js, await conn.fetchrow(statements.READ_WEBHOOK_EMITTER_CHECKPOINT, self.name))
            log.info("webhook emitter took ownership", name=self.name, sequence=self.sequence)
            expected = None  # the first message after (re)subscribing may follow a gap in the stream
            while self._running():
                batch = []
                for msg in await consumer.fetch(sub, self.batch_size, wait=0.5):
                    sequence = msg.metadata.sequence.stream
                    if sequence <= self.sequence:
                        await msg.ack()  # handled and committed before (redelivered after its ack wait)
                        continue
                    if expected is not None and sequence != expected:
                        raise OutOfOrder(f"expected stream sequence {expected}, got {sequence}")
                    expected = sequence + 1
                    batch.append(msg)
                if batch:
                    await self._record(conn, batch)

    async def _stream_exists(self, js) -> bool:
        """Wait for the LEDGER stream. The relay makes it and owns its configuration (the
        replicas of a cluster): the emitter never creates or changes it. False if stopping."""
        waiting = False
        while not await consumer.stream_exists(js):
            if not waiting:
                log.info("webhook emitter waits for the LEDGER stream (the relay makes it)", name=self.name)
                waiting = True
            if await self._sleep(self.claim_interval):
                return False
        return True

    async def _subscribe(self, js, checkpoint: asyncpg.Record):
        self.sequence, self.position = checkpoint["stream_sequence"], checkpoint["position"]
        start = await consumer.resume_at(js, self.sequence, checkpoint["event_id"])
        if start is None:
            # Read it all again: the deliveries' ids and the levels' positions make that
            # record nothing twice.
            log.warning("LEDGER stream was rebuilt; webhook emitter reads it again", name=self.name)
            self.sequence, start = 0, 1
        return await consumer.subscribe(js, self.name, start, max_ack_pending=self.batch_size * 4)

    async def _record(self, conn: asyncpg.Connection, batch: list) -> None:
        envelopes, undecodable = [], []
        for msg in batch:
            try:
                envelopes.append(decode_envelope(msg.data))
            except msgspec.DecodeError as exc:  # a newer event type, a foreign message: never decodable
                log.error("undecodable message skipped", subject=msg.subject, error=str(exc))
                undecodable.append(msg)
        last = batch[-1]
        event_id, position = _identity(last, self.position)
        async with conn.transaction():
            recorded = await self._write(conn, envelopes)
            await conn.execute(
                statements.SAVE_WEBHOOK_EMITTER_CHECKPOINT, self.name, last.metadata.sequence.stream, event_id, position,
            )
        self.sequence, self.position = last.metadata.sequence.stream, position
        skipped = {id(msg) for msg in undecodable}
        for msg in batch:
            await (msg.term() if id(msg) in skipped else msg.ack())
        if recorded:
            self.recorded += recorded
            metrics.RECORDED.inc(recorded)
            if self.on_recorded:
                self.on_recorded()

    async def _write(self, conn: asyncpg.Connection, envelopes: list[EventEnvelope]) -> int:
        """Item levels and deliveries of a batch; the number of deliveries recorded."""
        if not envelopes:
            return 0
        endpoints: dict[int, list[EndpointFilter]] = defaultdict(list)
        rows = await conn.fetch(statements.READ_ENABLED_WEBHOOK_ENDPOINTS, list({e.org_id for e in envelopes}))
        for r in rows:
            endpoints[r["org_id"]].append(EndpointFilter(**dict(r)))
        keys = list({k for e in envelopes if (k := level_key(e)) is not None})
        stored = await conn.fetch(statements.READ_WEBHOOK_ITEM_LEVELS, [k[0] for k in keys], [k[1] for k in keys])
        levels = {(r["org_id"], r["item_id"]): ItemLevel(**dict(r)) for r in stored}
        planned, changed = plan(envelopes, endpoints, levels)
        if changed:
            rows = [msgspec.structs.astuple(level) for level in changed.values()]
            await conn.execute(statements.SAVE_WEBHOOK_ITEM_LEVELS, *columns(rows))
        if not planned:
            return 0
        return await conn.fetchval(
            statements.INSERT_WEBHOOK_DELIVERIES, *columns(planned), len(self.settings.retry_schedule),
            self.settings.retry_schedule[0],
        )


def _identity(msg, position: int) -> tuple[uuid.UUID | None, int]:
    """The event id and ledger position a message carries in its headers (the relay's)."""
    headers = msg.headers or {}
    try:
        event_id = uuid.UUID(headers["Nats-Msg-Id"])
    except (KeyError, ValueError):  # not the relay's message
        event_id = None
    try:
        position = int(headers["Ledger-Position"])
    except (KeyError, ValueError):
        pass
    return event_id, position
