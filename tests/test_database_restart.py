"""PostgreSQL crashes under load and comes back: every role recovers, no command is lost
or recorded twice, and no client following the retry protocol is stuck.

A private PostgreSQL (durable, so a crash loses nothing committed) and a private NATS,
`ledger serve all --workers 1` on them (API, projector, expiry, relay, webhook worker in
one process), 8 clients sending stock commands, each with its own Idempotency-Key,
retrying the same request with the same key on a 503, a `409 idempotency_key_in_use` or
a connection error until it gets a 2xx or a domain refusal. Mid-load the database is
crashed (`pg_ctl stop -m immediate`) and started again a few seconds later.

Checked: no 5xx but `503 database_unavailable`, each with Retry-After; every client
finishes soon after the restart; every acknowledged command recorded exactly once and
the stock equal to their sum, in the write model and the read models; `ledger verify`
finds nothing; the relay, the webhook emitter and the reservation expiry resume.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import nats
import pytest

from ledger import embedded
from ledger.cli import SCHEMA_PACKAGES
from ledger.db import connect
from ledger.keys import create_key, ensure_organization
from ledger.migrate import migrate_dsn
from ledger.verify import verify_all
from projections.verify import verify_read_models
from tests.support.fixtures_servers import scratch_data_dir
from tests.support.processes import LedgerProcess, free_port, ledger_env, wait_for_http, wait_until

pytestmark = pytest.mark.slow

CLIENTS = 8
ITEMS = 4
INITIAL = 100_000
DOWN_SECONDS = 3.0  # between the crash and the start of the restart
LOAD_BEFORE_CRASH = 2.5
LOAD_AFTER_RESTART = 4.0  # new commands keep coming this long after the restart
SETTLE_BOUND = 30.0  # every client done within this after the restart
REQUEST_BOUND = 5.0 + 2.0  # the API's db_timeout plus slack: no request may take longer


def _crash(data_dir: Path) -> None:
    """Immediate stop: every backend killed, no checkpoint; recovery replays WAL at start."""
    pgdata = (data_dir / "postgres").resolve()
    embedded._pg("pg_ctl", "stop", "-D", pgdata, "-m", "immediate", "-w", cwd=pgdata, **embedded._run_as())


class Load:
    """The clients, and everything they saw."""

    def __init__(self, base: str, key: str, location: int, items: list[int]):
        self.base, self.key, self.location, self.items = base, key, location, items
        self.answers: Counter[str] = Counter()
        self.violations: list[str] = []
        self.acknowledged: dict[str, tuple[int, int, int]] = {}  # key -> (item, signed quantity, position)
        self.refused: set[str] = set()
        self.interrupted: set[str] = set()  # keys that met the outage (a 503, a 409 in use, a lost connection)
        self.settled_at: dict[str, float] = {}  # key -> monotonic time of its acknowledgement or refusal
        self.first_2xx_after: float | None = None  # monotonic time
        self.restarted_at: float | None = None
        self.longest = 0.0
        self.stop = asyncio.Event()

    async def client(self, n: int) -> None:
        async with httpx.AsyncClient(base_url=self.base, headers={"X-API-Key": self.key}, timeout=REQUEST_BOUND + 5) as http:
            i = 0
            while not self.stop.is_set():
                item = self.items[(n + i) % len(self.items)]
                quantity = 1 + (n + i) % 3
                kind = "remove" if i % 3 == 2 else "add"
                await self.command(http, f"c{n}-{i}", kind, item, quantity)
                i += 1

    async def command(self, http: httpx.AsyncClient, key: str, kind: str, item: int, quantity: int) -> None:
        """Send until settled: a 2xx (acknowledged) or a domain refusal."""
        body = {"location_id": self.location, "quantity": quantity}
        while True:
            started = time.monotonic()
            try:
                r = await http.post(f"/api/v1/items/{item}/{kind}", json=body, headers={"Idempotency-Key": key})
            except httpx.TransportError as exc:
                self.answers[f"connection error ({type(exc).__name__})"] += 1
                self.interrupted.add(key)
                self.longest = max(self.longest, time.monotonic() - started)
                await asyncio.sleep(0.2)
                continue
            self.longest = max(self.longest, time.monotonic() - started)
            code = r.json().get("error") if r.status_code >= 400 else None
            self.answers[f"{r.status_code} {code}" if code else str(r.status_code)] += 1
            if r.status_code in (409, 503) or r.status_code >= 500:
                self.interrupted.add(key)
            if r.status_code < 300 or r.status_code not in (409, 503) and r.status_code < 500:
                self.settled_at[key] = time.monotonic()
            if r.status_code < 300:
                self.acknowledged[key] = (item, quantity if kind == "add" else -quantity, int(r.headers["X-Ledger-Position"]))
                if self.restarted_at is not None and self.first_2xx_after is None and started > self.restarted_at:
                    self.first_2xx_after = time.monotonic()
                return
            if r.status_code == 503:
                if code != "database_unavailable":
                    self.violations.append(f"{key}: 503 {code}")
                if "Retry-After" not in r.headers:
                    self.violations.append(f"{key}: 503 without Retry-After")
                await asyncio.sleep(float(r.headers.get("Retry-After", "1")))
            elif r.status_code == 409 and code == "idempotency_key_in_use":
                await asyncio.sleep(0.2)
            elif r.status_code >= 500:
                self.violations.append(f"{key}: {r.status_code} {r.text[:200]}")
                await asyncio.sleep(0.2)
            else:  # a domain refusal: settled, nothing recorded
                if code not in ("insufficient_stock",):
                    self.violations.append(f"{key}: unexpected {r.status_code} {r.text[:200]}")
                self.refused.add(key)
                return


async def test_a_database_crash_and_restart_is_survived():
    with scratch_data_dir("ledger-restart-pg-") as pg_dir, scratch_data_dir("ledger-restart-nats-") as nats_dir:
        server = embedded.start_postgres(pg_dir, durable=True)
        nats_server = embedded.start_nats(nats_dir)
        service = LedgerProcess("serve", ["serve", "all", "--workers", "1"],
                                ledger_env(server.url, nats_server.url, LEDGER_PORT=str(free_port())), pg_dir)
        try:
            await _run(pg_dir, server.url, nats_server.url, service)
        finally:
            service.stop()
            embedded.start_postgres(pg_dir, durable=True).stop()  # whichever run is up now
            nats_server.stop()


async def _run(pg_dir: Path, url: str, nats_url: str, api: LedgerProcess) -> None:
    await migrate_dsn(url, SCHEMA_PACKAGES)
    conn = await connect(url)
    try:
        org_id = await ensure_organization(conn, "acme")
        key = (await create_key(conn, org_id, ["inventory:read", "inventory:write"]))[0].key
    finally:
        await conn.close()

    api.start()
    base = f"http://127.0.0.1:{api.env['LEDGER_PORT']}"
    await wait_for_http(base, 60, "/readyz")
    async with httpx.AsyncClient(base_url=base, headers={"X-API-Key": key}, timeout=10) as http:
        location = (await http.post("/api/v1/locations", json={"location_name": "Main"})).json()["data"]["id"]
        items = [(await http.post("/api/v1/items", json={"part_number": f"R-{n}", "part_name": "r", "quantity_on_hand": INITIAL,
                                                          "location_id": location})).json()["data"]["id"] for n in range(ITEMS)]
        held = (await http.post("/api/v1/items", json={"part_number": "HELD", "part_name": "h", "quantity_on_hand": 10,
                                                       "location_id": location})).json()["data"]["id"]
        # A hold that expires while the database is down: the expiry must release it afterwards.
        expires = datetime.now(UTC) + timedelta(seconds=LOAD_BEFORE_CRASH + 1.0)
        r = await http.post("/api/v1/jobs/77/reservations", json={
            "items": [{"item_id": held, "location_id": location, "quantity": 4}], "expires_at": expires.isoformat()})
        assert r.status_code == 201, r.text

    load = Load(base, key, location, items)
    clients = [asyncio.create_task(load.client(n)) for n in range(CLIENTS)]
    await asyncio.sleep(LOAD_BEFORE_CRASH)
    acknowledged_before = len(load.acknowledged)
    crashed_at = time.monotonic()
    await asyncio.to_thread(_crash, pg_dir)
    await asyncio.sleep(DOWN_SECONDS)
    restarting_at = time.monotonic()
    restarted = await asyncio.to_thread(embedded.start_postgres, pg_dir, durable=True)
    load.restarted_at = time.monotonic()
    assert restarted.url == url, "the restarted PostgreSQL must keep its port"
    await asyncio.sleep(LOAD_AFTER_RESTART)
    load.stop.set()
    done, stuck = await asyncio.wait(clients, timeout=SETTLE_BOUND - LOAD_AFTER_RESTART)
    for task in stuck:
        task.cancel()
    finished_at = time.monotonic()
    for task in done:
        task.result()

    figures = {
        "answers by status": dict(sorted(load.answers.items())),
        "acknowledged commands": len(load.acknowledged),
        "acknowledged before the crash": acknowledged_before,
        "refused (domain)": len(load.refused),
        "database down (crash to restart started)": round(restarting_at - crashed_at, 2),
        "restart took (start_postgres, recovery included)": round(load.restarted_at - restarting_at, 2),
        "restart to first 2xx (s)": round(load.first_2xx_after - load.restarted_at, 2) if load.first_2xx_after else None,
        "commands the outage interrupted": len(load.interrupted),
        "restart to the last of them acknowledged (s)": round(
            max(load.settled_at.get(k, finished_at) for k in load.interrupted) - load.restarted_at, 2) if load.interrupted else None,
        "restart to all clients finished (s, new commands sent for the first 4 s)": round(finished_at - load.restarted_at, 2),
        "longest single request (s)": round(load.longest, 2),
    }
    print("\nDATABASE RESTART FIGURES", json.dumps(figures, indent=2))
    print("SERVER LOG, warnings and errors by event:", json.dumps(_log_summary(api.output()), indent=2))
    assert not stuck, f"{len(stuck)} clients still retrying {SETTLE_BOUND}s after the restart: {figures}"
    assert not load.violations, load.violations[:20]
    assert load.answers.get("503 database_unavailable", 0) > 0, "the crash was not noticed by any request"
    assert load.interrupted <= set(load.settled_at)
    assert load.first_2xx_after is not None
    assert load.longest < REQUEST_BOUND, figures
    assert len(load.acknowledged) > acknowledged_before

    await _check_ledger(url, org_id, load, location, items)
    await _check_roles(url, nats_url, org_id, held, location, restarted_at_wall=time.time() - (time.monotonic() - load.restarted_at))
    output = api.output()
    assert "unhandled error" not in output, [line for line in output.splitlines() if "unhandled error" in line][:3]


def _log_summary(output: str) -> dict[str, int]:
    """Warnings and errors by event; lines of the standard library's logging (asyncpg's
    pool logs its failed reconnects there, with a traceback) by logger and message."""
    seen: Counter[str] = Counter()
    for line in output.splitlines():
        try:
            entry = json.loads(line)
        except ValueError:
            if line.startswith(("WARNING - ", "ERROR - ")):
                level, _, logger, _, message = (line.split(" - ", 4) + [""] * 5)[:5]  # LEVEL - time - logger - module - message
                seen[f"{level.lower()} {logger} (stdlib): {message[:60]}"] += 1
            elif line.startswith("Traceback"):
                seen["tracebacks (stdlib logging)"] += 1
            continue
        if isinstance(entry, dict) and entry.get("level") not in ("debug", "info"):
            seen[f"{entry.get('level')}: {entry.get('event')}"] += 1
    return dict(sorted(seen.items()))


async def _check_ledger(url: str, org_id: int, load: Load, location: int, items: list[int]) -> None:
    conn = await connect(url)
    try:
        # Each key's command recorded exactly once, where its acknowledgement says.
        rows = await conn.fetch(
            "SELECT metadata->>'idempotency_key' AS key, count(*) AS n, max(position) AS position FROM events"
            " WHERE org_id = $1 AND metadata->>'idempotency_key' LIKE 'c%' GROUP BY 1", org_id)
        recorded = {r["key"]: r for r in rows}
        assert all(r["n"] == 1 for r in rows), [r["key"] for r in rows if r["n"] != 1][:10]
        assert set(recorded) == set(load.acknowledged), (set(recorded) ^ set(load.acknowledged))
        for key, (_, _, position) in load.acknowledged.items():
            assert recorded[key]["position"] == position, key

        expected = {item: INITIAL for item in items}
        for item, change, _ in load.acknowledged.values():
            expected[item] += change
        write = {r["item_id"]: r["quantity"] for r in await conn.fetch(
            "SELECT item_id, quantity FROM stock_state WHERE org_id = $1 AND location_id = $2 AND item_id = ANY($3)",
            org_id, location, items)}
        assert write == expected

        async def read_models_equal() -> bool:
            read = {r["item_id"]: r["quantity"] for r in await conn.fetch(
                "SELECT item_id, quantity FROM projections.stock WHERE org_id = $1 AND location_id = $2 AND item_id = ANY($3)",
                org_id, location, items)}
            return read == expected

        await wait_until(read_models_equal, 30, "the read models to reach the ledger")
        streams = await verify_all(conn, org_id)
        assert [p for s in streams for p in s.problems] == []
        models = await verify_read_models(conn, org_id)
        assert models.problems == []
    finally:
        await conn.close()


async def _check_roles(url: str, nats_url: str, org_id: int, held: int, location: int, restarted_at_wall: float) -> None:
    """The relay, the webhook emitter and the expiry each resumed after the restart."""
    conn = await connect(url)
    nc = await nats.connect(nats_url)
    try:
        head = await conn.fetchval("SELECT max(position) FROM events")
        events = await conn.fetchval("SELECT count(*) FROM events")

        async def relayed() -> bool:
            return await conn.fetchval("SELECT position FROM relay_checkpoints WHERE name = 'ledger'") == head

        await wait_until(relayed, 30, "the relay to publish the whole ledger")
        assert (await nc.jetstream().stream_info("LEDGER")).state.messages == events

        async def emitted() -> bool:
            return await conn.fetchval("SELECT position FROM webhook_emitter_checkpoints WHERE name = 'webhooks'") == head

        await wait_until(emitted, 30, "the webhook emitter to handle the whole ledger")

        async def expired() -> bool:
            return await conn.fetchval("SELECT count(*) FROM reservation_state WHERE org_id = $1 AND job_id = 77", org_id) == 0

        await wait_until(expired, 30, "the expiry to release the hold")
        release = await conn.fetchrow(
            "SELECT recorded_at, data FROM events WHERE org_id = $1 AND type = 'Release' AND stream = $2", org_id, f"item-{held}")
        assert release is not None and json.loads(release["data"])["reason"] == "expired"
        assert release["recorded_at"].timestamp() >= restarted_at_wall - 1.0, "released before the crash: nothing tested"
    finally:
        await nc.close()
        await conn.close()
