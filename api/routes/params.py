"""Path and query parameters shared by the routes, each bounded."""

from __future__ import annotations

from typing import Annotated

from litestar.params import Parameter, QueryParameter

from schemas.events import MAX_QUANTITY

ItemId = Annotated[int, Parameter(ge=1, le=MAX_QUANTITY, description="Item id")]
LocationId = Annotated[int, Parameter(ge=1, le=MAX_QUANTITY, description="Location id")]
JobId = Annotated[int, Parameter(ge=1, le=MAX_QUANTITY, description="Job id (your system's)")]
Page = Annotated[int, QueryParameter(ge=1, le=1_000_000, description="Page number, from 1")]
PerPage = Annotated[int, QueryParameter(ge=1, le=100, description="Results per page (max 100)")]
MinPosition = Annotated[
    int | None,
    QueryParameter(name="min_position", ge=0, le=MAX_QUANTITY, description="Wait until the read models reach this ledger position"),
]
LowStockOnly = Annotated[bool | None, QueryParameter(description="Only items at or below their min_stock_level")]
ActiveOnly = Annotated[bool, QueryParameter(description="false: include inactive locations")]
