"""Small builders for tests: a few locations and items in one organization."""

from __future__ import annotations

import uuid

from ledger.commands import AddStock
from ledger.store import EventStore
from schemas import ItemAttributes, LocationAttributes


async def make_location(store: EventStore, org_id: int, name: str = "Main Warehouse", **fields) -> int:
    result = await store.create_location(org_id, LocationAttributes(location_name=name, **fields))
    return result.events[0].data.location_id


async def make_item(store: EventStore, org_id: int, part_number: str | None = None, **fields) -> int:
    attributes = ItemAttributes(
        part_number=part_number or f"P-{uuid.uuid4().hex[:8]}", part_name=fields.pop("part_name", "Filter"), **fields
    )
    result = await store.create_item(org_id, attributes)
    return result.events[0].data.item_id


async def stocked(store: EventStore, org_id: int, item_id: int, location_id: int, quantity: int) -> None:
    await store.execute(org_id, AddStock(item_id=item_id, location_id=location_id, quantity=quantity))
