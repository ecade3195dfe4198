"""The items read model: every item's attributes and its quantity on hand over all locations.

`updated_at` is the recorded_at of the item's last ItemCreated, ItemUpdated or
ItemDeleted: it dates the item's *record*, as seed 004 shows it (an item whose stock
fell is not an item that was edited). Stock movements change `quantity_on_hand` only;
when stock last moved is the stock entries' `last_updated`.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

import asyncpg

from ledger.columns import columns
from ledger.effects import effect
from projections.projection import ReadModel
from projections.statements import READ_MODEL_SCHEMA
from schemas import EventEnvelope, ItemAttributes, ItemCreated, ItemDeleted, ItemUpdated


class _Item:
    """What one batch does to one item."""

    __slots__ = ("attributes", "created_at", "deleted", "quantity_change", "updated_at")

    def __init__(self) -> None:
        self.attributes: ItemAttributes | None = None
        self.created_at: datetime | None = None
        self.updated_at: datetime | None = None
        self.deleted = False
        self.quantity_change = 0


class Items(ReadModel):
    base_name = "items"
    tables = ("items",)

    def __init__(self, schema: str = READ_MODEL_SCHEMA):
        super().__init__(schema)
        self._apply = self.statement("apply_items")

    async def apply(self, conn: asyncpg.Connection, events: Sequence[EventEnvelope]) -> None:
        items: dict[tuple[int, int], _Item] = {}
        for e in events:
            data = e.data
            quantity = 0
            if (moved := effect(data)) is not None:
                quantity = moved.quantity
                if not quantity:  # moves no stock on hand (Reserve, Release): the total stays as it is
                    continue
            elif not isinstance(data, ItemCreated | ItemUpdated | ItemDeleted):
                continue
            key = (e.org_id, data.item_id)  # type: ignore[union-attr]  # an event that is not a location's has an item_id
            item = items.get(key) or items.setdefault(key, _Item())
            match data:
                case ItemCreated(attributes=attributes):
                    item.attributes, item.created_at, item.updated_at = attributes, e.recorded_at, e.recorded_at
                case ItemUpdated(attributes=attributes):
                    item.attributes, item.updated_at = attributes, e.recorded_at
                case ItemDeleted():
                    item.deleted, item.updated_at = True, e.recorded_at
                case _:
                    item.quantity_change += quantity
        if items:
            await conn.execute(self._apply, *columns(_rows(items)))


_NO_ATTRIBUTES = (None,) * 10


def _attributes(a: ItemAttributes | None) -> tuple:
    if a is None:
        return _NO_ATTRIBUTES
    return (
        a.part_number, a.part_name, a.description, a.category, a.serial_number,
        a.min_stock_level, a.reorder_quantity, a.cost_per_unit, a.price_per_unit, a.supplier_id,
    )


def _rows(items: dict[tuple[int, int], _Item]) -> list[tuple]:
    return [
        (org_id, item_id, item.attributes is not None, *_attributes(item.attributes),
         item.quantity_change, item.deleted, item.created_at, item.updated_at)
        for (org_id, item_id), item in items.items()
    ]
