"""Prometheus metrics of webhooks (DESIGN 9: deliveries by outcome), in the default
registry, so `/metrics` shows them when the worker runs in the API's process (and, with
`PROMETHEUS_MULTIPROC_DIR`, from any process). What the database knows (pending
deliveries, disabled endpoints, emitter lag) is in `webhook_status`, read at scrape time.
"""

from __future__ import annotations

from prometheus_client import Counter, Histogram

from consumers.webhooks import statements

ATTEMPTS = Counter(
    "ledger_webhook_attempts_total", "Webhook delivery attempts by outcome (delivered, retrying, failed)", ["outcome"],
)
ATTEMPT_SECONDS = Histogram(
    "ledger_webhook_attempt_duration_seconds", "Duration of one webhook delivery attempt",
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
RECORDED = Counter("ledger_webhook_deliveries_recorded_total", "Webhook deliveries recorded by the emitter")


def count_attempt(ok: bool, retrying: bool, seconds: float) -> None:
    ATTEMPTS.labels("delivered" if ok else "retrying" if retrying else "failed").inc()
    ATTEMPT_SECONDS.observe(seconds)


async def webhook_status(db) -> dict:
    """Pending deliveries (and how late the oldest due one is), disabled endpoints, and
    the emitter's lag behind the ledger in positions: for /metrics and /readyz."""
    row = await db.fetchrow(statements.READ_WEBHOOK_STATUS)
    return dict(row)
