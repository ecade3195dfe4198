"""Every event the ledger records, as one msgspec tagged union.

The tag is the event's `type` and is written into the stored `data`, so a stored event
decodes straight into its class. Tags are explicit and stable: renaming a class must
never change how stored events read back.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Literal

import msgspec

# Quantities are 64-bit signed integers end to end (PostgreSQL bigint); the API's
# bounded types (schemas/api.py) are built on this.
MAX_QUANTITY = 2**63 - 1
LocationType = Literal["warehouse", "vehicle", "technician", "job_site", "other"]
ReleaseReason = Literal["requested", "expired", "completed"]


class Event(msgspec.Struct, frozen=True, kw_only=True, tag_field="type"):
    """Base of every event. Stock and item events belong to stream `item-<item_id>`."""


# --- stock movements (the tags are the transaction types of the API) -----------------


class StockAdded(Event, frozen=True, tag="Add"):
    item_id: int
    location_id: int
    quantity: int
    notes: str | None = None


class StockRemoved(Event, frozen=True, tag="Remove"):
    item_id: int
    location_id: int
    quantity: int
    notes: str | None = None


class StockAdjusted(Event, frozen=True, tag="Adjust"):
    item_id: int
    location_id: int
    quantity: int  # signed
    reason: str | None = None
    # Set when the adjustment came from a counted quantity (PUT .../stock/{location}).
    counted_quantity: int | None = None


class TransferredOut(Event, frozen=True, tag="Transfer_out"):
    item_id: int
    location_id: int
    to_location_id: int
    quantity: int
    transfer_id: uuid.UUID
    notes: str | None = None


class TransferredIn(Event, frozen=True, tag="Transfer_in"):
    item_id: int
    location_id: int
    from_location_id: int
    quantity: int
    transfer_id: uuid.UUID
    notes: str | None = None


class StockReserved(Event, frozen=True, tag="Reserve"):
    item_id: int
    location_id: int
    job_id: int
    quantity: int
    expires_at: datetime | None = None
    notes: str | None = None


class StockReleased(Event, frozen=True, tag="Release"):
    item_id: int
    location_id: int
    job_id: int
    quantity: int
    reason: ReleaseReason = "requested"
    notes: str | None = None


class JobCompleted(Event, frozen=True, tag="Job_complete"):
    item_id: int
    location_id: int
    job_id: int
    quantity: int  # consumed in all
    from_reserved: int  # of which came out of the job's hold
    notes: str | None = None


# --- lifecycle ------------------------------------------------------------------------


class ItemAttributes(msgspec.Struct, frozen=True, kw_only=True):
    part_number: str
    part_name: str
    description: str | None = None
    category: str | None = None
    serial_number: str | None = None
    min_stock_level: int = 0
    reorder_quantity: int = 0
    cost_per_unit: float | None = None
    price_per_unit: float | None = None
    supplier_id: int | None = None


class ItemCreated(Event, frozen=True, tag="ItemCreated"):
    item_id: int
    attributes: ItemAttributes


class ItemUpdated(Event, frozen=True, tag="ItemUpdated"):
    item_id: int
    attributes: ItemAttributes  # the whole set after the update
    changed: list[str]


class ItemDeleted(Event, frozen=True, tag="ItemDeleted"):
    item_id: int


class LocationAttributes(msgspec.Struct, frozen=True, kw_only=True):
    location_name: str
    location_type: LocationType = "warehouse"
    address: str | None = None
    city: str | None = None
    state: str | None = None
    zip: str | None = None
    is_active: bool = True


class LocationCreated(Event, frozen=True, tag="LocationCreated"):
    location_id: int
    attributes: LocationAttributes


class LocationUpdated(Event, frozen=True, tag="LocationUpdated"):
    location_id: int
    attributes: LocationAttributes
    changed: list[str]


StockEvent = (
    StockAdded
    | StockRemoved
    | StockAdjusted
    | TransferredOut
    | TransferredIn
    | StockReserved
    | StockReleased
    | JobCompleted
)
ItemEvent = StockEvent | ItemCreated | ItemUpdated | ItemDeleted
LocationEvent = LocationCreated | LocationUpdated
LedgerEvent = ItemEvent | LocationEvent

STOCK_TRANSACTION_TYPES = (
    "Add",
    "Remove",
    "Transfer_out",
    "Transfer_in",
    "Adjust",
    "Reserve",
    "Release",
    "Job_complete",
)
EVENT_TYPES = tuple(cls.__struct_config__.tag for cls in LedgerEvent.__args__)


# Stream names: `item-<item_id>` and `location-<location_id>`. Spelled here and nowhere
# else in Python (SQL that joins streams to the write model spells them as `'item-' || id`).
StreamKind = Literal["item", "location"]


def item_stream(item_id: int) -> str:
    return f"item-{item_id}"


def location_stream(location_id: int) -> str:
    return f"location-{location_id}"


def parse_stream(stream: str) -> tuple[StreamKind, int]:
    """What a stream is about: `("item", 42)` for `item-42`."""
    kind, _, stream_id = stream.partition("-")
    if kind not in ("item", "location") or not stream_id.isdigit():
        raise ValueError(f"not a stream name: {stream!r}")
    return kind, int(stream_id)  # type: ignore[return-value]


def stream_of(event: LedgerEvent) -> str:
    """The stream an event belongs to: its item's, or its location's for location events."""
    match event:
        case LocationCreated() | LocationUpdated():
            return location_stream(event.location_id)
        case _:
            return item_stream(event.item_id)


class EventMetadata(msgspec.Struct, frozen=True, kw_only=True):
    request_id: str | None = None
    key_id: int | None = None
    user_name: str | None = None
    idempotency_key: str | None = None
    correlation_id: str | None = None
    causation_id: str | None = None


class EventEnvelope(msgspec.Struct, frozen=True, kw_only=True):
    """A recorded event: what `GET /events` returns and what the relay publishes."""

    event_id: uuid.UUID
    position: int
    org_id: int
    stream: str
    version: int
    type: str
    data: LedgerEvent
    metadata: EventMetadata
    recorded_at: datetime
    prev_hash: str
    hash: str
