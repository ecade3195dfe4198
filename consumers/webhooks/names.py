"""Webhook event names (DESIGN 8) and which of them a ledger event is."""

from __future__ import annotations

from collections.abc import Iterable

from ledger.errors import UnknownWebhookEvent
from schemas import (
    ItemCreated,
    ItemDeleted,
    ItemUpdated,
    JobCompleted,
    LedgerEvent,
    LocationCreated,
    LocationUpdated,
    StockAdded,
    StockAdjusted,
    StockReleased,
    StockRemoved,
    StockReserved,
    TransferredIn,
    TransferredOut,
)

ALL = "*"
STOCK_CHANGED = "item.stock_changed"
STOCK_LOW = "stock.low"
PING = "ping"  # POST /webhooks/{id}/test; sent whatever the endpoint subscribed to

_BY_EVENT: dict[type, str] = {
    ItemCreated: "item.created",
    ItemUpdated: "item.updated",
    ItemDeleted: "item.deleted",
    LocationCreated: "location.created",
    LocationUpdated: "location.updated",
}
# Every stock movement is `item.stock_changed` and its own specific name.
_BY_MOVEMENT: dict[type, str] = {
    StockAdded: "stock.added",
    StockRemoved: "stock.removed",
    StockAdjusted: "stock.adjusted",
    TransferredOut: "stock.transfer_out",
    TransferredIn: "stock.transfer_in",
    StockReserved: "stock.reserved",
    StockReleased: "stock.released",
    JobCompleted: "stock.job_completed",
}

EVENT_NAMES: tuple[str, ...] = (
    "item.created", "item.updated", "item.deleted", STOCK_CHANGED,
    *_BY_MOVEMENT.values(), STOCK_LOW, "location.created", "location.updated",
)


def names_of(event: LedgerEvent) -> list[str]:
    """The webhook event names a ledger event is, `stock.low` aside (that needs the item's level)."""
    if (specific := _BY_MOVEMENT.get(type(event))) is not None:
        return [STOCK_CHANGED, specific]
    name = _BY_EVENT.get(type(event))
    return [name] if name else []


def check_event_names(names: Iterable[str]) -> list[str]:
    """The names as given (in order, once each), or `unknown_event` naming the strangers."""
    wanted = list(dict.fromkeys(names))
    unknown = [n for n in wanted if n != ALL and n not in EVENT_NAMES]
    if unknown:
        raise UnknownWebhookEvent(
            f"unknown webhook event names: {', '.join(unknown)}; known: {ALL}, {', '.join(EVENT_NAMES)}",
            unknown=unknown,
        )
    return wanted


def wants(subscribed: Iterable[str], name: str) -> bool:
    return name == PING or any(s in (ALL, name) for s in subscribed)
