"""Transfers: the Transfer_out / Transfer_in pair, written together or not at all."""

from __future__ import annotations

from litestar import Controller, Request, Response, post
from litestar.params import JSONBody

from api import command_requests, shared
from api.responses import recorded
from ledger.commands import TransferStock
from ledger.store import CommandResult, EventStore
from schemas.api import CommandEnvelope, TransferRequest, TransferResult, TransferSide


def transfer_result(result: CommandResult, data: TransferRequest | TransferStock) -> TransferResult:
    """The answer to a transfer, from its request or its command (a batch line's)."""
    item = result.snapshot.item(data.item_id)

    def side(location_id: int) -> TransferSide:
        location = result.snapshot.location(location_id)
        name = location.attributes.location_name if location.attributes else None
        return TransferSide(location_id=location_id, location_name=name, new_quantity=item.level(location_id).quantity)

    return TransferResult(
        from_location=side(data.from_location_id),
        to_location=side(data.to_location_id),
        transfer_id=str(result.events[0].data.transfer_id),  # type: ignore[union-attr]  # a transfer records transfer events only
    )


async def transfer_stock(request: Request, store: EventStore, data: TransferRequest) -> tuple[TransferResult, int]:
    command = TransferStock(
        item_id=data.item_id, from_location_id=data.from_location_id, to_location_id=data.to_location_id,
        quantity=data.quantity, notes=data.notes,
    )
    result = await command_requests.execute(request, store, command)
    return transfer_result(result, data), result.position


class TransferController(Controller):
    path = "/transfers"
    tags = ["stock"]

    @post("/", opt={"scope": "inventory:transfer"}, operation_id="transferStock", status_code=200)
    async def transfer(self, request: Request, store: shared.Store, data: JSONBody[TransferRequest]) -> Response[CommandEnvelope[TransferResult]]:
        """Move available stock of one item from one location to another."""
        body, position = await transfer_stock(request, store, data)
        return recorded(request, body, position, message="Stock transferred")
