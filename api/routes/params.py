"""Path and query parameters shared by the routes, each bounded."""

from __future__ import annotations

from typing import Annotated

from litestar.params import Parameter

from schemas.events import MAX_QUANTITY

ItemId = Annotated[int, Parameter(ge=1, le=MAX_QUANTITY, description="Item id")]
LocationId = Annotated[int, Parameter(ge=1, le=MAX_QUANTITY, description="Location id")]
JobId = Annotated[int, Parameter(ge=1, le=MAX_QUANTITY, description="Job id (your system's)")]
Page = Annotated[int, Parameter(ge=1, le=1_000_000, description="Page number, from 1")]
PerPage = Annotated[int, Parameter(ge=1, le=100, description="Results per page (max 100)")]
