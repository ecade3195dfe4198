"""The ledger feed and an item's raw stream, for auditors and integrations (events:read)."""

from __future__ import annotations

from typing import Annotated

from litestar import Controller, Request, Response, get
from litestar.params import QueryParameter

from api import shared
from api.paging import POSITION, VERSION, CursorEnvelope, decode_cursor, paged
from api.routes.params import ItemId
from ledger import errors, statements
from ledger.feed import read_page, settled_horizon, stream_exists
from ledger.records import envelopes
from schemas import EVENT_TYPES, MAX_QUANTITY, EventEnvelope, item_stream

EVENTS = {"scope": "events:read"}
MAX_LIMIT = 1000  # events per page: enough to page fast, small enough to answer in milliseconds

After = Annotated[str | None, QueryParameter(max_length=40, description="next_cursor of the previous page, or a position")]
Limit = Annotated[int, QueryParameter(ge=1, le=MAX_LIMIT, description=f"Events per page (max {MAX_LIMIT})")]
EventTypes = Annotated[
    str | None, QueryParameter(name="type", max_length=400, description="Event types, comma-separated: " + ", ".join(EVENT_TYPES))
]
ItemFilter = Annotated[int | None, QueryParameter(name="item_id", ge=1, le=MAX_QUANTITY, description="Only this item's events")]


def _types(text: str | None) -> list[str] | None:
    if not text:
        return None
    types = [t.strip() for t in text.split(",") if t.strip()]
    unknown = [t for t in types if t not in EVENT_TYPES]
    if unknown:
        raise errors.ValidationFailed(f"unknown event type {', '.join(unknown)}; known: {', '.join(EVENT_TYPES)}")
    return types


class EventController(Controller):
    path = "/"
    tags = ["events"]

    @get("/events", opt=EVENTS, operation_id="listEvents")
    async def feed(
        self, request: Request, pool: shared.Pool, after: After = None, limit: Limit = 100,
        event_type: EventTypes = None, item_id: ItemFilter = None,
    ) -> Response[CursorEnvelope[EventEnvelope]]:
        """The organization's ledger in position order, up to the never-skip horizon."""
        start, types = decode_cursor(POSITION, after), _types(event_type)
        stream = item_stream(item_id) if item_id is not None else None
        async with pool.acquire() as conn:
            horizon = await settled_horizon(conn)
            rows = await read_page(conn, request.user.org_id, after=start, horizon=horizon, limit=limit + 1,
                                   types=types, stream=stream)
        more = len(rows) > limit
        rows = rows[:limit]
        # A page that is not full read everything up to the horizon: the next one starts
        # there, so a filtered feed does not scan the same unmatched events again.
        next_position = rows[-1]["position"] if more else max(start, horizon)
        return paged(request, envelopes(rows), kind=POSITION, next_value=next_position, has_next_page=more)

    @get("/items/{item_id:int}/events", opt=EVENTS, operation_id="listItemEvents")
    async def item_stream(
        self, request: Request, pool: shared.Pool, item_id: ItemId, after: After = None, limit: Limit = 100
    ) -> Response[CursorEnvelope[EventEnvelope]]:
        """The item's raw stream in version order (archived items included)."""
        start, stream, org_id = decode_cursor(VERSION, after), item_stream(item_id), request.user.org_id
        # Versions of one stream commit in order (each append reads the committed head),
        # so reading by version needs no horizon.
        async with pool.acquire() as conn:
            if not await stream_exists(conn, org_id, stream):
                raise errors.NotFound(f"item {item_id} does not exist")
            rows = await conn.fetch(statements.READ_STREAM, org_id, stream, start, limit + 1)
        more = len(rows) > limit
        rows = rows[:limit]
        next_version = rows[-1]["version"] if rows else start
        return paged(request, envelopes(rows), kind=VERSION, next_value=next_version, has_next_page=more)
