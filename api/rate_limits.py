"""Rate limits per API key (per client address for requests without one), by `limits`.

A fixed-window counter per key (the `limits` library: O(1) per request whatever the
limit; litestar's own middleware keeps every request's timestamp and re-encodes them all
on each request). Every counted response carries `X-RateLimit-Limit`,
`X-RateLimit-Remaining` and `X-RateLimit-Reset` (epoch seconds, as seed 000 shows); a
refusal is `429 rate_limit_exceeded` with `Retry-After`. The counts live in the
process's memory: with several API processes each counts on its own.

The headers are kept in the scope's state and put on by the app's `before_send` hook
`add_rate_limit_headers`, so they are on every response that leaves, refusals raised by
inner middleware (401, 403, 409, 413) included. Requests no route matches (404, 405)
never reach route middleware, are not counted and carry none.
"""

from __future__ import annotations

import hashlib
import time

from limits import parse
from limits.aio.storage import MemoryStorage
from limits.aio.strategies import FixedWindowRateLimiter
from litestar.datastructures import MutableScopeHeaders
from litestar.exceptions import TooManyRequestsException
from litestar.middleware import DefineMiddleware
from litestar.types import ASGIApp, Message, Receive, Scope, Send

UNAUTHENTICATED_PATHS = ["/healthz", "/readyz", "/metrics", "/schema"]
_STATE_KEY = "rate_limit_headers"


class RateLimitMiddleware:
    def __init__(self, app: ASGIApp, limit: str, limiter: FixedWindowRateLimiter) -> None:
        self.app = app
        self.item = parse(limit)  # e.g. "6000/minute"
        self.limiter = limiter

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"].startswith(tuple(UNAUTHENTICATED_PATHS)):
            await self.app(scope, receive, send)
            return
        who = _identifier(scope)
        allowed = await self.limiter.hit(self.item, who)
        stats = await self.limiter.get_window_stats(self.item, who)
        reset = int(stats.reset_time) + 1
        headers = {
            "X-RateLimit-Limit": str(self.item.amount),
            "X-RateLimit-Remaining": str(max(stats.remaining, 0)),
            "X-RateLimit-Reset": str(reset),
        }
        scope.setdefault("state", {})[_STATE_KEY] = headers
        if not allowed:
            raise TooManyRequestsException(headers={**headers, "Retry-After": str(max(reset - int(time.time()), 1))})
        await self.app(scope, receive, send)


def _identifier(scope: Scope) -> str:
    headers = dict(scope.get("headers", []))
    key = headers.get(b"x-api-key", b"").strip()
    if not key:
        scheme, _, token = headers.get(b"authorization", b"").partition(b" ")
        key = token.strip() if scheme.lower() == b"bearer" else b""
    if key:
        # Never keep a key itself, even in memory: its hash identifies it as well.
        return "key:" + hashlib.sha256(key).hexdigest()
    client = scope.get("client")
    return "ip:" + (client[0] if client else "unknown")


def rate_limit_middleware(limit: int, unit: str) -> DefineMiddleware:
    # One limiter for the app: litestar makes a middleware instance per route.
    limiter = FixedWindowRateLimiter(MemoryStorage())
    return DefineMiddleware(RateLimitMiddleware, limit=f"{limit}/{unit}", limiter=limiter)


async def add_rate_limit_headers(message: Message, scope: Scope) -> None:
    """`before_send` hook: the rate limit headers of the request, on its response, errors included."""
    headers = scope.get("state", {}).get(_STATE_KEY)
    if headers and message["type"] == "http.response.start":
        mutable = MutableScopeHeaders.from_message(message)
        for name, value in headers.items():
            mutable[name] = value
