"""Webhook delivery latency: from an event's commit (`recorded_at`) to its receipt.

    python -m tests.bench.bench_webhooks [--url postgresql://...] [--commands 400] [--rate 100] [--endpoints 2] [--events '*']

Without --url (or LEDGER_TEST_DATABASE_URL) it starts the embedded PostgreSQL in a
temporary directory; it always starts a private nats-server of its own (the LEDGER stream
is per server). A fresh database is made and dropped. This process runs the relay, a
`WebhookWorker` (emitter and deliverer, tuned by `LEDGER_WEBHOOK_*`) and clients issuing
stock commands (Add, Remove, Transfer on a few items) at `rate` commands per second, each
command in its own task, as `ledger serve` runs them beside its API. The receivers (one
per endpoint, each wanting `--events`, by default every name) run in a child process on
127.0.0.1, as a receiver would run elsewhere. Every delivery is timed from its event's `recorded_at`
to the moment its body is in at the receiver, split at the moment the emitter recorded it
(relay, NATS and emitter before; deliverer and HTTP after).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import resource
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

import asyncpg

from consumers.relay import Relay
from consumers.webhooks import WebhookSettings, WebhookWorker, create_endpoint
from ledger.cli import SCHEMA_PACKAGES
from ledger.commands import AddStock, RemoveStock, TransferStock
from ledger.db import create_pool
from ledger.embedded import start_nats
from ledger.errors import LedgerError
from ledger.keys import ensure_organization
from ledger.migrate import migrate_dsn
from ledger.store import EventStore
from schemas import ItemAttributes, LocationAttributes


async def serve_receivers(count: int) -> None:
    """The child process (`--serve-receivers N`): N receivers; their URLs out on one line,
    then, once its stdin closes, (id, time of arrival) of every request."""
    from tests.support.webhook_receiver import Receiver

    receivers = [await Receiver().__aenter__() for _ in range(count)]
    print(json.dumps([r.url for r in receivers]), flush=True)
    await asyncio.to_thread(sys.stdin.read)
    print(json.dumps([(r.headers["webhook-id"], r.at) for rx in receivers for r in rx.received]), flush=True)


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def quantiles(values: list[float]) -> str:
    q = statistics.quantiles(values, n=100)
    return f"p50 {q[49] * 1000:7.1f} ms   p90 {q[89] * 1000:7.1f} ms   p99 {q[98] * 1000:7.1f} ms   max {max(values) * 1000:7.1f} ms"


async def load(store: EventStore, org_id: int, items: list[int], locations: list[int], commands: int, rate: float) -> float:
    """`commands` commands at `rate` per second, each in its own task; the seconds it took."""
    rng = random.Random(7)
    started = time.perf_counter()
    tasks = []
    for n in range(commands):
        item, (a, b) = rng.choice(items), rng.sample(locations, 2)
        command = rng.choice([
            AddStock(item_id=item, location_id=a, quantity=rng.randint(1, 5)),
            RemoveStock(item_id=item, location_id=a, quantity=1),
            TransferStock(item_id=item, from_location_id=a, to_location_id=b, quantity=1, transfer_id=str(uuid.uuid4())),
        ])
        tasks.append(asyncio.create_task(_execute(store, org_id, command)))
        await asyncio.sleep(max(started + (n + 1) / rate - time.perf_counter(), 0))
    await asyncio.gather(*tasks)
    return time.perf_counter() - started


async def _execute(store: EventStore, org_id: int, command) -> None:
    try:
        await store.execute(org_id, command)
    except LedgerError:  # a Remove or Transfer from an empty location: refused, nothing recorded
        pass


async def main(url: str, nats_url: str, commands: int, rate: float, endpoints: int, urls: list[str],
               events: list[str]) -> tuple[list[tuple], list[float]]:
    name = f"bench_{uuid.uuid4().hex[:8]}"
    admin = await asyncpg.connect(url)
    await admin.execute(f'CREATE DATABASE "{name}"')
    db_url = url.rsplit("/", 1)[0] + f"/{name}"
    settings = WebhookSettings.from_env(allow_private=True)  # the receivers are on 127.0.0.1
    try:
        await migrate_dsn(db_url, SCHEMA_PACKAGES)
        pool = await create_pool(db_url, min_size=4, max_size=20)
        store = EventStore(pool)
        org_id = await ensure_organization(pool, "bench")
        for receiver_url in urls:
            await create_endpoint(pool, org_id, settings, url=receiver_url, events=events)
        relay, worker = Relay(db_url, nats_url), WebhookWorker(db_url, nats_url, settings)
        relay.start()
        worker.start()
        locations = [(await store.create_location(org_id, LocationAttributes(location_name=f"L{n}"))).events[0].data.location_id
                     for n in range(3)]
        items = [(await store.create_item(org_id, ItemAttributes(part_number=f"B-{n}", part_name="bench", min_stock_level=20))).events[0].data.item_id
                 for n in range(8)]
        # Warm up (connections in the pools, to PostgreSQL and to the receivers), unmeasured.
        await load(store, org_id, items, locations, max(commands // 5, 20), rate)
        await asyncio.sleep(1.0)
        before = await pool.fetchval("SELECT max(position) FROM events")
        cpu = _cpu()
        seconds = await load(store, org_id, items, locations, commands, rate)
        head = await pool.fetchval("SELECT max(position) FROM events")
        deadline = time.monotonic() + 120
        while worker.emitter.position < head or await pool.fetchval(
            "SELECT count(*) FROM webhook_deliveries WHERE status <> 'delivered'"
        ):
            assert time.monotonic() < deadline, "deliveries were not all delivered within 120 s"
            await asyncio.sleep(0.1)
        cpu = _cpu() - cpu
        await worker.stop()
        await relay.stop()
        rows = await pool.fetch(
            """SELECT d.delivery_id, d.created_at, e.recorded_at FROM webhook_deliveries d
               JOIN events e USING (event_id) WHERE e.position > $1""", before,
        )
        events = await pool.fetchval("SELECT count(*) FROM events WHERE position > $1", before)
        print(f"{commands} commands in {seconds:.1f} s ({commands / seconds:.0f}/s), {events} events, "
              f"{len(rows)} deliveries to {endpoints} endpoints; this process used {cpu:.1f} s of CPU "
              f"({cpu / len(rows) * 1000:.2f} ms per delivery, the commands' own share included)")
        attempts = [r["duration_ms"] / 1000 for r in await pool.fetch("SELECT duration_ms FROM webhook_attempts")]
        await pool.close()
        return [(str(r["delivery_id"]), r["recorded_at"].timestamp(), r["created_at"].timestamp()) for r in rows], attempts
    finally:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()


def report(deliveries: list[tuple], received: list[tuple], attempts: list[float]) -> dict:
    """Print the figures; the runner's (tests/bench/run.py) `p50_ms` and `p99_ms` of commit -> received."""
    arrived = {delivery_id: at for delivery_id, at in received}  # the first arrival of each
    total, to_recorded, to_received = [], [], []
    for delivery_id, committed, recorded in deliveries:
        total.append(arrived[delivery_id] - committed)
        to_recorded.append(recorded - committed)
        to_received.append(arrived[delivery_id] - recorded)
    print(f"commit -> received          {quantiles(total)}")
    print(f"commit -> delivery recorded {quantiles(to_recorded)}")
    print(f"recorded -> received        {quantiles(to_received)}")
    print(f"one attempt (HTTP POST)     {quantiles(attempts)}")
    q = statistics.quantiles(total, n=100)
    return {"p50_ms": q[49] * 1000, "p99_ms": q[98] * 1000, "deliveries": len(total)}


async def measure(url: str | None, commands: int, rate: float, endpoints: int, events: list[str]) -> dict:
    """Receivers in a child process, a nats-server of its own (its relay and emitter need a
    LEDGER stream holding only this run's events), PostgreSQL at `url` or embedded."""
    receivers = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "tests.bench.bench_webhooks", "--serve-receivers", str(endpoints),
        stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE, cwd=Path(__file__).parents[2],
    )
    urls = json.loads(await receivers.stdout.readline())
    try:
        with tempfile.TemporaryDirectory() as tmp:
            nats_server = await asyncio.to_thread(start_nats, Path(tmp) / "nats")
            try:
                if url:
                    deliveries, attempts = await main(url, nats_server.url, commands, rate, endpoints, urls, events)
                else:
                    from ledger.embedded import start_postgres

                    pg = await asyncio.to_thread(start_postgres, Path(tmp) / "pg")
                    try:
                        deliveries, attempts = await main(pg.url, nats_server.url, commands, rate, endpoints, urls, events)
                    finally:
                        pg.stop()
            finally:
                nats_server.stop()
    finally:
        receivers.stdin.close()
        received = json.loads(await receivers.stdout.read())
        await receivers.wait()
    return report(deliveries, received, attempts)


async def bench(*, database_url: str, nats_url: str | None = None, quick: bool = False) -> dict:
    """The hook tests/bench/run.py calls (row 6): a moderate load, 300 commands at 50 a
    second to two endpoints wanting every name (about 230 deliveries a second; at 100
    commands a second one process on two shared cores is saturated, see the README).
    `nats_url` is not used: see `measure`."""
    commands, rate = (60, 60.0) if quick else (300, 50.0)
    return await measure(database_url, commands, rate, endpoints=2, events=["*"])


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--url", default=os.environ.get("LEDGER_TEST_DATABASE_URL"))
    parser.add_argument("--commands", type=int, default=400)
    parser.add_argument("--rate", type=float, default=100.0, help="commands per second")
    parser.add_argument("--endpoints", type=int, default=2)
    parser.add_argument("--events", default="*", help="the webhook event names each endpoint wants, comma-separated")
    parser.add_argument("--serve-receivers", type=int, metavar="N", help=argparse.SUPPRESS)  # the child process
    args = parser.parse_args()
    if args.serve_receivers:
        asyncio.run(serve_receivers(args.serve_receivers))
        sys.exit()
    asyncio.run(measure(args.url, args.commands, args.rate, args.endpoints, args.events.split(",")))
