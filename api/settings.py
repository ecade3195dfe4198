"""The API's settings, from `LEDGER_*` environment variables."""

from __future__ import annotations

import os

import msgspec


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
    # Keep the read models current from inside this process (one process runs it all:
    # `ledger serve`, tests). Several API processes may all do so: one owns each
    # projection at a time, the others stand by.
    run_projector: bool = False

    @classmethod
    def from_env(cls, env: dict[str, str] | None = None, **overrides) -> ApiSettings:
        env = os.environ if env is None else env
        values = {
            "database_url": env.get("LEDGER_DATABASE_URL", ""),
            "nats_url": env.get("LEDGER_NATS_URL") or None,
            "rate_limit": int(env.get("LEDGER_RATE_LIMIT", "6000")),
            "rate_limit_unit": env.get("LEDGER_RATE_LIMIT_UNIT", "minute"),
            "pool_max": int(env.get("LEDGER_DB_POOL_MAX", "20")),
        }
        return cls(**{**values, **overrides})
