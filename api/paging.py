"""Cursor paging (seed 002's shape): `data` and `page_info: {next_cursor, has_next_page}`.

A cursor is opaque to callers but stable: it encodes where the next page starts (a ledger
position, or a stream version) and nothing that can expire, so a cursor kept for a month
still reads on from the same place. `after` may also be a plain position or version.

`next_cursor` is always given: at the end of a feed it points just past what was read,
so asking with it later returns exactly what was appended since (a feed is tailed, not
finished). `has_next_page` says whether more is there now.
"""

from __future__ import annotations

import base64
import binascii
from typing import Generic, TypeVar

import msgspec
from litestar import Request, Response

from api import errors
from api.request_ids import request_id

T = TypeVar("T")
POSITION, VERSION = "p", "v"  # what a cursor counts: ledger positions, or versions of one stream


class PageInfo(msgspec.Struct, kw_only=True):
    next_cursor: str
    has_next_page: bool


class CursorEnvelope(msgspec.Struct, Generic[T], kw_only=True):
    success: bool = True
    data: list[T]
    page_info: PageInfo
    request_id: str


def encode_cursor(kind: str, value: int) -> str:
    return base64.urlsafe_b64encode(f"{kind}{value}".encode()).rstrip(b"=").decode()


def decode_cursor(kind: str, text: str | None) -> int:
    """Where a page starts from `after`: a cursor of this kind, or a plain number; 0 if absent."""
    if text is None or text == "":
        return 0
    if text.isdigit():
        value = int(text)
    else:
        try:
            raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)).decode()
        except (binascii.Error, UnicodeDecodeError, ValueError):
            raise errors.InvalidCursor() from None
        if not raw.startswith(kind) or not raw[1:].isdigit():
            raise errors.InvalidCursor()
        value = int(raw[1:])
    if value >= 2**63:
        raise errors.InvalidCursor()
    return value


def paged(request: Request, data: list[T], *, kind: str, next_value: int, has_next_page: bool) -> Response[CursorEnvelope[T]]:
    page_info = PageInfo(next_cursor=encode_cursor(kind, next_value), has_next_page=has_next_page)
    return Response(CursorEnvelope(data=data, page_info=page_info, request_id=request_id(request.scope)))
