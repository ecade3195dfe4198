"""From a batch of ledger events to the deliveries they make: pure, no I/O.

Each event becomes its webhook event names (`stock.low` when the item's level crossed),
and each name one delivery per enabled endpoint of the organization that wants it and
existed when the event was recorded (an endpoint gets what happens after it was made).
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import NamedTuple

import msgspec

from consumers.webhooks import payloads
from consumers.webhooks.levels import ItemLevel, evolve
from consumers.webhooks.names import STOCK_LOW, names_of, wants
from schemas import EventEnvelope, LocationCreated, LocationUpdated

LevelKey = tuple[int, int]  # (org_id, item_id)


class EndpointFilter(msgspec.Struct, frozen=True, kw_only=True):
    """What the emitter needs of an enabled endpoint: which names it wants, and since when."""

    endpoint_id: int
    org_id: int
    events: list[str]
    created_at: datetime


class PlannedDelivery(NamedTuple):
    delivery_id: uuid.UUID
    endpoint_id: int
    org_id: int
    event_name: str
    event_id: uuid.UUID
    position: int
    recorded_at: datetime
    payload: bytes


def level_key(envelope: EventEnvelope) -> LevelKey | None:
    """The item whose level an event belongs to; None for location events."""
    if isinstance(envelope.data, LocationCreated | LocationUpdated):
        return None
    return envelope.org_id, envelope.data.item_id


def plan(
    envelopes: list[EventEnvelope],
    endpoints: dict[int, list[EndpointFilter]],  # the enabled endpoints, by organization
    levels: dict[LevelKey, ItemLevel],
) -> tuple[list[PlannedDelivery], dict[LevelKey, ItemLevel]]:
    """The deliveries of `envelopes` (in order) and the item levels they changed.
    `levels` holds the stored level of every item the events touch (missing: never seen)."""
    planned: list[PlannedDelivery] = []
    changed: dict[LevelKey, ItemLevel] = {}
    for envelope in envelopes:
        names, level = names_of(envelope.data), None
        if (key := level_key(envelope)) is not None:
            current = changed.get(key) or levels.get(key) or ItemLevel(org_id=key[0], item_id=key[1])
            if envelope.position <= current.position:
                continue  # folded in before, and its deliveries recorded in the same transaction
            level, crossed = evolve(current, envelope)
            changed[key] = level
            if crossed:
                names.append(STOCK_LOW)
        existing = [e for e in endpoints.get(envelope.org_id, ()) if e.created_at <= envelope.recorded_at]
        for name in names:
            wanted_by = [e for e in existing if wants(e.events, name)]
            if not wanted_by:
                continue
            data = payloads.event_data(envelope, name, level)
            for e in wanted_by:
                delivery_id = payloads.delivery_id(e.endpoint_id, envelope.event_id, name)
                body = payloads.body(delivery_id, name, envelope.recorded_at, envelope.org_id, envelope.position, data)
                planned.append(PlannedDelivery(
                    delivery_id, e.endpoint_id, envelope.org_id, name, envelope.event_id, envelope.position,
                    envelope.recorded_at, body,
                ))
    return planned, changed
