"""The API's worker processes (`ledger serve api --workers N`) take the caller's address
from `X-Forwarded-For` only when the proxy sending it is trusted (uvicorn's
`FORWARDED_ALLOW_IPS`, default 127.0.0.1): a key allowed from one address is refused
from anywhere else, and a caller cannot forge its way past the allow-list through an
untrusted hop (deploy/OPERATIONS.md)."""

from __future__ import annotations

import tempfile
from pathlib import Path

import httpx
import pytest

from ledger.keys import create_key, ensure_organization
from tests.support.processes import LedgerProcess, free_port, ledger_env, wait_for_http

pytestmark = pytest.mark.slow  # starts two API processes twice


async def _statuses(database_url, nats_url, pool, **env_extra: str) -> tuple[int, int]:
    """(without X-Forwarded-For, with it naming the allowed address) for a key allowed
    only from 10.1.2.3, asked from 127.0.0.1 through the worker processes."""
    port = free_port()
    env = ledger_env(database_url, nats_url, LEDGER_PORT=str(port), **env_extra)
    api = LedgerProcess("api", ["serve", "api", "--workers", "2"], env, Path(tempfile.mkdtemp(prefix="ledger-workers-")))
    api.start()
    try:
        org_id = await ensure_organization(pool, "acme")
        key = (await create_key(pool, org_id, ["inventory:read"], allowed_ips=["10.1.2.3/32"]))[0].key
        await wait_for_http(f"http://127.0.0.1:{port}")
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", headers={"X-API-Key": key}, timeout=10) as http:
            direct = (await http.get("/api/v1/items")).status_code
            forwarded = (await http.get("/api/v1/items", headers={"X-Forwarded-For": "10.1.2.3"})).status_code
        return direct, forwarded
    finally:
        api.stop()


async def test_a_trusted_proxy_names_the_caller_and_an_untrusted_one_does_not(database_url, nats_url, pool):
    assert await _statuses(database_url, nats_url, pool) == (403, 200)
    assert await _statuses(database_url, nats_url, pool, FORWARDED_ALLOW_IPS="10.9.9.9") == (403, 403)
