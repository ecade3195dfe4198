"""Appends per second through the event store, on a fresh database.

    python -m tests.bench.bench_append [--url postgresql://...] [--clients 16] [--seconds 10]

Without --url (or LEDGER_TEST_DATABASE_URL) it starts the embedded PostgreSQL in a
temporary directory. Each workload runs `clients` concurrent tasks, each on its own item
(so the figure is the store's, not one hot row's), plus a hot-item run where every
client hits the same two items.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import tempfile
import time
import uuid
from pathlib import Path

import asyncpg

from ledger.commands import AddStock, TransferStock
from ledger.db import create_pool
from ledger.keys import ensure_organization
from ledger.migrate import migrate_dsn
from ledger.store import EventStore
from schemas import ItemAttributes, LocationAttributes


async def run_workload(store, org_id, name, clients, seconds, make_command):
    latencies: list[float] = []
    count = 0
    deadline = time.perf_counter() + seconds

    async def client(n: int) -> None:
        nonlocal count
        i = 0
        while time.perf_counter() < deadline:
            started = time.perf_counter()
            await store.execute(org_id, make_command(n, i))
            latencies.append(time.perf_counter() - started)
            count += 1
            i += 1

    started = time.perf_counter()
    await asyncio.gather(*(client(n) for n in range(clients)))
    elapsed = time.perf_counter() - started
    q = statistics.quantiles(latencies, n=100)
    print(f"{name:<34} {count / elapsed:>9.0f} commands/s   p50 {q[49] * 1000:6.2f} ms   p99 {q[98] * 1000:6.2f} ms")
    return count / elapsed


async def main(url: str, clients: int, seconds: float) -> None:
    name = f"bench_{uuid.uuid4().hex[:8]}"
    admin = await asyncpg.connect(url)
    await admin.execute(f'CREATE DATABASE "{name}"')
    db_url = url.rsplit("/", 1)[0] + f"/{name}"
    try:
        await migrate_dsn(db_url)
        pool = await create_pool(db_url, min_size=clients, max_size=clients + 4)
        store = EventStore(pool)
        org_id = await ensure_organization(pool, "bench")
        a = (await store.create_location(org_id, LocationAttributes(location_name="A"))).events[0].data.location_id
        b = (await store.create_location(org_id, LocationAttributes(location_name="B"))).events[0].data.location_id
        items = []
        for n in range(clients):
            result = await store.create_item(org_id, ItemAttributes(part_number=f"B-{n}", part_name="bench"))
            items.append(result.events[0].data.item_id)
            await store.execute(org_id, AddStock(item_id=items[-1], location_id=a, quantity=10**12))
        print(f"{clients} clients, {seconds:.0f} s each, PostgreSQL at {url.split('@')[-1]}")
        await run_workload(store, org_id, "single-item Add (own item)", clients, seconds,
                           lambda n, i: AddStock(item_id=items[n], location_id=a, quantity=1))
        await run_workload(
            store, org_id, "transfer pair (own item)", clients, seconds,
            lambda n, i: TransferStock(item_id=items[n], from_location_id=a if i % 2 == 0 else b,
                                       to_location_id=b if i % 2 == 0 else a, quantity=1,
                                       transfer_id=str(uuid.uuid4())),
        )
        await run_workload(store, org_id, "single-item Add (2 hot items)", clients, seconds,
                           lambda n, i: AddStock(item_id=items[n % 2], location_id=a, quantity=1))
        await pool.close()
    finally:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--url", default=os.environ.get("LEDGER_TEST_DATABASE_URL"))
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--seconds", type=float, default=10)
    args = parser.parse_args()
    if args.url:
        asyncio.run(main(args.url, args.clients, args.seconds))
    else:
        from ledger.embedded import start_postgres

        with tempfile.TemporaryDirectory() as tmp:
            server = start_postgres(Path(tmp))
            try:
                asyncio.run(main(server.url, args.clients, args.seconds))
            finally:
                server.stop()
