"""Reads see the writes before them, with no header, from any API process (DESIGN 6).

Two API worker processes share one port (uvicorn's workers: the kernel hands each new
connection to either), and a projector runs in a process of its own. A client writes
through one kept-alive connection and, as soon as the answer is in, reads through a NEW
connection, on every read route family, native and seed 004. No read may show the state
before the write. With the wait switched off (`X-Ledger-Consistency: eventual`) the same
loop does see stale reads, which is what the default prevents.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import httpx
import pytest

from ledger.keys import create_key, ensure_organization
from tests.support.api_client import api_client, key_for
from tests.support.processes import LedgerProcess, free_port, ledger_env, wait_for_http

FAMILIES = ("items", "item", "stock", "transactions", "low_stock", "location", "job",
            "inventory_list", "inventory_stock", "inventory_transactions", "inventory_low_stock", "inventory_location")


class Scenario:
    """One write and the read that must show it, for each read route family."""

    def __init__(self, writer: httpx.AsyncClient, n: int, location: int):
        self.writer, self.n, self.location = writer, n, location

    async def create_item(self, **fields) -> dict:
        body = {"part_number": f"RYW-{self.n}", "part_name": "probe", "category": f"cat-{self.n}", **fields}
        r = await self.writer.post("/api/v1/items", json=body)
        assert r.status_code == 201, r.text
        return r.json()["data"]

    async def run(self, family: str, read: httpx.AsyncClient, headers: dict) -> bool:
        """Write, then read through `read`; whether the read showed the write."""
        n = self.n
        if family in ("items", "inventory_list"):
            item = await self.create_item()
            path = f"/api/v1/items?category=cat-{n}" if family == "items" else f"/api/v1/inventory?category=cat-{n}"
            r = await read.get(path, headers=headers)
            return r.status_code == 200 and [i["id"] for i in r.json()["data"]] == [item["id"]]
        if family in ("item", "stock", "inventory_stock"):
            item = await self.create_item(quantity_on_hand=7, location_id=self.location)
            path = {"item": f"/api/v1/items/{item['id']}", "stock": f"/api/v1/items/{item['id']}/stock",
                    "inventory_stock": f"/api/v1/inventory?id={item['id']}&sub=stock"}[family]
            r = await read.get(path, headers=headers)
            if r.status_code != 200:
                return False
            data = r.json()["data"]
            stock = data["stock"] if family == "item" else data
            return [s["quantity"] for s in stock] == [7]
        if family in ("transactions", "inventory_transactions"):
            item = await self.create_item(quantity_on_hand=5, location_id=self.location)
            w = await self.writer.post(f"/api/v1/items/{item['id']}/add", json={"location_id": self.location, "quantity": 2})
            assert w.status_code < 300, w.text
            path = (f"/api/v1/items/{item['id']}/transactions" if family == "transactions"
                    else f"/api/v1/inventory?id={item['id']}&sub=transactions")
            r = await read.get(path, headers=headers)
            return r.status_code == 200 and len(r.json()["data"]) == 2
        if family in ("low_stock", "inventory_low_stock"):
            item = await self.create_item(quantity_on_hand=10, location_id=self.location, min_stock_level=5)
            w = await self.writer.post(f"/api/v1/items/{item['id']}/adjust",
                                       json={"location_id": self.location, "quantity": -6, "reason": "probe"})
            assert w.status_code < 300, w.text
            path = "/api/v1/low-stock?per_page=100" if family == "low_stock" else "/api/v1/inventory?sub=low-stock&per_page=100"
            r = await read.get(path, headers=headers)
            # Back above its minimum: the list stays shorter than a page.
            await self.writer.post(f"/api/v1/items/{item['id']}/adjust",
                                   json={"location_id": self.location, "quantity": 6, "reason": "probe"})
            return r.status_code == 200 and item["id"] in {i["id"] for i in r.json()["data"]}
        if family in ("location", "inventory_location"):
            w = await self.writer.post("/api/v1/locations", json={"location_name": f"Van {n}"})
            assert w.status_code == 201, w.text
            location = w.json()["data"]["id"]
            path = (f"/api/v1/locations/{location}" if family == "location"
                    else f"/api/v1/inventory?sub=locations&location_id={location}")
            r = await read.get(path, headers=headers)
            return r.status_code == 200
        if family == "job":
            item = await self.create_item(quantity_on_hand=3, location_id=self.location)
            w = await self.writer.post(f"/api/v1/jobs/{n}/reservations",
                                       json={"items": [{"item_id": item["id"], "location_id": self.location, "quantity": 1}]})
            assert w.status_code < 300, w.text
            r = await read.get(f"/api/v1/jobs/{n}", headers=headers)
            return r.status_code == 200
        raise AssertionError(family)


@pytest.fixture
async def two_api_processes(database_url, nats_url, pool):
    log_dir = Path(tempfile.mkdtemp(prefix="ledger-ryw-"))
    port = free_port()
    env = ledger_env(database_url, nats_url, LEDGER_PORT=str(port), LEDGER_RATE_LIMIT="1000000")
    processes = [LedgerProcess("api", ["serve", "api", "--workers", "2"], env, log_dir),
                 LedgerProcess("projector", ["serve", "projector"], env, log_dir)]
    for p in processes:
        p.start()
    try:
        org_id = await ensure_organization(pool, "acme")
        key = (await create_key(pool, org_id, ["inventory:read", "inventory:write"]))[0].key
        await wait_for_http(f"http://127.0.0.1:{port}")
        yield f"http://127.0.0.1:{port}", key
    finally:
        for p in processes:
            p.stop()


async def _stale_reads(base_url: str, key: str, rounds: int, read_headers: dict, first: int) -> list[str]:
    headers = {"X-API-Key": key}
    # A new connection for every read: no keep-alive pool, so either process may answer it.
    fresh = httpx.Limits(max_keepalive_connections=0)
    async with httpx.AsyncClient(base_url=base_url, headers=headers, timeout=10) as writer, \
            httpx.AsyncClient(base_url=base_url, timeout=10, limits=fresh) as reader:
        return await _stale_reads_through(writer, reader, headers, rounds, read_headers, first)


async def _stale_reads_through(writer, reader, headers: dict, rounds: int, read_headers: dict, first: int) -> list[str]:
    """The families whose read, through `reader`, did not show the write just made through `writer`."""
    stale = []
    r = await writer.post("/api/v1/locations", json={"location_name": "Main"})
    location = r.json()["data"]["id"]
    for n in range(first, first + rounds):
        family = FAMILIES[n % len(FAMILIES)]
        if not await Scenario(writer, n, location).run(family, reader, {**headers, **read_headers}):
            stale.append(family)
    return stale


@pytest.mark.slow
async def test_a_read_on_a_new_connection_sees_the_write_answered_before_it(two_api_processes):
    base_url, key = two_api_processes
    stale = await _stale_reads(base_url, key, 1000, {}, first=0)
    assert stale == [], f"{len(stale)} of 1000 reads showed a state before the write: {sorted(set(stale))}"


@pytest.mark.slow  # starting the three processes alone takes seconds
async def test_reads_see_writes_on_every_route_family_and_eventual_opts_out(two_api_processes):
    base_url, key = two_api_processes
    stale = await _stale_reads(base_url, key, 2 * len(FAMILIES), {}, first=0)
    assert stale == []
    # The same loop without the wait: the reads race the projector. Not asserted to lose
    # (a fast projector may win every race), only that opting out is accepted.
    eventual = await _stale_reads(base_url, key, len(FAMILIES), {"X-Ledger-Consistency": "eventual"}, first=10_000)
    print(f"stale reads with consistency=eventual: {len(eventual)} of {len(FAMILIES)}")


async def test_in_one_process_reads_see_writes_on_every_route_family(database_url, pool):
    """The same rounds through the app in this process (its projector in a task): the wait
    itself, in the fast loop; the processes above add the new connection to either worker."""
    async with api_client(database_url) as client:
        headers = await key_for(pool, scopes=("inventory:read", "inventory:write"))
        client.headers.update(headers)
        stale = await _stale_reads_through(client, client, headers, len(FAMILIES), {}, first=0)
    assert stale == []
