"""One log line and one latency observation per request, refusals included.

`request_id` is bound here, `org_id` and `key_id` by authentication, to every line
logged while the request runs (never the key itself, nor any header).
"""

from __future__ import annotations

import time

import structlog
from litestar.types import ASGIApp, Message, Receive, Scope, Send

from api.errors import translate
from api.metrics import observe_request
from api.request_ids import request_id

log = structlog.get_logger("api")


class RequestLogMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        structlog.contextvars.bind_contextvars(request_id=request_id(scope))
        started, status = time.perf_counter(), 500

        async def observe(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, observe)
        except Exception as exc:  # answered by the app's exception handler, outside us
            status = translate(exc)[0].status
            raise
        finally:
            elapsed = time.perf_counter() - started
            # The route's template, not the path: ids in paths would make a label per item.
            observe_request(scope["method"], scope.get("path_template") or "unmatched", status, elapsed)
            log.info("request", method=scope["method"], path=scope["path"], status=status, ms=round(elapsed * 1000, 2))
            structlog.contextvars.clear_contextvars()
