"""HTTP's own refusals, in the one hierarchy, and the one function that renders any error.

Every error leaves as `{"success": false, "error": code, "message": ..., "request_id": ...}`
plus the error's extra fields. Litestar's own exceptions (bad JSON, validation, unknown
route, wrong method, body too large, rate limit) are translated here, so no path can
answer with a bare framework error or a 500 for bad input; so is a database that went
away (`503 database_unavailable`, never a 500). Every 503, and any error with
`retry_after`, carries the `Retry-After` header.
"""

from __future__ import annotations

import re

import msgspec
import structlog
from litestar import Request, Response
from litestar.exceptions import (
    ClientException,
    HTTPException,
    MethodNotAllowedException,
    NotAuthorizedException,
    NotFoundException,
    PermissionDeniedException,
    TooManyRequestsException,
    ValidationException,
)
from litestar.exceptions.http_exceptions import RequestEntityTooLarge

from api.request_ids import request_id
from ledger import errors
from ledger.db import connection_lost

log = structlog.get_logger("api")


class InvalidJson(errors.BadRequest):
    code = "invalid_json"
    default_message = "Request body contains malformed JSON"


class Unauthorized(errors.LedgerError):
    code = "unauthorized"
    status = 401
    default_message = "Missing or invalid API key"


class InsufficientScope(errors.LedgerError):
    code = "insufficient_scope"
    status = 403
    default_message = "API key lacks the required scope for this endpoint"


class Forbidden(errors.LedgerError):
    code = "forbidden"
    status = 403
    default_message = "IP address is not allowed for this API key"


class MethodNotAllowed(errors.LedgerError):
    code = "method_not_allowed"
    status = 405
    default_message = "HTTP method not supported on this path"


class PayloadTooLarge(errors.LedgerError):
    code = "payload_too_large"
    status = 413
    default_message = "Request body is too large"


class BatchTooLarge(errors.LedgerError):
    code = "batch_too_large"
    status = 413
    default_message = "A batch holds at most 1,000 lines"


class RateLimited(errors.LedgerError):
    code = "rate_limit_exceeded"
    status = 429
    default_message = "Rate limit exceeded; check the Retry-After header"


class InvalidCursor(errors.BadRequest):
    code = "invalid_cursor"
    default_message = "after must be a cursor from page_info.next_cursor or a non-negative integer"


class IdempotencyKeyReused(errors.Conflict):
    code = "idempotency_key_reused"
    default_message = "This Idempotency-Key was used with a different request"


class IdempotencyKeyInUse(errors.Conflict):
    code = "idempotency_key_in_use"
    default_message = "A request with this Idempotency-Key is still being processed"


_MISSING_FIELD = re.compile(r"Object missing required field `(\w+)`")


def translate(exc: Exception) -> tuple[errors.LedgerError, dict[str, str]]:
    """Any exception as a `LedgerError`, with the headers the response must carry."""
    error, headers = _translate(exc)
    # Every 503 (database_unavailable, not_caught_up, ...) says when to come back.
    retry_after = error.extra.get("retry_after", 1 if error.status == 503 else None)
    if retry_after is not None:
        headers.setdefault("Retry-After", str(retry_after))
    return error, headers


def _translate(exc: Exception) -> tuple[errors.LedgerError, dict[str, str]]:
    headers = dict(getattr(exc, "headers", None) or {})
    if connection_lost(exc):  # wherever it happened: auth, idempotency, a command, a read
        return errors.DatabaseUnavailable(), headers
    match exc:
        case errors.LedgerError():
            return exc, headers
        case ValidationException():
            return _validation(exc), headers
        case ClientException() if _malformed_json(exc):
            return InvalidJson(), headers
        case NotAuthorizedException():
            return Unauthorized(), headers
        case PermissionDeniedException():
            return InsufficientScope(), headers
        case NotFoundException():
            return errors.NotFound(), headers
        case MethodNotAllowedException():
            return MethodNotAllowed(), headers
        case RequestEntityTooLarge():
            return PayloadTooLarge(), headers
        case TooManyRequestsException():
            return RateLimited(retry_after=int(headers.get("Retry-After", "1"))), headers
        case HTTPException() if exc.status_code < 500:
            return errors.BadRequest(str(exc.detail)), headers
    return errors.LedgerError(), headers


def _malformed_json(exc: ClientException) -> bool:
    """Litestar reports a body it cannot parse as a ClientException raised from msgspec's
    DecodeError, whose text varies ("JSON is malformed", "Input data was truncated", ...):
    the cause, not the text, says it was bad JSON."""
    cause = exc.__cause__
    while cause is not None:
        if isinstance(cause, msgspec.DecodeError) and not isinstance(cause, msgspec.ValidationError):
            return True
        cause = cause.__cause__
    return "malformed" in str(exc.detail).lower()


def _validation(exc: ValidationException) -> errors.LedgerError:
    details = [
        {"field": d.get("key"), "source": d.get("source"), "message": d.get("message")}
        for d in (exc.extra if isinstance(exc.extra, list) else [])
    ]
    # A required field left out has its own code (seed 004: missing_location_id, ...).
    for d in details:
        if d["source"] == "body" and (missing := _MISSING_FIELD.search(str(d["message"]))):
            return errors.ValidationFailed(f"{missing.group(1)} was not provided", code=f"missing_{missing.group(1)}", details=details)
    summary = "; ".join(f"{d['field']}: {d['message']}" for d in details) or "invalid request"
    return errors.ValidationFailed(f"Validation failed: {summary}", details=details)


def error_body(request: Request, error: errors.LedgerError) -> dict:
    return {
        "success": False,
        "error": error.code,
        "message": error.message,
        **error.extra,
        "request_id": request_id(request.scope),
    }


def handle_exception(request: Request, exc: Exception) -> Response:
    error, headers = translate(exc)
    if isinstance(error, errors.DatabaseUnavailable):  # expected while it lasts: no traceback each time
        log.warning("database unavailable", error=repr(exc), path=request.url.path)
    elif error.status >= 500:
        log.error("unhandled error", exc_info=exc, path=request.url.path)
    return Response(error_body(request, error), status_code=error.status, headers=headers)
