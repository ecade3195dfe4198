"""The OpenAPI document: its header, and the refusals every operation can answer.

Litestar documents only a handler's own `responses=`, and otherwise its own 400 shape,
which this API never sends. Every refusal here is `ErrorBody` (api/errors.py renders
them all), so the codes an operation can answer are attached to every handler once,
by what kind of operation it is, instead of on sixty decorators.
"""

from __future__ import annotations

from litestar import Litestar
from litestar.openapi import OpenAPIConfig, ResponseSpec
from litestar.openapi.spec import Components, SecurityScheme
from litestar.routes import HTTPRoute

from schemas.api import ErrorBody


def _error(description: str) -> ResponseSpec:
    return ResponseSpec(data_container=ErrorBody, description=description, generate_examples=False)


EVERY_OPERATION = {
    400: _error("Bad input: invalid_json, validation_failed (with details), missing_<field>, or a domain refusal such as insufficient_stock"),
    401: _error("unauthorized: missing or unknown API key"),
    403: _error("insufficient_scope, or forbidden by the key's IP allow-list"),
    404: _error("not_found: no such resource in the caller's organization"),
    429: _error("rate_limit_exceeded: see Retry-After and X-RateLimit-*"),
    503: _error("database_unavailable: PostgreSQL is unreachable (restarting, failing over); retry after Retry-After"),
}
WRITES = {
    409: _error("A conflict (duplicate_part_number, stock_remains) or idempotency_key_reused"),
    412: _error("version_conflict: If-Match did not name the current version"),
    413: _error("payload_too_large"),
}
READS = {
    503: _error("not_caught_up: the read models have not reached min_position yet; or database_unavailable;"
                " retry after Retry-After"),
}
API_PREFIX = "/api/"


def document_errors(app: Litestar) -> None:
    """Attach the error responses to every API operation (called once, before the document is built)."""
    for route in app.routes:
        if not isinstance(route, HTTPRoute) or not route.path.startswith(API_PREFIX):
            continue
        for handler in route.route_handlers:
            kind = READS if handler.http_methods <= {"GET", "HEAD"} else WRITES
            handler.responses = {**EVERY_OPERATION, **kind, **(handler.responses or {})}


def openapi_config() -> OpenAPIConfig:
    return OpenAPIConfig(
        title="Inventory ledger",
        version="1.0.0",
        description="Event-sourced inventory ledger: every stock movement is an immutable event.",
        path="/schema",
        components=Components(
            security_schemes={
                "ApiKey": SecurityScheme(type="apiKey", name="X-API-Key", security_scheme_in="header"),
                "Bearer": SecurityScheme(type="http", scheme="bearer"),
            }
        ),
        security=[{"ApiKey": []}, {"Bearer": []}],
    )
