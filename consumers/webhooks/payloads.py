"""What a delivery sends: its stable id and its body, encoded once when it is recorded.

The body is stored as the exact bytes sent, so every attempt of a delivery carries the
same id and the same body (and a receiver that deduplicates by id sees one delivery).
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

import msgspec

from consumers.webhooks.levels import ItemLevel
from consumers.webhooks.names import STOCK_LOW
from schemas import EventEnvelope

# Fixed forever: delivery ids derive from it, so changing it would deliver everything again.
_NAMESPACE = uuid.UUID("8f4b7a52-3c1e-4d6a-9b0f-6e2d5a7c1b93")


class Payload(msgspec.Struct, kw_only=True):
    """The body, fields in the order DESIGN 8 shows them."""

    id: uuid.UUID
    event: str
    timestamp: datetime
    organization_id: int
    position: int | None
    data: dict[str, Any]


_encode = msgspec.json.Encoder().encode


def delivery_id(endpoint_id: int, event_id: uuid.UUID, name: str) -> uuid.UUID:
    """The same for the same (endpoint, ledger event, webhook event name), however often
    the event is handled: a redelivered event records nothing new."""
    return uuid.uuid5(_NAMESPACE, f"{endpoint_id}/{event_id}/{name}")


def _as_javascript_writes(value: Any) -> Any:
    """Whole floats as integers (12.0 -> 12). JSON does not tell them apart, but
    JavaScript writes 12.0 as `12`, and seed 000's receiver verifies
    `JSON.stringify(req.body)`: with this the body it re-serializes is the body we signed."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, dict):
        return {k: _as_javascript_writes(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_as_javascript_writes(v) for v in value]
    return value


def event_data(envelope: EventEnvelope, name: str, level: ItemLevel | None) -> dict[str, Any]:
    """The event's own data (its `type` included), its id, and the item's level where one is kept."""
    data = _as_javascript_writes(msgspec.to_builtins(envelope.data))
    data["event_id"] = str(envelope.event_id)
    if level is None:
        return data
    context = {"quantity_on_hand": level.quantity_on_hand, "min_stock_level": level.min_stock_level}
    if name == STOCK_LOW:
        # What crossed, and where the movement that made it cross happened.
        return {
            "item_id": level.item_id, "part_number": level.part_number, "part_name": level.part_name,
            **context, "location_id": data.get("location_id"), "type": data["type"], "event_id": data["event_id"],
        }
    return {**data, **context}


def body(delivery: uuid.UUID, name: str, timestamp: datetime, org_id: int, position: int | None,
         data: dict[str, Any]) -> bytes:
    return _encode(Payload(id=delivery, event=name, timestamp=timestamp, organization_id=org_id,
                           position=position, data=data))
