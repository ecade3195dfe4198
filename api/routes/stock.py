"""Stock commands on one item: add, remove, adjust, and set a counted quantity."""

from __future__ import annotations

from litestar import Controller, Request, Response, post, put
from litestar.params import JSONBody

from api import command_requests, shared
from api.responses import recorded
from api.routes.params import ItemId, LocationId
from ledger.commands import AddStock, AdjustStock, RemoveStock, SetCountedQuantity
from ledger.store import CommandResult, EventStore
from schemas import StockAdjusted
from schemas.api import (
    AdjustResult,
    CommandEnvelope,
    CountResult,
    StockAdjustment,
    StockCount,
    StockLevelResult,
    StockMovement,
)

WRITE = {"scope": "inventory:write"}


def level_result(result: CommandResult, item_id: int, location_id: int) -> StockLevelResult:
    level = result.snapshot.item(item_id).level(location_id)
    return StockLevelResult(
        item_id=item_id, location_id=location_id, new_quantity=level.quantity,
        reserved_quantity=level.reserved, available=level.available,
    )


def adjust_result(result: CommandResult, item_id: int, location_id: int) -> AdjustResult:
    return AdjustResult(new_quantity=result.snapshot.item(item_id).level(location_id).quantity)


def count_result(result: CommandResult, item_id: int, location_id: int) -> CountResult:
    """A count's answer: the quantity before and after, and the Adjust's difference."""
    change = 0 if result.replayed else sum(e.data.quantity for e in result.events if isinstance(e.data, StockAdjusted))
    quantity = result.snapshot.item(item_id).level(location_id).quantity
    return CountResult(item_id=item_id, location_id=location_id, previous_quantity=quantity - change,
                       quantity=quantity, change=change)


async def adjust_stock(request: Request, store: EventStore, item_id: int, data: StockAdjustment) -> tuple[AdjustResult, int]:
    command = AdjustStock(item_id=item_id, location_id=data.location_id, quantity=data.quantity, reason=data.reason)
    result = await command_requests.execute(request, store, command)
    return adjust_result(result, item_id, data.location_id), result.position


class StockController(Controller):
    path = "/items/{item_id:int}"
    tags = ["stock"]

    @post("/add", opt=WRITE, operation_id="addStock", status_code=200)
    async def add(self, request: Request, store: shared.Store, item_id: ItemId, data: JSONBody[StockMovement]) -> Response[CommandEnvelope[StockLevelResult]]:
        """Record stock received at a location (an Add)."""
        command = AddStock(item_id=item_id, location_id=data.location_id, quantity=data.quantity, notes=data.notes)
        result = await command_requests.execute(request, store, command)
        return recorded(request, level_result(result, item_id, data.location_id), result.position, message="Stock added")

    @post("/remove", opt=WRITE, operation_id="removeStock", status_code=200)
    async def remove(self, request: Request, store: shared.Store, item_id: ItemId, data: JSONBody[StockMovement]) -> Response[CommandEnvelope[StockLevelResult]]:
        """Record stock taken out of a location (a Remove); only available stock can go."""
        command = RemoveStock(item_id=item_id, location_id=data.location_id, quantity=data.quantity, notes=data.notes)
        result = await command_requests.execute(request, store, command)
        return recorded(request, level_result(result, item_id, data.location_id), result.position, message="Stock removed")

    @post("/adjust", opt=WRITE, operation_id="adjustStock", status_code=200)
    async def adjust(self, request: Request, store: shared.Store, item_id: ItemId, data: JSONBody[StockAdjustment]) -> Response[CommandEnvelope[AdjustResult]]:
        """Correct the quantity at a location by a signed amount (an Adjust)."""
        body, position = await adjust_stock(request, store, item_id, data)
        return recorded(request, body, position, message="Stock adjusted")

    @put("/stock/{location_id:int}", opt=WRITE, operation_id="setCountedQuantity")
    async def count(
        self, request: Request, store: shared.Store, item_id: ItemId, location_id: LocationId, data: JSONBody[StockCount]
    ) -> Response[CommandEnvelope[CountResult]]:
        """Set the counted quantity at a location: an Adjust by the difference."""
        command = SetCountedQuantity(
            item_id=item_id, location_id=location_id, quantity=data.quantity, reason=data.reason,
            expected_quantity=data.expected_quantity,
        )
        result = await command_requests.execute(request, store, command)
        return recorded(request, count_result(result, item_id, location_id), result.position, message="Stock counted")
