"""Crash drill: SIGKILL the API while clients send commands.

Every command that got a 2xx is in the ledger after a restart, no transfer is
half-written, and `ledger verify` finds every stream sound.
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
import tempfile
from collections import Counter
from pathlib import Path

import httpx
import msgspec
import pytest

from ledger.keys import create_key, ensure_organization
from tests.support.processes import LedgerProcess, free_port, ledger_env, wait_for_http


@pytest.mark.slow  # an API process started twice and 1.5 s of load
async def test_a_killed_api_loses_no_acknowledged_command(database_url, pool):
    data_dir = Path(tempfile.mkdtemp(prefix="ledger-crash-"))
    port = free_port()
    env = {**ledger_env(database_url, "nats://127.0.0.1:1"), "LEDGER_PORT": str(port)}  # no NATS needed
    api = LedgerProcess("api", ["serve", "api", "--workers", "1"], env, data_dir).start()
    try:
        org_id = await ensure_organization(pool, "acme")
        key = (await create_key(pool, org_id, ["inventory:read", "inventory:write", "inventory:transfer"]))[0].key
        base = f"http://127.0.0.1:{port}"
        await wait_for_http(base)
        async with httpx.AsyncClient(base_url=base, headers={"X-API-Key": key}, timeout=10) as http:
            a = (await http.post("/api/v1/locations", json={"location_name": "A"})).json()["data"]["id"]
            b = (await http.post("/api/v1/locations", json={"location_name": "B"})).json()["data"]["id"]
            items = [(await http.post("/api/v1/items", json={"part_number": f"C-{n}", "part_name": "c", "quantity_on_hand": 10**6, "location_id": a})).json()["data"]["id"] for n in range(4)]

        acknowledged: list[tuple[str, int]] = []  # (kind, position)

        async def client(n: int) -> None:
            async with httpx.AsyncClient(base_url=base, headers={"X-API-Key": key}, timeout=5) as http:
                for i in range(10_000):
                    item = items[(n + i) % len(items)]
                    try:
                        if i % 2:
                            r = await http.post("/api/v1/transfers", json={"item_id": item, "from_location_id": a, "to_location_id": b, "quantity": 1})
                            kind = "transfer"
                        else:
                            r = await http.post(f"/api/v1/items/{item}/add", json={"location_id": b, "quantity": 1})
                            kind = "add"
                    except httpx.HTTPError:
                        return  # the process died under us: this command's fate is unknown to the client
                    if r.status_code < 300:
                        acknowledged.append((kind, int(r.headers["X-Ledger-Position"])))

        clients = [asyncio.create_task(client(n)) for n in range(8)]
        await asyncio.sleep(1.5)
        api.kill()  # SIGKILL mid-flight
        await asyncio.gather(*clients)
        assert len(acknowledged) > 50

        api.start()  # after the restart the ledger answers for every acknowledgement
        await wait_for_http(base)
        rows = {r["position"]: r for r in await pool.fetch("SELECT position, type, data FROM events")}
        for kind, position in acknowledged:
            assert position in rows, f"an acknowledged {kind} (position {position}) is missing"
            assert rows[position]["type"] == ("Transfer_in" if kind == "transfer" else "Add")
        halves = Counter()
        for row in rows.values():
            if row["type"].startswith("Transfer_"):
                halves[msgspec.json.decode(row["data"])["transfer_id"]] += 1
        assert set(halves.values()) <= {2}, "a transfer is half-written"
        verified = subprocess.run([sys.executable, "-m", "ledger.cli", "verify"], env=env, capture_output=True, text=True, timeout=120)
        assert verified.returncode == 0, verified.stdout + verified.stderr
    finally:
        api.kill()
