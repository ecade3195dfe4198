"""Rate limits per API key (per client address for requests without one), by litestar.

Litestar's middleware counts and refuses; this adapts only its headers to the contract:
`X-RateLimit-Limit`, `X-RateLimit-Remaining`, `X-RateLimit-Reset` (epoch seconds, as
seed 000 shows) on every response, and `Retry-After` on a 429. The counts live in the
process's memory store: with several API processes each counts on its own.

Litestar puts the headers on through a send wrapper, which a refusal raised by a
middleware inside this one bypasses (401/403 from authentication, 409 from idempotency:
the app's exception handler renders those with the outer send). So the headers are kept
in the scope's state instead, and the app's `before_send` hook `add_rate_limit_headers`
puts them on whatever response leaves. Requests no route matches (404, 405) are not
counted and carry none.
"""

from __future__ import annotations

import hashlib
import time

from litestar import Request
from litestar.datastructures import MutableScopeHeaders
from litestar.exceptions import TooManyRequestsException
from litestar.middleware.rate_limit import CacheObject, DurationUnit, RateLimitConfig, RateLimitMiddleware
from litestar.types import Message, Receive, Scope, Send

from api.auth import presented_key

UNAUTHENTICATED_PATHS = ["/healthz", "/readyz", "/metrics", "/schema"]
_STATE_KEY = "rate_limit_headers"


class LedgerRateLimitMiddleware(RateLimitMiddleware):
    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Litestar's own, with the headers left in the scope rather than in a send wrapper."""
        app = scope["litestar_app"]
        request = app.request_class(scope)
        if await self.should_check_request(request=request):
            key = self.cache_key_from_request(request)
            store = self.config.get_store_from_app(app)
            async with self._lock:
                cache_object = await self.retrieve_cached_history(key, store)
                if len(cache_object.history) >= self.max_requests:
                    raise TooManyRequestsException(headers=self.create_response_headers(cache_object=cache_object))
                await self.set_cached_history(key=key, cache_object=cache_object, store=store)
            scope.setdefault("state", {})[_STATE_KEY] = self.create_response_headers(cache_object=cache_object)
        await self.app(scope, receive, send)

    def create_response_headers(self, cache_object: CacheObject) -> dict[str, str]:
        used = len(cache_object.history)
        headers = {
            "X-RateLimit-Limit": str(self.max_requests),
            "X-RateLimit-Remaining": str(max(self.max_requests - used, 0)),
            "X-RateLimit-Reset": str(cache_object.reset),
        }
        if used >= self.max_requests:
            headers["Retry-After"] = str(max(cache_object.reset - int(time.time()), 1))
        return headers


def _identifier(request: Request) -> str:
    key = presented_key(request)
    if key:
        # Never keep a key itself, even in memory: its hash identifies it as well.
        return "key:" + hashlib.sha256(key.encode()).hexdigest()
    return "ip:" + (request.client.host if request.client else "unknown")


def rate_limit_config(unit: DurationUnit, limit: int) -> RateLimitConfig:
    return RateLimitConfig(
        rate_limit=(unit, limit),
        identifier_for_request=_identifier,
        middleware_class=LedgerRateLimitMiddleware,
        exclude=UNAUTHENTICATED_PATHS,
    )


async def add_rate_limit_headers(message: Message, scope: Scope) -> None:
    """`before_send` hook: the rate limit headers of the request, on its response, errors included."""
    headers = scope.get("state", {}).get(_STATE_KEY)
    if headers and message["type"] == "http.response.start":
        mutable = MutableScopeHeaders.from_message(message)
        for name, value in headers.items():
            mutable[name] = value
