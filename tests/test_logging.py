"""Logs: JSON lines with request_id, org_id and key_id; never a key, secret or Authorization."""

from __future__ import annotations

import io
import json

import structlog

from ledger.keys import create_key, ensure_organization
from ledger.logs import configure_logging
from tests.support.api_client import api_client


async def test_a_full_run_logs_context_and_never_a_key(database_url, pool):
    out = io.StringIO()
    configure_logging("json", stream=out)
    try:
        org_id = await ensure_organization(pool, "acme")
        created, _ = await create_key(pool, org_id, ["inventory:read", "inventory:write", "keys:manage"])
        key = created.key
        async with api_client(database_url) as client:
            bearer = {"Authorization": f"Bearer {key}"}
            await client.post("/api/v1/locations", json={"location_name": "Main"}, headers={"X-API-Key": key})
            await client.get("/api/v1/items", headers=bearer)
            await client.get("/api/v1/items", headers={"X-API-Key": key + "x"})  # unknown key
            await client.post("/api/v1/items/1/add", content=b"{bad", headers=bearer)
            made = await client.post("/api/v1/api-keys", json={"scopes": ["inventory:read"]}, headers=bearer)
            assert made.status_code == 201
            structlog.get_logger("test").info("a careless line", authorization=f"Bearer {key}", note=f"key was {key}")
        logged = out.getvalue()
    finally:
        configure_logging("console")
    lines = [json.loads(line) for line in logged.splitlines() if line.startswith("{")]
    requests = [line for line in lines if line.get("event") == "request"]
    assert len(requests) >= 5
    assert all(line["request_id"] for line in requests)
    assert any(line.get("org_id") == org_id and line.get("key_id") == created.key_id for line in requests)
    assert key not in logged and key[4:] not in logged
    assert made.json()["data"]["key"] not in logged
    assert "Bearer ldg_" not in logged
