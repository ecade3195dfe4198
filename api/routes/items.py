"""Items: create, replace, change and archive (the reads come from the read models)."""

from __future__ import annotations

from datetime import datetime

import msgspec
from litestar import Controller, Request, Response, delete, patch, post, put
from litestar.params import JSONBody

from api import command_requests, shared
from api.responses import recorded
from api.routes.params import ItemId
from ledger import errors
from ledger.commands import DeleteItem, UpdateItem
from ledger.store import CommandResult, EventStore
from projections.models import Item as ItemView
from schemas import ItemAttributes, item_stream
from schemas.api import CommandEnvelope, ItemCreate, ItemPatch, ItemReplace

WRITE = {"scope": "inventory:write"}
_ATTRIBUTES = ItemAttributes.__struct_fields__


def item_view(
    item_id: int, attributes: ItemAttributes, quantity_on_hand: int, created_at: datetime, updated_at: datetime
) -> ItemView:
    return ItemView(
        id=item_id, **msgspec.structs.asdict(attributes), quantity_on_hand=quantity_on_hand,
        created_at=created_at, updated_at=updated_at,
    )


def created_item_view(result: CommandResult) -> ItemView:
    """The new item as its recorded events describe it (so a replay answers the same)."""
    created = result.events[0]
    initial = sum(e.data.quantity for e in result.events[1:])  # type: ignore[misc, union-attr]  # the command decides the events it records; the item exists here
    return item_view(created.data.item_id, created.data.attributes, initial, created.recorded_at, created.recorded_at)  # type: ignore[arg-type, union-attr]  # the command decides the events it records; the item exists here


async def create_item(request: Request, store: EventStore, data: ItemCreate) -> tuple[ItemView, int]:
    attributes = ItemAttributes(**{f: getattr(data, f) for f in _ATTRIBUTES})
    location_id = data.location_id
    if data.quantity_on_hand and location_id is None:
        location_id = await store.default_location(request.user.org_id)
        if location_id is None:
            raise errors.ValidationFailed(
                "quantity_on_hand needs a location: create one first or pass location_id",
                code="missing_location_id",
            )
    result = await command_requests.create_item(request, store, attributes, initial_quantity=data.quantity_on_hand, location_id=location_id)
    return created_item_view(result), result.position


async def replace_item(request: Request, store: EventStore, item_id: int, data: ItemReplace) -> tuple[ItemView, int]:
    attributes = ItemAttributes(**{f: getattr(data, f) for f in _ATTRIBUTES})
    return await _update(request, store, UpdateItem(item_id=item_id, attributes=attributes))


async def change_item(request: Request, store: EventStore, item_id: int, data: ItemPatch) -> tuple[ItemView, int]:
    changes = {f: v for f in _ATTRIBUTES if (v := getattr(data, f)) is not msgspec.UNSET}
    if not changes:
        raise errors.ValidationFailed("No recognized fields in the request body", code="no_fields")
    return await _update(request, store, UpdateItem(item_id=item_id, changes=changes))


async def _update(request: Request, store: EventStore, command: UpdateItem) -> tuple[ItemView, int]:
    result = await command_requests.execute(request, store, command)
    created_at = await store.created_at(request.user.org_id, item_stream(command.item_id))
    item = result.snapshot.item(command.item_id)
    view = item_view(
        command.item_id, item.attributes, sum(level.quantity for level in item.stock.values()),  # type: ignore[arg-type]  # the command decides the events it records; the item exists here
        created_at, result.events[-1].recorded_at if result.events else created_at,  # type: ignore[arg-type]  # the command decides the events it records; the item exists here
    )
    return view, result.position


class ItemController(Controller):
    path = "/items"
    tags = ["items"]

    @post("/", opt=WRITE, operation_id="createItem", status_code=201)
    async def create(self, request: Request, store: shared.Store, data: JSONBody[ItemCreate]) -> Response[CommandEnvelope[ItemView]]:
        """Create an item; an initial `quantity_on_hand` is recorded as an Add."""
        view, position = await create_item(request, store, data)
        return recorded(request, view, position, status=201, message="Item created")

    @put("/{item_id:int}", opt=WRITE, operation_id="replaceItem")
    async def replace(self, request: Request, store: shared.Store, item_id: ItemId, data: JSONBody[ItemReplace]) -> Response[CommandEnvelope[ItemView]]:
        """Replace every attribute of an item (omitted ones reset); quantity_on_hand is read-only."""
        view, position = await replace_item(request, store, item_id, data)
        return recorded(request, view, position, message="Item updated")

    @patch("/{item_id:int}", opt=WRITE, operation_id="updateItem")
    async def change(self, request: Request, store: shared.Store, item_id: ItemId, data: JSONBody[ItemPatch]) -> Response[CommandEnvelope[ItemView]]:
        """Change the attributes given; the others keep their values."""
        view, position = await change_item(request, store, item_id, data)
        return recorded(request, view, position, message="Item updated")

    @delete("/{item_id:int}", opt=WRITE, operation_id="archiveItem", status_code=200)
    async def archive(self, request: Request, store: shared.Store, item_id: ItemId) -> Response[CommandEnvelope[dict]]:
        """Archive an item (an ItemDeleted event); refused while it has stock or reservations."""
        result = await command_requests.execute(request, store, DeleteItem(item_id=item_id))
        return recorded(request, {"id": item_id, "deleted": True}, result.position, message="Item archived")
