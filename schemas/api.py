"""Request and response bodies of the HTTP API (apart from the event Structs on purpose).

Every bound here is deliberate: strings have a maximum length, quantities fit a signed
64-bit integer, lists have a maximum count. A body outside them is a 400, never a 500.
Unknown fields are refused, so a typo in a field name is an error, not a silent default.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Generic, Literal, TypeVar

import msgspec
from msgspec import UNSET, UnsetType

from schemas.events import MAX_QUANTITY, LocationType

T = TypeVar("T")

Quantity = Annotated[int, msgspec.Meta(ge=-MAX_QUANTITY, le=MAX_QUANTITY, description="A signed 64-bit integer")]
Count = Annotated[int, msgspec.Meta(ge=0, le=MAX_QUANTITY)]
Id = Annotated[int, msgspec.Meta(ge=1, le=MAX_QUANTITY)]
Money = Annotated[float, msgspec.Meta(ge=0, le=1e12)]
# No NUL character in any text: PostgreSQL cannot store one (in text or jsonb), so it would
# fail in the database as a 500 instead of being refused here as a 400.
NO_NUL = r"^[^\x00]*$"
Code = Annotated[str, msgspec.Meta(max_length=100, pattern=NO_NUL)]
Name = Annotated[str, msgspec.Meta(max_length=200, pattern=NO_NUL)]
Text = Annotated[str, msgspec.Meta(max_length=2000, pattern=NO_NUL)]
Zip = Annotated[str, msgspec.Meta(max_length=20, pattern=NO_NUL)]
MAX_LINES = 100  # lines in one job command; keeps a command's events well under the store's bound


class Body(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """Base of every request body."""


# --- items ----------------------------------------------------------------------------


class ItemCreate(Body):
    part_number: Code
    part_name: Name
    description: Text | None = None
    category: Code | None = None
    serial_number: Code | None = None
    quantity_on_hand: Count = 0
    # Where an initial quantity_on_hand is put (default: the organization's first active location).
    location_id: Id | None = None
    min_stock_level: Count = 0
    reorder_quantity: Count = 0
    cost_per_unit: Money | None = None
    price_per_unit: Money | None = None
    supplier_id: Id | None = None


class ItemReplace(Body):
    part_number: Code
    part_name: Name
    description: Text | None = None
    category: Code | None = None
    serial_number: Code | None = None
    min_stock_level: Count = 0
    reorder_quantity: Count = 0
    cost_per_unit: Money | None = None
    price_per_unit: Money | None = None
    supplier_id: Id | None = None
    # Read-only: accepted (an integration may send back what it read) and ignored.
    quantity_on_hand: Count | UnsetType = UNSET


class ItemPatch(Body):
    part_number: Code | UnsetType = UNSET
    part_name: Name | UnsetType = UNSET
    description: Text | None | UnsetType = UNSET
    category: Code | None | UnsetType = UNSET
    serial_number: Code | None | UnsetType = UNSET
    min_stock_level: Count | UnsetType = UNSET
    reorder_quantity: Count | UnsetType = UNSET
    cost_per_unit: Money | None | UnsetType = UNSET
    price_per_unit: Money | None | UnsetType = UNSET
    supplier_id: Id | None | UnsetType = UNSET
    quantity_on_hand: Count | UnsetType = UNSET  # read-only, ignored


# --- stock commands -------------------------------------------------------------------


class StockMovement(Body):
    location_id: Id
    quantity: Quantity
    notes: Text | None = None


class StockAdjustment(Body):
    location_id: Id
    quantity: Quantity
    reason: Text


class StockCount(Body):
    quantity: Quantity
    reason: Text | None = None
    expected_quantity: Count | None = None


class TransferRequest(Body):
    item_id: Id
    from_location_id: Id
    to_location_id: Id
    quantity: Quantity
    notes: Text | None = None


class JobLine(Body):
    item_id: Id
    location_id: Id
    quantity: Quantity


class ReservationRequest(Body):
    items: Annotated[list[JobLine], msgspec.Meta(min_length=1, max_length=MAX_LINES)]
    notes: Text | None = None
    expires_at: datetime | None = None


class JobLinesRequest(Body):
    items: Annotated[list[JobLine], msgspec.Meta(min_length=1, max_length=MAX_LINES)] | None = None
    notes: Text | None = None


# --- batches (DESIGN 10) ---------------------------------------------------------------

MAX_BATCH_LINES = 1000
Ref = Annotated[str, msgspec.Meta(max_length=100, pattern=NO_NUL)]


class BatchLine(Body, tag_field="kind", kw_only=True):
    """One line of a batch: a stock command. The item by `item_id` or by `part_number`."""

    ref: Ref | None = None  # echoed in the line's result
    item_id: Id | None = None
    part_number: Code | None = None


class AddLine(BatchLine, tag="add"):
    location_id: Id
    quantity: Quantity
    notes: Text | None = None


class RemoveLine(AddLine, tag="remove"):
    """The fields of an add."""


class AdjustLine(BatchLine, tag="adjust"):
    location_id: Id
    quantity: Quantity
    reason: Text | None = None


class CountLine(AdjustLine, tag="count"):
    expected_quantity: Count | None = None


class TransferLine(BatchLine, tag="transfer"):
    from_location_id: Id
    to_location_id: Id
    quantity: Quantity
    notes: Text | None = None


class ReserveLine(BatchLine, tag="reserve"):
    job_id: Id
    location_id: Id
    quantity: Quantity
    expires_at: datetime | None = None
    notes: Text | None = None


class ReleaseLine(BatchLine, tag="release"):
    """Without item, location and quantity: everything the job holds (as the job route)."""

    job_id: Id
    location_id: Id | None = None
    quantity: Quantity | None = None
    notes: Text | None = None


class CompleteLine(ReleaseLine, tag="complete"):
    """Without item, location and quantity: exactly what the job holds (as the job route)."""


AnyBatchLine = AddLine | RemoveLine | AdjustLine | CountLine | TransferLine | ReserveLine | ReleaseLine | CompleteLine


class BatchRequest(Body):
    # Bounded after decoding (413 batch_too_large, not a validation error); each line is
    # decoded on its own so that every fault names its line.
    lines: list[dict]
    atomic: bool = True


class BatchLineResult(msgspec.Struct, kw_only=True, omit_defaults=True):
    index: int
    ref: str | None = None
    status: str  # recorded | refused
    position: int | None = None
    error: str | None = None
    message: str | None = None
    available_quantity: int | None = None
    # The single command's response fields, as its own route answers them.
    item_id: int | None = None
    location_id: int | None = None
    new_quantity: int | None = None
    reserved_quantity: int | None = None
    available: int | None = None
    previous_quantity: int | None = None
    quantity: int | None = None
    change: int | None = None
    from_location: TransferSide | None = None
    to_location: TransferSide | None = None
    transfer_id: str | None = None
    job_id: int | None = None
    reserved: list[JobLineResult] | None = None
    released: list[JobLineResult] | None = None
    consumed: list[JobLineResult] | None = None


class BatchResult(msgspec.Struct, kw_only=True):
    results: list[BatchLineResult]
    recorded: int
    refused: int


# --- locations ------------------------------------------------------------------------


class LocationCreate(Body):
    location_name: Name
    location_type: LocationType = "warehouse"
    address: Name | None = None
    city: Name | None = None
    state: Name | None = None
    zip: Zip | None = None
    is_active: bool = True


class LocationPatch(Body):
    location_name: Name | UnsetType = UNSET
    location_type: LocationType | UnsetType = UNSET
    address: Name | None | UnsetType = UNSET
    city: Name | None | UnsetType = UNSET
    state: Name | None | UnsetType = UNSET
    zip: Zip | None | UnsetType = UNSET
    is_active: bool | UnsetType = UNSET


# --- API keys -------------------------------------------------------------------------

Scope = Literal[
    "inventory:read", "inventory:write", "inventory:transfer", "events:read", "webhooks:manage", "keys:manage"
]


class ApiKeyCreate(Body):
    scopes: Annotated[list[Scope], msgspec.Meta(min_length=1, max_length=6)]
    name: Name | None = None
    allowed_ips: Annotated[list[Annotated[str, msgspec.Meta(max_length=50)]], msgspec.Meta(max_length=50)] | None = None


class ApiKeyView(msgspec.Struct, kw_only=True):
    key_id: int
    name: str | None
    key_prefix: str
    scopes: list[str]
    allowed_ips: list[str] | None
    created_at: datetime
    revoked_at: datetime | None


class ApiKeyCreated(ApiKeyView):
    key: str | None  # shown once: null when the response is an idempotent replay


# The resources themselves (seed 004's item, location, stock entry, transaction) are the
# read models' shapes: `projections/models.py`.


# --- command results ------------------------------------------------------------------


class StockLevelResult(msgspec.Struct, kw_only=True):
    item_id: int
    location_id: int
    new_quantity: int
    reserved_quantity: int
    available: int


class AdjustResult(msgspec.Struct, kw_only=True):
    new_quantity: int


class CountResult(msgspec.Struct, kw_only=True):
    item_id: int
    location_id: int
    previous_quantity: int
    quantity: int
    change: int


class TransferSide(msgspec.Struct, kw_only=True):
    location_id: int
    location_name: str | None
    new_quantity: int


class TransferResult(msgspec.Struct, kw_only=True):
    from_location: TransferSide
    to_location: TransferSide
    transfer_id: str


class JobLineResult(msgspec.Struct, kw_only=True):
    item_id: int
    location_id: int
    quantity: int


class JobCommandResult(msgspec.Struct, kw_only=True):
    job_id: int
    reserved: list[JobLineResult] = []
    released: list[JobLineResult] = []
    consumed: list[JobLineResult] = []


# --- envelopes ------------------------------------------------------------------------


class Pagination(msgspec.Struct, kw_only=True):
    page: int
    per_page: int
    total: int
    total_pages: int


class Envelope(msgspec.Struct, Generic[T], kw_only=True):
    success: bool = True
    data: T
    request_id: str


class CommandEnvelope(msgspec.Struct, Generic[T], kw_only=True):
    success: bool = True
    data: T
    position: int  # the ledger position of the command's last event (also X-Ledger-Position)
    message: str | None = None
    request_id: str


class ListEnvelope(msgspec.Struct, Generic[T], kw_only=True):
    success: bool = True
    data: list[T]
    pagination: Pagination
    request_id: str


class ErrorDetail(msgspec.Struct, kw_only=True):
    field: str | None = None
    source: str | None = None  # body, query, path or header
    message: str | None = None
    # A batch's refused lines (DESIGN 10): which line, and its own refusal.
    index: int | None = None
    line: int | None = None  # CSV: the file's line number
    ref: str | None = None
    error: str | None = None
    available_quantity: int | None = None


class ErrorBody(msgspec.Struct, kw_only=True):
    """Every refusal. Domain errors may add fields of their own (e.g. `available`)."""

    success: bool = False
    error: str
    message: str
    details: list[ErrorDetail] | None = None  # validation_failed: one entry per field
    request_id: str
