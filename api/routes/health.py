"""Liveness and readiness; no key needed."""

from __future__ import annotations

import contextlib

from litestar import Response, get

from api import shared
from consumers.relay import relay_status
from projections import projection_status


@get("/healthz", operation_id="healthz", exclude_from_auth=True, tags=["operations"])
async def healthz() -> dict[str, str]:
    """The process is alive."""
    return {"status": "ok"}


@get("/readyz", operation_id="readyz", exclude_from_auth=True, tags=["operations"])
async def readyz(pool: shared.Pool, nats: shared.Nats) -> Response[dict]:
    """503 when the database is unreachable; `degraded` when NATS is or a projection is stuck."""
    checks: dict[str, object] = {}
    projections: dict[str, object] = {}
    relays: dict[str, object] = {}
    try:
        for p in await projection_status(pool):
            projections[p.name] = {
                "checkpoint": p.position, "lag_positions": p.lag, "stuck_at": p.stuck_at, "dead_letters": p.dead_letters,
            }
        checks["database"] = "ok"
    except Exception as exc:  # noqa: BLE001 - any failure means not ready
        checks["database"] = f"unavailable: {type(exc).__name__}"
    if nats is not None:
        checks["nats"] = "ok" if nats.connected else "unreachable"
    with contextlib.suppress(Exception):  # the relay's lag, where a relay has run
        relays = {r["name"]: {"checkpoint": r["position"], "lag_positions": r["lag"]} for r in await relay_status(pool)}
    stuck = [name for name, p in projections.items() if p["stuck_at"] is not None]  # type: ignore[index]  # each projection status is a dict
    checks["projections"] = "ok" if not stuck else f"stuck on a dead letter: {', '.join(stuck)}"
    # Only the database decides readiness: commands need nothing else (NATS down or a
    # stuck projection delay the fan-out and the reads, not the ledger), and every API
    # process sees the same NATS, so failing on it would take the whole API out at once.
    status = "not ready" if checks["database"] != "ok" else "ready" if all(v == "ok" for v in checks.values()) else "degraded"
    body = {"status": status, "checks": checks, "projections": projections, "relays": relays}
    return Response(body, status_code=503 if status == "not ready" else 200)
