"""The one error hierarchy. Every refusal carries its API error code and HTTP status.

`api/` turns any `LedgerError` into the JSON error envelope; nothing else decides how
an error looks on the wire. Extra fields (`available_quantity`, `details`, ...) travel
in `extra` and are added to the envelope as they are.

Every `LedgerError` is defined here, except HTTP's own refusals (`api/errors.py`). A
module may keep a plain `Exception` that never leaves it (or its one caller) as control
flow, such as `StreamRaced` in `ledger/appender.py`.
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


# --- webhooks (consumers/webhooks/), refused through the API ---------------------------


class InvalidWebhookUrl(BadRequest):
    code = "invalid_webhook_url"
    default_message = "The webhook URL must be an absolute http or https URL"


class TargetNotAllowed(BadRequest):
    code = "target_not_allowed"
    default_message = "The webhook URL resolves to a private, loopback or otherwise internal address"


class TargetUnresolvable(BadRequest):
    code = "target_unresolvable"
    default_message = "The webhook URL's host name does not resolve"


class UnknownWebhookEvent(BadRequest):
    code = "unknown_event"
    default_message = "Unknown webhook event name"


class WebhookNotFound(NotFound):
    default_message = "Webhook not found"


class DeliveryNotFound(NotFound):
    default_message = "Delivery not found"


class TooManyWebhooks(Conflict):
    code = "too_many_webhooks"
    default_message = "Your organization has as many webhooks as it may have"


class WebhookDisabled(Conflict):
    code = "webhook_disabled"
    default_message = "The webhook is disabled; enable it first (PATCH enabled: true)"


class DeliveryPending(Conflict):
    code = "delivery_pending"
    default_message = "The delivery is still pending; it will be attempted as scheduled"


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


class RebuildRefused(LedgerError):
    """`ledger replay` cannot rebuild the read models: another rebuild is running, a
    projection cannot be taken from its projector, or the ledger holds an event type this
    version cannot rebuild from (a projector would park it; a set-based rebuild cannot).
    Nothing was swapped in."""

    code = "rebuild_refused"
    status = 409
    default_message = "The read models cannot be rebuilt now"


# --- 503: not now; retry after Retry-After seconds -----------------------------------


class NotCaughtUp(LedgerError):
    """A read cannot be answered yet: the read models have not reached the position it
    must see (api/consistency.py), or appends stayed in flight for the whole wait for a
    settled horizon (ledger/feed.py: a long transaction holds them)."""

    code = "not_caught_up"
    status = 503
    default_message = "The read models have not reached the requested position yet; retry shortly"


class DatabaseUnavailable(LedgerError):
    """PostgreSQL is down, restarting, failing over or not answering in time. Nothing the
    request did is lost or half-done (a command is all or nothing); retried with the same
    Idempotency-Key it is recorded once. Which errors mean this: `ledger.db.connection_lost`."""

    code = "database_unavailable"
    status = 503
    default_message = "The database is unavailable; retry after Retry-After seconds"

    def __init__(self, message: str | None = None, *, retry_after: int = 1, **extra):
        super().__init__(message, retry_after=retry_after, **extra)
