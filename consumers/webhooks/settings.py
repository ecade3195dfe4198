"""Webhook settings, read once from `LEDGER_WEBHOOK_*` environment variables."""

from __future__ import annotations

import os
from collections.abc import Mapping

import msgspec

# Immediately, 5 s, 5 min, 30 min, 2 h, 5 h, 10 h, 10 h: about a day and a quarter in all,
# long enough to ride out a receiver's overnight outage (DESIGN 8).
DEFAULT_RETRY_SCHEDULE = (0.0, 5.0, 300.0, 1800.0, 7200.0, 18000.0, 36000.0, 36000.0)


class WebhookSettings(msgspec.Struct, frozen=True, kw_only=True):
    # Deliver to private, loopback, link-local, ... addresses (tests, a private network).
    allow_private: bool = False
    # Seconds to wait before each attempt; its length is the number of attempts.
    retry_schedule: tuple[float, ...] = DEFAULT_RETRY_SCHEDULE
    # Each wait is stretched or shrunk by up to this fraction, so endpoints that failed
    # together are not all retried in the same instant.
    retry_jitter: float = 0.1
    timeout: float = 10.0  # seconds for one attempt, connection to last byte
    concurrency: int = 128  # attempts in flight per process
    # Attempts in flight per endpoint per process: a slow endpoint ties up at most this
    # many slots; an endpoint answering in 50 ms takes up to 160 deliveries a second.
    endpoint_concurrency: int = 8
    # An endpoint that has failed every attempt for this long is disabled (3 days).
    disable_after: float = 3 * 86400.0
    # How long the secret before a rotation still signs (both signatures are sent).
    secret_grace: float = 86400.0
    # A deliverer that hears of no new delivery looks anyway this often (seconds).
    poll_interval: float = 1.0
    max_endpoints: int = 100  # per organization: every event is matched against them all
    # Settled deliveries (and their attempts) are kept this long for GET .../deliveries (30 days).
    retention: float = 30 * 86400.0

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None, **overrides) -> WebhookSettings:
        env = os.environ if env is None else env
        values: dict = {}
        if "LEDGER_WEBHOOK_ALLOW_PRIVATE" in env:
            values["allow_private"] = env["LEDGER_WEBHOOK_ALLOW_PRIVATE"].strip().lower() in ("1", "true", "yes")
        if schedule := env.get("LEDGER_WEBHOOK_RETRY_SCHEDULE", "").strip():
            values["retry_schedule"] = parse_schedule(schedule)
        for name, field in (
            ("RETRY_JITTER", "retry_jitter"), ("TIMEOUT", "timeout"), ("DISABLE_AFTER", "disable_after"),
            ("SECRET_GRACE", "secret_grace"), ("POLL_INTERVAL", "poll_interval"), ("RETENTION", "retention"),
        ):
            if raw := env.get(f"LEDGER_WEBHOOK_{name}"):
                values[field] = float(raw)
        for name, field in (
            ("CONCURRENCY", "concurrency"), ("ENDPOINT_CONCURRENCY", "endpoint_concurrency"),
            ("MAX_ENDPOINTS", "max_endpoints"),
        ):
            if raw := env.get(f"LEDGER_WEBHOOK_{name}"):
                values[field] = int(raw)
        return cls(**{**values, **overrides})


def parse_schedule(text: str) -> tuple[float, ...]:
    """`"0,5,300"` -> (0.0, 5.0, 300.0); at least one attempt, no negative waits."""
    try:
        schedule = tuple(float(part) for part in text.split(",") if part.strip())
    except ValueError:
        raise ValueError(f"LEDGER_WEBHOOK_RETRY_SCHEDULE must be comma-separated seconds, not {text!r}") from None
    if not schedule or any(s < 0 for s in schedule):
        raise ValueError(f"LEDGER_WEBHOOK_RETRY_SCHEDULE needs at least one wait, none negative: {text!r}")
    return schedule
