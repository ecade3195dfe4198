"""The reads: items, stock, transactions, locations, low stock, jobs, from the read models."""

from __future__ import annotations

from typing import Annotated

import msgspec
from litestar import Controller, Request, Response, get
from litestar.params import QueryParameter

from api import shared
from api.consistency import Consistency
from api.responses import listed, ok
from api.routes.asof import AsOf, AtPosition, past_stock
from api.routes.params import ActiveOnly, ItemId, JobId, LocationId, LowStockOnly, MinPosition, Page, PerPage
from ledger import errors
from projections import queries
from projections.models import Item, JobView, Location, StockEntry, StockSummaryLine, Transaction
from schemas import STOCK_TRANSACTION_TYPES
from schemas.api import NO_NUL, Envelope, ListEnvelope  # NO_NUL: PostgreSQL text cannot hold NUL

READ = {"scope": "inventory:read"}
Search = Annotated[str | None, QueryParameter(max_length=200, pattern=NO_NUL, description="Part number or name contains")]
Category = Annotated[str | None, QueryParameter(max_length=100, pattern=NO_NUL, description="Exact category")]
LocationTypeFilter = Annotated[str | None, QueryParameter(name="type", max_length=20, pattern=NO_NUL)]
TransactionType = Annotated[str | None, QueryParameter(name="type", max_length=20, description=", ".join(STOCK_TRANSACTION_TYPES))]


class ItemDetail(msgspec.Struct, kw_only=True):
    item: Item
    stock: list[StockEntry]


class LocationDetail(msgspec.Struct, kw_only=True):
    location: Location
    stock_summary: list[StockSummaryLine]


def _item_not_found(item_id: int) -> errors.NotFound:
    return errors.NotFound(f"item {item_id} does not exist")


class ItemReadController(Controller):
    path = "/items"
    tags = ["items"]

    @get("/", opt=READ, operation_id="listItems")
    async def list_items(
        self, request: Request, reads: shared.Reads, category: Category = None, search: Search = None,
        low_stock: LowStockOnly = None, page: Page = 1, per_page: PerPage = 50, min_position: MinPosition = None,
        consistency: Consistency = None,
    ) -> Response[ListEnvelope[Item]]:
        """List items (archived ones are left out), by id."""
        await reads.caught_up(request, min_position, consistency)
        rows, total = await queries.list_items(
            reads.pool, request.user.org_id, category=category, search=search,
            low_stock=low_stock, page=page, per_page=per_page,
        )
        return listed(request, rows, page=page, per_page=per_page, total=total)

    @get("/{item_id:int}", opt=READ, operation_id="getItem")
    async def get_item(
        self, request: Request, reads: shared.Reads, item_id: ItemId, min_position: MinPosition = None,
        consistency: Consistency = None,
    ) -> Response[Envelope[ItemDetail]]:
        """An item with its stock at every location."""
        await reads.caught_up(request, min_position, consistency)
        found = await queries.item_with_stock(reads.pool, request.user.org_id, item_id)
        if found is None:
            raise _item_not_found(item_id)
        return ok(request, ItemDetail(item=found[0], stock=found[1]))

    @get("/{item_id:int}/stock", opt=READ, operation_id="getItemStock")
    async def get_stock(
        self, request: Request, reads: shared.Reads, item_id: ItemId, min_position: MinPosition = None,
        consistency: Consistency = None, as_of: AsOf = None, at_position: AtPosition = None,
    ) -> Response[Envelope[list[StockEntry]]]:
        """The item's stock entries, one per location it has been at (now, or as_of / at_position)."""
        if as_of is not None or at_position is not None:
            return ok(request, await past_stock(request, reads.pool, item_id, as_of, at_position))
        await reads.caught_up(request, min_position, consistency)
        found = await queries.item_with_stock(reads.pool, request.user.org_id, item_id)
        if found is None:
            raise _item_not_found(item_id)
        return ok(request, found[1])

    @get("/{item_id:int}/transactions", opt=READ, operation_id="listItemTransactions")
    async def transactions(
        self, request: Request, reads: shared.Reads, item_id: ItemId, transaction_type: TransactionType = None,
        page: Page = 1, per_page: PerPage = 50, min_position: MinPosition = None, consistency: Consistency = None,
    ) -> Response[ListEnvelope[Transaction]]:
        """The item's stock transactions, newest first."""
        if transaction_type is not None and transaction_type not in STOCK_TRANSACTION_TYPES:
            raise errors.ValidationFailed(f"type must be one of {', '.join(STOCK_TRANSACTION_TYPES)}")
        await reads.caught_up(request, min_position, consistency)
        pool, org_id = reads.pool, request.user.org_id
        if await queries.get_item(pool, org_id, item_id) is None:
            raise _item_not_found(item_id)
        rows, total = await queries.item_transactions(
            pool, org_id, item_id, type=transaction_type, page=page, per_page=per_page
        )
        return listed(request, rows, page=page, per_page=per_page, total=total)


class LocationReadController(Controller):
    path = "/locations"
    tags = ["locations"]

    @get("/", opt=READ, operation_id="listLocations")
    async def list_locations(
        self, request: Request, reads: shared.Reads, location_type: LocationTypeFilter = None,
        active_only: ActiveOnly = True, page: Page = 1, per_page: PerPage = 50, min_position: MinPosition = None,
        consistency: Consistency = None,
    ) -> Response[ListEnvelope[Location]]:
        """List locations (only active ones unless active_only=false)."""
        await reads.caught_up(request, min_position, consistency)
        rows, total = await queries.list_locations(
            reads.pool, request.user.org_id, type=location_type, active_only=active_only,
            page=page, per_page=per_page,
        )
        return listed(request, rows, page=page, per_page=per_page, total=total)

    @get("/{location_id:int}", opt=READ, operation_id="getLocation")
    async def get_location(
        self, request: Request, reads: shared.Reads, location_id: LocationId, min_position: MinPosition = None,
        consistency: Consistency = None,
    ) -> Response[Envelope[LocationDetail]]:
        """A location and a summary of the items stocked there."""
        await reads.caught_up(request, min_position, consistency)
        found = await queries.get_location(reads.pool, request.user.org_id, location_id)
        if found is None:
            raise errors.NotFound(f"location {location_id} does not exist")
        return ok(request, LocationDetail(location=found[0], stock_summary=found[1]))


@get("/low-stock", opt=READ, operation_id="listLowStock", tags=["items"])
async def low_stock(
    request: Request, reads: shared.Reads, page: Page = 1, per_page: PerPage = 50,
    min_position: MinPosition = None, consistency: Consistency = None,
) -> Response[ListEnvelope[Item]]:
    """Items at or below their min_stock_level (> 0), most critical first."""
    await reads.caught_up(request, min_position, consistency)
    rows, total = await queries.low_stock(reads.pool, request.user.org_id, page=page, per_page=per_page)
    return listed(request, rows, page=page, per_page=per_page, total=total)


@get("/jobs/{job_id:int}", opt=READ, operation_id="getJob", tags=["jobs"])
async def get_job(
    request: Request, reads: shared.Reads, job_id: JobId, min_position: MinPosition = None,
    consistency: Consistency = None,
) -> Response[Envelope[JobView]]:
    """What a job holds now and has consumed, per item and location."""
    await reads.caught_up(request, min_position, consistency)
    view = await queries.job_view(reads.pool, request.user.org_id, job_id)
    if view is None:
        raise errors.NotFound(f"job {job_id} has no reservations or consumption")
    return ok(request, view)
