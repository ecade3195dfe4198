"""The read models' rows as the ledger says they must be, folded with `ledger.decide.evolve`.

`verify` compares these with the live tables. Stock levels, totals on hand, holds and
attributes come from `evolve`, the same fold the write model and as-of reads use, not
from the projections' batching and SQL, so a projection bug shows up there as surely as
an edited row does. What `evolve` does not keep (when things happened, what a job
consumed and released in all) is counted here alongside it, from the same
`ledger.effects`; a transaction row is the event itself in the history's words
(`projections/transactions.py`), checked for drift.
"""

from __future__ import annotations

from datetime import datetime

from ledger.decide import evolve
from ledger.effects import effect, is_stock_event
from ledger.state import ItemState, LocationState
from projections.movement import signed_quantity
from projections.transactions import job_id, notes, related_location_id
from schemas import EventEnvelope, ItemCreated, ItemDeleted, ItemUpdated, LocationCreated, parse_stream

# The key columns of each read-model table, in primary-key order.
KEYS = {
    "items": ("org_id", "item_id"),
    "stock": ("org_id", "item_id", "location_id"),
    "job_holdings": ("org_id", "job_id", "item_id", "location_id"),
    "transactions": ("position",),
    "locations": ("org_id", "location_id"),
}
Rows = dict[tuple, dict[str, object]]


class Refold:
    def __init__(self) -> None:
        self.items: dict[tuple[int, int], ItemState] = {}
        self.locations: dict[tuple[int, int], LocationState] = {}
        self.created: dict[tuple, datetime] = {}  # (org, "item"|"location", id) -> recorded_at
        self.updated: dict[tuple, datetime] = {}
        self.moved: dict[tuple[int, int, int], datetime] = {}  # last movement at (org, item, location)
        self.jobs: dict[tuple[int, int, int, int], tuple[int, int, datetime | None]] = {}  # consumed, released, expiry

    def evolve(self, e: EventEnvelope) -> None:
        data, org, at = e.data, e.org_id, e.recorded_at
        if parse_stream(e.stream)[0] == "location":
            key = (org, data.location_id)  # type: ignore[union-attr]  # the stream's kind decides the event type
            self.locations[key] = evolve(self.locations.get(key) or LocationState(location_id=data.location_id), data)  # type: ignore[union-attr]  # the stream's kind decides the event type
            self._dated((org, "location", data.location_id), at, isinstance(data, LocationCreated))  # type: ignore[union-attr]  # the stream's kind decides the event type
            return
        key = (org, data.item_id)  # type: ignore[union-attr]  # the stream's kind decides the event type
        self.items[key] = evolve(self.items.get(key) or ItemState(item_id=data.item_id), data)  # type: ignore[union-attr]  # the stream's kind decides the event type
        if isinstance(data, ItemCreated | ItemUpdated | ItemDeleted):
            self._dated((org, "item", data.item_id), at, isinstance(data, ItemCreated))
            return
        self.moved[(org, data.item_id, data.location_id)] = at  # type: ignore[union-attr]  # the stream's kind decides the event type
        moved = effect(data)
        if moved.job_id is not None:  # type: ignore[union-attr]  # the stream's kind decides the event type
            place = (org, moved.job_id, data.item_id, data.location_id)  # type: ignore[union-attr]  # the stream's kind decides the event type
            consumed, released, expires_at = self.jobs.get(place, (0, 0, None))
            self.jobs[place] = (consumed + moved.consumed, released + moved.released,  # type: ignore[union-attr]  # the stream's kind decides the event type
                                moved.expires_at if moved.renews else expires_at)  # type: ignore[union-attr]  # the stream's kind decides the event type

    def _dated(self, key: tuple, at: datetime, created: bool) -> None:
        if created:
            self.created[key] = at
        self.updated[key] = at

    def copy(self) -> Refold:
        """The fold as it stands (states are immutable: copying the maps is enough)."""
        other = Refold()
        for name in ("items", "locations", "created", "updated", "moved", "jobs"):
            setattr(other, name, dict(getattr(self, name)))
        return other

    # --- the rows ---------------------------------------------------------------------

    def rows(self, table: str) -> Rows:
        return getattr(self, f"_{table}")()

    def _items(self) -> Rows:
        rows = {}
        for (org, item_id), item in self.items.items():
            rows[(org, item_id)] = {
                **{f: getattr(item.attributes, f) for f in item.attributes.__struct_fields__},  # type: ignore[union-attr]  # the stream's kind decides the event type
                "quantity_on_hand": item.quantity_on_hand, "deleted": item.deleted,
                "created_at": self.created[(org, "item", item_id)], "updated_at": self.updated[(org, "item", item_id)],
            }
        return rows

    def _stock(self) -> Rows:
        return {
            (org, item.item_id, location_id): {"quantity": level.quantity, "reserved": level.reserved,
                                               "last_updated": self.moved[(org, item.item_id, location_id)]}
            for (org, _), item in self.items.items()
            for location_id, level in item.stock.items()
            if level.recorded
        }

    def _job_holdings(self) -> Rows:
        return {
            (org, job, item_id, location_id): {
                "reserved": self.items[(org, item_id)].level(location_id).held(job),
                "consumed": consumed, "released": released, "expires_at": expires_at,
            }
            for (org, job, item_id, location_id), (consumed, released, expires_at) in self.jobs.items()
        }

    def _locations(self) -> Rows:
        return {
            (org, location_id): {
                **{f: getattr(location.attributes, f) for f in location.attributes.__struct_fields__},  # type: ignore[union-attr]  # the stream's kind decides the event type
                "created_at": self.created[(org, "location", location_id)],
                "updated_at": self.updated[(org, "location", location_id)],
            }
            for (org, location_id), location in self.locations.items()
        }


def transaction_row(e: EventEnvelope) -> dict[str, object] | None:
    """The transaction history row of a stock event (None for any other event)."""
    data = e.data
    if not is_stock_event(data):
        return None
    return {
        "org_id": e.org_id, "item_id": data.item_id, "transaction_type": e.type, "quantity": signed_quantity(data),
        "location_id": data.location_id, "related_location_id": related_location_id(data), "job_id": job_id(data),
        "user_name": e.metadata.user_name, "notes": notes(data), "recorded_at": e.recorded_at,
    }
