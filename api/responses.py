"""Success envelopes: `{"success": true, "data": ..., "request_id": ...}` and friends."""

from __future__ import annotations

import math
from typing import TypeVar

from litestar import Request, Response

from api.request_ids import request_id
from schemas.api import CommandEnvelope, Envelope, ListEnvelope, Pagination

T = TypeVar("T")
MAX_PER_PAGE = 100


def ok(request: Request, data: T, *, status: int = 200) -> Response[Envelope[T]]:
    return Response(Envelope(data=data, request_id=request_id(request.scope)), status_code=status)


def listed(request: Request, data: list[T], *, page: int, per_page: int, total: int) -> Response[ListEnvelope[T]]:
    pagination = Pagination(page=page, per_page=per_page, total=total, total_pages=math.ceil(total / per_page))
    return Response(ListEnvelope(data=data, pagination=pagination, request_id=request_id(request.scope)))


def recorded(
    request: Request, data: T, position: int, *, status: int = 200, message: str | None = None
) -> Response[CommandEnvelope[T]]:
    """A command's response: its data and the ledger position it reached, in body and header."""
    return Response(
        CommandEnvelope(data=data, position=position, message=message, request_id=request_id(request.scope)),
        status_code=status,
        headers={"X-Ledger-Position": str(position)},
    )
