"""The one error hierarchy. Every refusal carries its API error code and HTTP status.

`api/` turns any `LedgerError` into the JSON error envelope; nothing else decides how
an error looks on the wire. Extra fields (`available_quantity`, `details`, ...) travel
in `extra` and are added to the envelope as they are.
"""

from __future__ import annotations

from typing import Any, ClassVar


class LedgerError(Exception):
    code: ClassVar[str] = "internal_error"
    status: ClassVar[int] = 500
    default_message: ClassVar[str] = "Unexpected server error"

    def __init__(self, message: str | None = None, *, code: str | None = None, **extra: Any):
        self.message = message or self.default_message
        if code is not None:
            self.code = code  # type: ignore[misc]  # per-instance variant, e.g. to_location_not_found
        self.extra = extra
        super().__init__(self.message)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.code!r}, {self.message!r}, {self.extra!r})"


# --- 400: the request cannot be carried out as asked ---------------------------------


class BadRequest(LedgerError):
    code = "bad_request"
    status = 400
    default_message = "The request cannot be carried out"


class ValidationFailed(BadRequest):
    code = "validation_failed"
    default_message = "The request body or parameters are invalid"


class InvalidQuantity(BadRequest):
    code = "invalid_quantity"
    default_message = "Quantity is not valid for this command"


class InsufficientStock(BadRequest):
    code = "insufficient_stock"
    default_message = "Not enough available stock"


class NoStock(BadRequest):
    code = "no_stock"
    default_message = "No stock record exists at the source location"


class SameLocation(BadRequest):
    code = "same_location"
    default_message = "Source and destination are the same location"


class LocationNotFound(BadRequest):
    code = "location_not_found"
    default_message = "Location does not exist in your organization"


class LocationInactive(BadRequest):
    code = "location_inactive"
    default_message = "Location is inactive"


class InsufficientReservation(BadRequest):
    code = "insufficient_reservation"
    default_message = "The job holds less than that at this location"


class CountMismatch(BadRequest):
    code = "count_mismatch"
    default_message = "The quantity at the location is not the expected quantity"


# --- 404 ------------------------------------------------------------------------------


class NotFound(LedgerError):
    code = "not_found"
    status = 404
    default_message = "Requested resource does not exist"


# --- 409 / 412: conflicts with what is already recorded ------------------------------


class Conflict(LedgerError):
    code = "conflict"
    status = 409
    default_message = "The request conflicts with the current state"


class DuplicatePartNumber(Conflict):
    code = "duplicate_part_number"
    default_message = "Another item already uses this part number"


class StockRemains(Conflict):
    code = "stock_remains"
    default_message = "The item still has stock or reservations"


class DuplicateEvent(Conflict):
    """An event id that is already in the ledger: the command was already recorded."""

    code = "duplicate_event"
    default_message = "These events are already recorded"


class VersionConflict(LedgerError):
    code = "version_conflict"
    status = 412
    default_message = "The stream is not at the expected version"


class InvariantViolated(LedgerError):
    """The database refused a write the decision logic allowed: a bug, never a user error."""

    code = "internal_error"
    status = 500


# --- the command line: conditions an operator fixes, never a request's fault ----------


class EmbeddedServerFailed(LedgerError):
    """The embedded PostgreSQL or nats-server could not start (or stop). The message is
    one line: what failed and where its log is."""

    code = "embedded_server_failed"
    status = 503
    default_message = "The embedded server could not start"


class SchemaMismatch(LedgerError):
    """The database's applied migrations are not this version's: a one-shot command
    refuses to run instead of migrating a database somebody else operates."""

    code = "schema_mismatch"
    status = 503
    default_message = "The database schema does not match this version of ledger"


# --- 503: the database cannot be reached right now -----------------------------------


class DatabaseUnavailable(LedgerError):
    """PostgreSQL is down, restarting, failing over or not answering in time. Nothing the
    request did is lost or half-done (a command is all or nothing); retried with the same
    Idempotency-Key it is recorded once. Which errors mean this: `ledger.db.connection_lost`."""

    code = "database_unavailable"
    status = 503
    default_message = "The database is unavailable; retry after Retry-After seconds"

    def __init__(self, message: str | None = None, *, retry_after: int = 1, **extra):
        super().__init__(message, retry_after=retry_after, **extra)
