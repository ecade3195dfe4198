"""Rate limits per API key (per client address for requests without one), by litestar.

Litestar's middleware counts and refuses; this adapts only its headers to the contract:
`X-RateLimit-Limit`, `X-RateLimit-Remaining`, `X-RateLimit-Reset` (epoch seconds, as
seed 000 shows) on every response, and `Retry-After` on a 429. The counts live in the
process's memory store: with several API processes each counts on its own.
"""

from __future__ import annotations

import hashlib
import time

from litestar import Request
from litestar.middleware.rate_limit import CacheObject, DurationUnit, RateLimitConfig, RateLimitMiddleware

from api.auth import presented_key

UNAUTHENTICATED_PATHS = ["/healthz", "/readyz", "/metrics", "/schema"]


class LedgerRateLimitMiddleware(RateLimitMiddleware):
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
