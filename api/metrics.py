"""Prometheus metrics at /metrics (prometheus-client).

Counts made in this process (requests, commands) are multiprocess-safe when
`PROMETHEUS_MULTIPROC_DIR` is set, as it is for several API workers. What the database
knows (projection and relay lag, dead letters) is read at scrape time, so any process
answers it correctly whichever process does the work.
"""

from __future__ import annotations

import os
import time

from litestar import Response, get
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Gauge, Histogram, generate_latest, multiprocess

from api import shared
from consumers.relay import relay_status
from consumers.webhooks import statements as webhook_statements
from consumers.webhooks import webhook_status
from projections import projection_status

REQUEST_SECONDS = Histogram(
    "ledger_http_request_duration_seconds", "HTTP request latency", ["method", "route", "status"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
)
COMMANDS = Counter("ledger_commands_total", "Commands by type and outcome (accepted or the refusal's code)", ["command", "outcome"])
PROJECTION_LAG = Gauge("ledger_projection_lag_positions", "Ledger positions not yet applied", ["projection"], multiprocess_mode="mostrecent")
PROJECTION_LAG_SECONDS = Gauge("ledger_projection_lag_seconds", "Age of the oldest event not yet applied", ["projection"], multiprocess_mode="mostrecent")
DEAD_LETTERS = Gauge("ledger_projection_dead_letters", "Events parked by a projection", ["projection"], multiprocess_mode="mostrecent")
STUCK = Gauge("ledger_projection_stuck", "1 while a projection cannot get past a dead letter", ["projection"], multiprocess_mode="mostrecent")
RELAY_LAG = Gauge("ledger_relay_lag_positions", "Ledger positions not yet acknowledged by JetStream", ["relay"], multiprocess_mode="mostrecent")
WEBHOOK_DELIVERIES = Gauge("ledger_webhook_deliveries", "Webhook deliveries by status, from the database", ["status"], multiprocess_mode="mostrecent")
WEBHOOK_STATE = Gauge("ledger_webhook_state", "Webhook backlog: pending, oldest_due_seconds, disabled_endpoints, emitter_lag", ["measure"], multiprocess_mode="mostrecent")


def observe_request(method: str, route: str, status: int, seconds: float) -> None:
    REQUEST_SECONDS.labels(method, route, str(status)).observe(seconds)


def count_command(command: str, outcome: str) -> None:
    COMMANDS.labels(command, outcome).inc()


async def _refresh(pool) -> None:
    now = time.time()
    for p in await projection_status(pool):
        PROJECTION_LAG.labels(p.name).set(p.lag)
        PROJECTION_LAG_SECONDS.labels(p.name).set(max(now - p.updated_at.timestamp(), 0) if p.lag else 0)
        DEAD_LETTERS.labels(p.name).set(p.dead_letters)
        STUCK.labels(p.name).set(1 if p.stuck else 0)
    for r in await relay_status(pool):
        RELAY_LAG.labels(r["name"]).set(r["lag"])
    # Deliveries by outcome, whichever process delivered them (attempt counters are per process).
    for row in await pool.fetch(webhook_statements.COUNT_WEBHOOK_DELIVERIES_BY_STATUS):
        WEBHOOK_DELIVERIES.labels(row["status"]).set(row["deliveries"])
    for measure, value in (await webhook_status(pool)).items():
        WEBHOOK_STATE.labels(measure).set(value or 0)


def _registry():
    if "PROMETHEUS_MULTIPROC_DIR" not in os.environ:
        from prometheus_client import REGISTRY

        return REGISTRY
    registry = CollectorRegistry()
    multiprocess.MultiProcessCollector(registry)
    return registry


@get("/metrics", operation_id="metrics", exclude_from_auth=True, tags=["operations"], media_type="text/plain")
async def metrics(pool: shared.Pool) -> Response[bytes]:
    """Prometheus exposition of this service's metrics."""
    await _refresh(pool)
    # Litestar appends the charset itself; CONTENT_TYPE_LATEST already has one.
    return Response(generate_latest(_registry()), media_type=CONTENT_TYPE_LATEST.removesuffix("; charset=utf-8"))
