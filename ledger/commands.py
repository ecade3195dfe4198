"""Commands: what a caller asks the ledger to do. `decide` turns one into events or a refusal.

Commands are already-validated intent (types are right, ids are integers); the rules of
the domain (positive quantities, enough stock, active locations) are checked by `decide`.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import msgspec

from schemas import ItemAttributes, LocationAttributes


class Command(msgspec.Struct, frozen=True, kw_only=True):
    pass


class Line(msgspec.Struct, frozen=True, kw_only=True):
    item_id: int
    location_id: int
    quantity: int


class AddStock(Command, frozen=True):
    item_id: int
    location_id: int
    quantity: int
    notes: str | None = None


class RemoveStock(Command, frozen=True):
    item_id: int
    location_id: int
    quantity: int
    notes: str | None = None


class AdjustStock(Command, frozen=True):
    item_id: int
    location_id: int
    quantity: int  # signed, not 0
    reason: str | None = None


class SetCountedQuantity(Command, frozen=True):
    item_id: int
    location_id: int
    quantity: int  # the counted quantity, >= 0
    reason: str | None = None
    expected_quantity: int | None = None  # refuse if the recorded quantity moved since the count began


class TransferStock(Command, frozen=True):
    item_id: int
    from_location_id: int
    to_location_id: int
    quantity: int
    notes: str | None = None
    # The id both halves share. The store fills it in (from the command id, or at random)
    # when the caller leaves it out, so decide stays deterministic.
    transfer_id: str | None = None


class ReserveStock(Command, frozen=True):
    job_id: int
    lines: list[Line]
    expires_at: datetime | None = None
    notes: str | None = None


class ReleaseStock(Command, frozen=True):
    job_id: int
    lines: list[Line] | None = None  # None: everything the job holds
    reason: str = "requested"
    notes: str | None = None
    # An expiry's release (ledger/expiry.py): a line releases the job's hold only if the
    # hold is still as it was found expired, this `expires_at` and exactly the line's
    # quantity; a hold renewed, given back, consumed or already released since records
    # nothing. Checked in `decide`, on the state the store appends to.
    expired_at: datetime | None = None


class CompleteJob(Command, frozen=True):
    job_id: int
    lines: list[Line] | None = None  # None: exactly what the job holds
    notes: str | None = None


class CreateItem(Command, frozen=True):
    item_id: int  # allocated by the store before deciding
    attributes: ItemAttributes
    # Stock the item arrives with (seed 004's `quantity_on_hand` on create), recorded as an
    # Add at `location_id` in the same command.
    initial_quantity: int = 0
    location_id: int | None = None


class UpdateItem(Command, frozen=True):
    """Replace an item's attributes (`attributes`, PUT) or change some of them (`changes`, PATCH)."""

    item_id: int
    attributes: ItemAttributes | None = None
    changes: dict[str, Any] | None = None


class DeleteItem(Command, frozen=True):
    item_id: int


class CreateLocation(Command, frozen=True):
    location_id: int
    attributes: LocationAttributes


class UpdateLocation(Command, frozen=True):
    """Replace a location's attributes, or change some of them (`changes`)."""

    location_id: int
    attributes: LocationAttributes | None = None
    changes: dict[str, Any] | None = None


StockCommand = (
    AddStock
    | RemoveStock
    | AdjustStock
    | SetCountedQuantity
    | TransferStock
    | ReserveStock
    | ReleaseStock
    | CompleteJob
)
AnyCommand = StockCommand | CreateItem | UpdateItem | DeleteItem | CreateLocation | UpdateLocation
