"""Seed 004's Inventory API at `/api/v1/inventory`, answering exactly as that document says.

One path; the query parameters `id`, `sub` and `location_id` choose the operation. Each
operation is a thin translation onto the handlers of the resource API, with seed 004's
response shapes (`item_id` beside `data`, `message`, ...), its error codes (for example
`duplicate_part_number` is a 400 here and a 409 on `/items`) and its scopes.
"""

from __future__ import annotations

from typing import Annotated, Any

from litestar import Controller, Request, Response, get, patch, post, put
from litestar.connection import ASGIConnection
from litestar.handlers.base import BaseRouteHandler
from litestar.params import QueryParameter

from api import shared
from api.auth import grants
from api.bodies import decode
from api.consistency import Consistency
from api.errors import InsufficientScope
from api.request_ids import request_id
from api.routes.items import change_item, create_item, replace_item
from api.routes.params import ActiveOnly, LowStockOnly, MinPosition, Page, PerPage
from api.routes.reads import ItemDetail, LocationDetail
from api.routes.stock import adjust_stock
from api.routes.transfers import transfer_stock
from ledger import errors
from projections import queries
from schemas import STOCK_TRANSACTION_TYPES
from schemas.api import NO_NUL, ItemCreate, ItemPatch, ItemReplace, StockAdjustment, TransferRequest
from schemas.events import MAX_QUANTITY

Id = Annotated[int | None, QueryParameter(ge=1, le=MAX_QUANTITY, description="Item id")]
Sub = Annotated[
    str | None,
    QueryParameter(max_length=20, description="stock, transactions, adjust, transfer, locations or low-stock"),
]
LocationIdParam = Annotated[int | None, QueryParameter(ge=1, le=MAX_QUANTITY, description="With sub=locations")]
Text = Annotated[str | None, QueryParameter(max_length=200, pattern=NO_NUL)]
TypeFilter = Annotated[str | None, QueryParameter(name="type", max_length=20, pattern=NO_NUL)]

READ, WRITE, TRANSFER = "inventory:read", "inventory:write", "inventory:transfer"


def _seed_scope(connection: ASGIConnection, _: BaseRouteHandler) -> None:
    """Guard: seed 004's scope for the operation asked for (reads need read, a transfer
    transfer, every other write write). A guard, not a check in the handler, so that
    an idempotent replay is refused to a key that could not make the request either."""
    if connection.scope["method"] == "OPTIONS":  # type: ignore[typeddict-item]  # answered without a key, like every route's
        return
    if connection.scope["method"] == "GET":  # type: ignore[typeddict-item]  # HTTP scopes only
        needed = READ
    else:
        needed = TRANSFER if connection.query_params.get("sub") == "transfer" else WRITE
    if not grants(connection.user.scopes, needed):
        raise InsufficientScope(f"This endpoint requires the {needed} scope")


def _unknown(sub: str | None) -> errors.NotFound:
    return errors.NotFound(f"unknown operation sub={sub!r}" if sub else "an item id is required here")


async def _body(request: Request, body_type: type, *, quantity_code: str | None = None, lenient: bool = False):
    """The body decoded as seed 004 reports its faults (api/bodies.py); no body is `{}`."""
    return decode(await request.body() or b"{}", body_type, quantity_code=quantity_code, lenient=lenient)


def _envelope(request: Request, data: Any, **extra: Any) -> dict[str, Any]:
    return {"success": True, "data": data, **extra, "request_id": request_id(request.scope)}


def _command(request: Request, data: Any, position: int, *, status: int = 200, **extra: Any) -> Response:
    body = _envelope(request, data, **extra, position=position)
    return Response(body, status_code=status, headers={"X-Ledger-Position": str(position)})


def _pagination(page: int, per_page: int, total: int) -> dict[str, int]:
    return {"page": page, "per_page": per_page, "total": total, "total_pages": -(-total // per_page)}


async def _seed_errors(call):
    """Seed 004 reports a duplicate part number as a 400, and an unknown item as not_found."""
    try:
        return await call
    except errors.DuplicatePartNumber as exc:
        raise errors.BadRequest(exc.message, code="duplicate_part_number") from None


class InventoryController(Controller):
    path = "/inventory"
    tags = ["inventory (seed 004)"]
    guards = [_seed_scope]

    @get("/", operation_id="inventoryGet")
    async def read(
        self, request: Request, reads: shared.Reads, id: Id = None, sub: Sub = None, location_id: LocationIdParam = None,
        category: Text = None, search: Text = None, low_stock: LowStockOnly = None, type: TypeFilter = None,
        active_only: ActiveOnly = True, page: Page = 1, per_page: PerPage = 50, min_position: MinPosition = None,
        consistency: Consistency = None,
    ) -> Response[dict]:
        """Seed 004 reads: items, one item (`id`), its `stock` or `transactions`, `locations`, `low-stock`."""
        # Read-after-write holds here as on every read (DESIGN 6, Consistency).
        await reads.caught_up(request, min_position, consistency)
        pool, org_id = reads.pool, request.user.org_id
        if sub is None and id is None:
            rows, total = await queries.list_items(
                pool, org_id, category=category, search=search, low_stock=low_stock, page=page, per_page=per_page
            )
            return Response(_envelope(request, rows, pagination=_pagination(page, per_page, total)))
        if sub in (None, "stock") and id is not None:
            found = await queries.item_with_stock(pool, org_id, id)
            if found is None:
                raise errors.NotFound(f"item {id} does not exist")
            item, stock = found
            if sub is None:
                return Response(_envelope(request, ItemDetail(item=item, stock=stock)))
            return Response(_envelope(request, stock, item_id=id))
        if sub == "transactions" and id is not None:
            if await queries.get_item(pool, org_id, id) is None:
                raise errors.NotFound(f"item {id} does not exist")
            if type is not None and type not in STOCK_TRANSACTION_TYPES:
                raise errors.ValidationFailed(f"type must be one of {', '.join(STOCK_TRANSACTION_TYPES)}")
            rows, total = await queries.item_transactions(pool, org_id, id, type=type, page=page, per_page=per_page)  # type: ignore[assignment]  # a name reused across branches with another type
            return Response(_envelope(request, rows, item_id=id, pagination=_pagination(page, per_page, total)))
        if sub == "locations" and location_id is not None:
            found = await queries.get_location(pool, org_id, location_id)  # type: ignore[assignment]  # a name reused across branches with another type
            if found is None:
                raise errors.NotFound(f"location {location_id} does not exist")
            return Response(_envelope(request, LocationDetail(location=found[0], stock_summary=found[1])))  # type: ignore[arg-type]  # a name reused across branches with another type
        if sub == "locations":
            rows, total = await queries.list_locations(  # type: ignore[assignment]  # a name reused across branches with another type
                pool, org_id, type=type, active_only=active_only, page=page, per_page=per_page
            )
            return Response(_envelope(request, rows, pagination=_pagination(page, per_page, total)))
        if sub == "low-stock":
            rows, total = await queries.low_stock(pool, org_id, page=page, per_page=per_page)
            return Response(_envelope(request, rows, pagination=_pagination(page, per_page, total)))
        raise _unknown(sub)

    @post("/", operation_id="inventoryPost", status_code=200)
    async def write(self, request: Request, store: shared.Store, id: Id = None, sub: Sub = None) -> Response[dict]:
        """Seed 004 commands: create an item, `sub=adjust` with `id`, or `sub=transfer`."""
        if sub is None and id is None:
            data = await _body(request, ItemCreate, lenient=True)
            view, position = await _seed_errors(create_item(request, store, data))
            return _command(request, view, position, status=201, item_id=view.id)
        if sub == "adjust" and id is not None:
            data = await _body(request, StockAdjustment, quantity_code="missing_quantity")
            body, position = await adjust_stock(request, store, id, data)
            return _command(request, body, position, message="Stock adjusted")
        if sub == "transfer":
            data = await _body(request, TransferRequest, quantity_code="invalid_quantity")
            body, position = await transfer_stock(request, store, data)  # type: ignore[assignment]  # a name reused across branches with another type
            return _command(request, body, position, message="Stock transferred")
        raise _unknown(sub)

    @put("/", operation_id="inventoryPut")
    async def replace(self, request: Request, store: shared.Store, id: Id = None) -> Response[dict]:
        """Seed 004: replace an item (`id`); fields left out reset to their defaults."""
        if id is None:
            raise _unknown(None)
        data = await _body(request, ItemReplace, lenient=True)
        view, position = await _seed_errors(replace_item(request, store, id, data))
        return _command(request, view, position)

    @patch("/", operation_id="inventoryPatch")
    async def change(self, request: Request, store: shared.Store, id: Id = None) -> Response[dict]:
        """Seed 004: change some fields of an item (`id`)."""
        if id is None:
            raise _unknown(None)
        data = await _body(request, ItemPatch, lenient=True)
        view, position = await _seed_errors(change_item(request, store, id, data))
        return _command(request, view, position)
