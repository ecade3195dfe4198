"""The API's settings: made from the process's `Settings` (read once, by the CLI), never
from the environment here; tests make them directly."""

from __future__ import annotations

import os

import msgspec

from consumers.webhooks.settings import WebhookSettings
from ledger.settings import Settings


class ApiSettings(msgspec.Struct, frozen=True, kw_only=True):
    database_url: str
    nats_url: str | None = None  # checked by /readyz; the relay publishes, the API does not
    pool_min: int = 2
    pool_max: int = 20
    # Seconds a request may wait on PostgreSQL per step: for a connection (connecting one
    # included) and for each statement. Past it the request is `503 database_unavailable`
    # with Retry-After: a database that is down or not answering never hangs a caller.
    db_timeout: float = 5.0
    max_body_size: int = 1_000_000  # bytes; a command body is a few hundred
    rate_limit: int = 6000  # requests per rate_limit_unit per key
    rate_limit_unit: str = "minute"
    # Keep the read models current from inside this process: the projector and the
    # reservation expiry run in the API's lifespan, on its pool (ledger/roles.py decides
    # when: `ledger serve all --workers 1`; tests). Several API processes may all do so:
    # one owns each projection at a time, the others stand by.
    run_projector: bool = False
    webhooks: WebhookSettings = msgspec.field(default_factory=WebhookSettings)  # the webhook routes' checks


def api_settings(settings: Settings, database_url: str, nats_url: str | None, *, run_projector: bool) -> ApiSettings:
    """The API's part of the process's settings, on the servers found or started."""
    return ApiSettings(
        database_url=database_url, nats_url=nats_url, pool_max=settings.database.pool_max,
        rate_limit=settings.http.rate_limit, rate_limit_unit=settings.http.rate_limit_unit,
        run_projector=run_projector, webhooks=settings.webhooks(),
    )


# `ledger serve --workers N` (N > 1) serves the API from uvicorn's worker processes. uvicorn
# starts each one afresh (spawn) and builds its app from an import string (`api.app:
# worker_app`), so nothing but the environment reaches it: the parent's settings travel as
# one JSON variable, written and read only here, and each worker runs with exactly the
# settings the parent read once (no worker reads LEDGER_* variables of its own).
HANDED_OVER = "LEDGER_API_WORKER_SETTINGS"


class _Handover(msgspec.Struct, frozen=True):
    api: ApiSettings
    log_format: str


def hand_over(api: ApiSettings, log_format: str) -> None:
    """Make `api` the settings of the API worker processes started after this call."""
    os.environ[HANDED_OVER] = msgspec.json.encode(_Handover(api, log_format)).decode()


def handed_over() -> tuple[ApiSettings, str]:
    """In an API worker process: the settings and log format its parent handed over."""
    handover = msgspec.json.decode(os.environ[HANDED_OVER], type=_Handover)
    return handover.api, handover.log_format
