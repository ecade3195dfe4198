"""The state a decision needs, and nothing more: one item's stock by location, one location.

States are immutable; `evolve` returns new ones. `Snapshot` is the part of the write model a
single command reads: the items and locations it names, with the stock levels (and the
jobs' holds) at the places it touches.
"""

from __future__ import annotations

from datetime import datetime

import msgspec

from schemas import ItemAttributes, LocationAttributes


class Hold(msgspec.Struct, frozen=True, kw_only=True):
    """What one job holds at one place. Never 0: a hold given back entirely is gone."""

    quantity: int
    expires_at: datetime | None = None


class StockLevel(msgspec.Struct, frozen=True, kw_only=True):
    quantity: int = 0
    reserved: int = 0
    holds: dict[int, Hold] = {}  # job_id -> its hold here
    recorded: bool = False  # a stock record exists here (a movement happened at some time)

    @property
    def available(self) -> int:
        return self.quantity - self.reserved

    def held(self, job_id: int) -> int:
        hold = self.holds.get(job_id)
        return hold.quantity if hold else 0


EMPTY_LEVEL = StockLevel()


class ItemState(msgspec.Struct, frozen=True, kw_only=True):
    item_id: int
    version: int = 0
    attributes: ItemAttributes | None = None
    deleted: bool = False
    stock: dict[int, StockLevel] = {}  # location_id -> level (only the places loaded)
    quantity_on_hand: int = 0  # over every location, loaded or not: it too must fit 64 bits

    @property
    def exists(self) -> bool:
        return self.attributes is not None and not self.deleted

    def level(self, location_id: int) -> StockLevel:
        return self.stock.get(location_id, EMPTY_LEVEL)


class LocationState(msgspec.Struct, frozen=True, kw_only=True):
    location_id: int
    version: int = 0
    attributes: LocationAttributes | None = None

    @property
    def exists(self) -> bool:
        return self.attributes is not None

    @property
    def active(self) -> bool:
        return self.attributes is not None and self.attributes.is_active


class Snapshot(msgspec.Struct, frozen=True, kw_only=True):
    items: dict[int, ItemState] = {}
    locations: dict[int, LocationState] = {}

    def item(self, item_id: int) -> ItemState:
        return self.items.get(item_id) or ItemState(item_id=item_id)

    def location(self, location_id: int) -> LocationState:
        return self.locations.get(location_id) or LocationState(location_id=location_id)

    def job_holdings(self, job_id: int) -> list[tuple[int, int, int]]:
        """(item_id, location_id, quantity) for everything the job holds in this snapshot."""
        return sorted(
            (item.item_id, location_id, level.holds[job_id].quantity)
            for item in self.items.values()
            for location_id, level in item.stock.items()
            if job_id in level.holds
        )
