"""An item's stock level as the emitter folds it, and when it crosses into `stock.low`.

`stock.low` fires once per crossing: when an item that was above its `min_stock_level`
(> 0) is at or below it after a stock movement, or after its level was raised above what
it holds. It fires again only once the item has been back above. Creating an item never
fires (nothing is stocked yet: the first Add lifts it above). Pure: no I/O.
"""

from __future__ import annotations

import msgspec

from ledger.effects import effect
from schemas import EventEnvelope, ItemCreated, ItemUpdated


class ItemLevel(msgspec.Struct, frozen=True, kw_only=True):
    org_id: int
    item_id: int
    quantity_on_hand: int = 0  # over every location
    min_stock_level: int = 0
    low: bool = False
    part_number: str | None = None
    part_name: str | None = None
    position: int = 0  # the last event folded in


def _change(event) -> int:
    """How much an event changes the item's total on hand (`ledger.effects`' `total`).
    Reservations change nothing, and neither does a transfer: its two events move stock
    between two locations of the same item, and counting them one by one would dip the
    total in between (a false `stock.low` for every transfer of an item near its level)."""
    moved = effect(event)
    return 0 if moved is None else moved.total


def evolve(level: ItemLevel, envelope: EventEnvelope) -> tuple[ItemLevel, bool]:
    """The level after `envelope`, and whether the item just crossed into low stock."""
    event = envelope.data
    changes: dict = {"position": envelope.position}
    if isinstance(event, ItemCreated | ItemUpdated):
        a = event.attributes
        changes.update(min_stock_level=a.min_stock_level, part_number=a.part_number, part_name=a.part_name)
    quantity = level.quantity_on_hand + _change(event)
    threshold = changes.get("min_stock_level", level.min_stock_level)
    low = threshold > 0 and quantity <= threshold
    crossed = low and not level.low and not isinstance(event, ItemCreated)
    return msgspec.structs.replace(level, quantity_on_hand=quantity, low=low, **changes), crossed
