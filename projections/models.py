"""What the queries return: msgspec Structs shaped exactly like seed 004's JSON objects.

Field names and order are the wire format; the API encodes these as they are. Every
field is always present (null where the seed says "or null"), so none has a default.
"""

from __future__ import annotations

from datetime import datetime

import msgspec


class Item(msgspec.Struct, frozen=True, kw_only=True):
    id: int
    part_number: str
    part_name: str
    description: str | None
    category: str | None
    serial_number: str | None
    quantity_on_hand: int
    min_stock_level: int
    reorder_quantity: int
    cost_per_unit: float | None
    price_per_unit: float | None
    supplier_id: int | None
    created_at: datetime
    updated_at: datetime


class StockEntry(msgspec.Struct, frozen=True, kw_only=True):
    location_id: int
    location_name: str | None
    location_type: str | None
    quantity: int
    reserved_quantity: int
    available: int
    last_updated: datetime


class Transaction(msgspec.Struct, frozen=True, kw_only=True):
    id: int  # the event's ledger position
    transaction_type: str
    quantity: int  # signed; see projections/movement.py
    location_id: int | None
    location_name: str | None
    related_location_id: int | None
    related_location_name: str | None
    job_id: int | None
    user_name: str | None
    notes: str | None
    created_at: datetime


class Location(msgspec.Struct, frozen=True, kw_only=True):
    id: int
    location_name: str
    location_type: str
    address: str | None
    city: str | None
    state: str | None
    zip: str | None
    is_active: bool
    created_at: datetime
    updated_at: datetime


class StockSummaryLine(msgspec.Struct, frozen=True, kw_only=True):
    item_id: int
    part_name: str
    part_number: str
    quantity: int
    reserved_quantity: int
    available: int


class JobHolding(msgspec.Struct, frozen=True, kw_only=True):
    item_id: int
    part_number: str | None
    part_name: str | None
    location_id: int
    location_name: str | None
    reserved_quantity: int  # held now
    consumed_quantity: int  # used by Job_complete, in all
    released_quantity: int  # given back, in all
    expires_at: datetime | None  # of the hold, while something is held


class JobView(msgspec.Struct, frozen=True, kw_only=True):
    job_id: int
    reserved_quantity: int
    consumed_quantity: int
    holdings: list[JobHolding]
