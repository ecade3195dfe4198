"""Liveness and readiness; no key needed."""

from __future__ import annotations

from litestar import Request, Response, get


@get("/healthz", operation_id="healthz", exclude_from_auth=True, tags=["operations"])
async def healthz() -> dict[str, str]:
    """The process is alive."""
    return {"status": "ok"}


@get("/readyz", operation_id="readyz", exclude_from_auth=True, tags=["operations"])
async def readyz(request: Request) -> Response[dict]:
    """The database answers (NATS and projector lag join this when those parts run)."""
    checks: dict[str, object] = {}
    try:
        await request.app.state.pool.fetchval("SELECT 1")
        checks["database"] = "ok"
    except Exception as exc:  # noqa: BLE001 - any failure means not ready
        checks["database"] = f"unavailable: {type(exc).__name__}"
    ready = all(v == "ok" for v in checks.values())
    return Response({"status": "ready" if ready else "not ready", "checks": checks}, status_code=200 if ready else 503)
