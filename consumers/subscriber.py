"""A typed subscriber for downstream Python services.

    async def on_event(event: EventEnvelope) -> None:
        match event.data:
            case StockRemoved(item_id=item, quantity=n): ...

    subscriber = LedgerSubscriber(js, durable="billing", subject="ledger.7.item.>", handler=on_event)
    subscriber.start()
    ...
    await subscriber.stop()

A durable pull consumer on the LEDGER stream: events arrive decoded as msgspec Structs,
are acknowledged after the handler returns, and one already handled (by `event_id`; the
relay may publish an event again after a crash) is acknowledged without calling the
handler again. A message that cannot be decoded is terminated and logged (redelivering
it would fail the same way forever); a handler that raises gets the message redelivered
after `retry_delay`.

The duplicate check remembers the last `remember` event ids in memory. A service that
must never handle an event twice across restarts keeps the ids it handled with its own
state (in the same transaction) and passes that check in as `seen`.
"""

from __future__ import annotations

import contextlib
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from typing import Protocol

import msgspec
import nats
import structlog
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy

from consumers.wire import STREAM
from ledger.background import BackgroundLoop
from ledger.records import decode_envelope
from schemas import EventEnvelope

log = structlog.get_logger("subscriber")


class Seen(Protocol):
    def __contains__(self, event_id: object) -> bool: ...
    def add(self, event_id: object) -> None: ...


class RecentIds:
    """The last `size` ids, forgetting the oldest first."""

    def __init__(self, size: int = 100_000):
        self.size = size
        self._ids: OrderedDict[object, None] = OrderedDict()

    def __contains__(self, event_id: object) -> bool:
        return event_id in self._ids

    def add(self, event_id: object) -> None:
        self._ids[event_id] = None
        if len(self._ids) > self.size:
            self._ids.popitem(last=False)


class LedgerSubscriber(BackgroundLoop):
    def __init__(
        self,
        js,
        *,
        durable: str,
        handler: Callable[[EventEnvelope], Awaitable[None]],
        subject: str = "ledger.>",
        batch: int = 100,
        retry_delay: float = 1.0,
        seen: Seen | None = None,
        deliver_policy: DeliverPolicy = DeliverPolicy.ALL,
    ):
        self.js, self.durable, self.handler, self.subject = js, durable, handler, subject
        self.batch, self.retry_delay = batch, retry_delay
        self.seen = seen if seen is not None else RecentIds()
        self.config = ConsumerConfig(durable_name=durable, ack_policy=AckPolicy.EXPLICIT, deliver_policy=deliver_policy)
        self.handled = self.duplicates = self.terminated = 0
        super().__init__(f"subscriber-{self.durable}")

    async def run(self) -> None:
        sub = await self.js.pull_subscribe(self.subject, durable=self.durable, stream=STREAM, config=self.config)
        try:
            while self._running():
                try:
                    messages = await sub.fetch(self.batch, timeout=0.5)
                except (TimeoutError, nats.errors.TimeoutError):
                    continue
                for msg in messages:
                    await self._handle(msg)
        finally:
            with contextlib.suppress(Exception):
                await sub.unsubscribe()

    async def _handle(self, msg) -> None:
        try:
            event = decode_envelope(msg.data)
        except msgspec.DecodeError as exc:
            log.error("undecodable message terminated", subject=msg.subject, error=str(exc))
            self.terminated += 1
            await msg.term()
            return
        if event.event_id in self.seen:
            self.duplicates += 1
            await msg.ack()
            return
        try:
            await self.handler(event)
        except Exception:
            log.exception("handler failed; message will be redelivered", event_id=str(event.event_id))
            await msg.nak(delay=self.retry_delay)
            return
        self.seen.add(event.event_id)
        self.handled += 1
        await msg.ack()
