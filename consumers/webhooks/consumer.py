"""The emitter's side of JetStream: its durable consumer, placed just after the emitter's
checkpoint, and fetching from it without waiting for a batch to fill."""

from __future__ import annotations

import contextlib
import uuid

import nats
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy
from nats.js.errors import NotFoundError

from consumers.wire import STREAM, SUBJECTS

_FETCH_ERRORS = (TimeoutError, nats.errors.TimeoutError)


async def stream_exists(js) -> bool:
    try:
        await js.stream_info(STREAM)
        return True
    except NotFoundError:
        return False


async def resume_at(js, sequence: int, event_id: uuid.UUID | None) -> int | None:
    """The stream sequence after the checkpoint's, or None when the stream was rebuilt
    (the message at the checkpoint is another event, or the stream is shorter now)."""
    if sequence == 0:
        return 1
    try:
        held = await js.get_msg(STREAM, sequence)
        same = (held.headers or {}).get("Nats-Msg-Id") == str(event_id)
    except NotFoundError:  # removed by the stream's limits, or the stream is shorter now
        same = (await js.stream_info(STREAM)).state.last_seq >= sequence
    return sequence + 1 if same else None


async def subscribe(js, durable: str, start: int, max_ack_pending: int):
    """The durable pull consumer, made anew to deliver from stream sequence `start` on."""
    with contextlib.suppress(NotFoundError):
        await js.delete_consumer(STREAM, durable)
    await js.add_consumer(STREAM, ConsumerConfig(
        durable_name=durable, filter_subject=SUBJECTS, ack_policy=AckPolicy.EXPLICIT,
        deliver_policy=DeliverPolicy.BY_START_SEQUENCE, opt_start_seq=start,
        # Longer than any batch's transaction: a redelivery is only for a message truly lost.
        ack_wait=60.0, max_ack_pending=max_ack_pending,
    ))
    return await js.pull_subscribe_bind(consumer=durable, stream=STREAM)


async def fetch(sub, batch_size: int, wait: float) -> list:
    """Whatever is there, as soon as one message is: a lingering pull of one message (up
    to `wait` seconds), then at most 10 ms more for the rest of a batch. A pull of many
    would wait for the batch to fill, delaying every webhook behind it."""
    try:
        messages = await sub.fetch(1, timeout=wait)
    except _FETCH_ERRORS:
        return []
    if batch_size > 1:
        with contextlib.suppress(*_FETCH_ERRORS):
            messages += await sub.fetch(batch_size - 1, timeout=0.01)
    return messages
