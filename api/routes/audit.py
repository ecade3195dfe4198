"""Auditing one stream over HTTP: its hash chain and its re-fold against the write model."""

from __future__ import annotations

from typing import Annotated

import msgspec
from litestar import Controller, Request, Response, get
from litestar.params import QueryParameter

from api import shared
from api.responses import ok
from ledger import errors
from ledger.verify import verify_one
from schemas import MAX_QUANTITY, item_stream, location_stream, parse_stream
from schemas.api import Envelope

EVENTS = {"scope": "events:read"}
StreamId = Annotated[int | None, QueryParameter(ge=1, le=MAX_QUANTITY)]


class AuditReport(msgspec.Struct, kw_only=True):
    stream: str
    ok: bool
    events: int
    problems: list[str]


class AuditController(Controller):
    path = "/audit"
    tags = ["events"]

    @get("/verify", opt=EVENTS, operation_id="verifyStream")
    async def verify(
        self, request: Request, pool: shared.Pool, item_id: StreamId = None, location_id: StreamId = None
    ) -> Response[Envelope[AuditReport]]:
        """Check one item's (or location's) hash chain and re-fold it against the write model."""
        if (item_id is None) == (location_id is None):
            raise errors.ValidationFailed("give exactly one of item_id and location_id")
        stream = item_stream(item_id) if item_id is not None else location_stream(location_id)  # type: ignore[arg-type]  # exactly one of item_id and location_id is given (checked above)
        report = await verify_one(pool, request.user.org_id, stream)
        if report is None:
            raise errors.NotFound(f"{' '.join(map(str, parse_stream(stream)))} does not exist")
        return ok(request, AuditReport(stream=stream, ok=report.ok, events=report.events, problems=report.problems))
