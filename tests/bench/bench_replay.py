"""Replay speed: `ledger replay` over a generated ledger of a million events (or more).

    python -m tests.bench.bench_replay [--url postgresql://...] [--events 1000000] [--runs 3]
                                       [--database NAME] [--projector EVENTS] [--verify]

A fresh database gets a valid ledger from tests/bench/ledger_gen.py (real `decide`,
`evolve` and hash chain; `--verify` runs `ledger verify` over it to prove it), then the
replay runs `--runs` times. `--projector N` also times the live projector's path over the
first N events, for comparison. `--database NAME` keeps the database (created and
generated once, reused on the next run with the same name); otherwise it is dropped.
Without --url (or LEDGER_TEST_DATABASE_URL) the embedded PostgreSQL is started in a
temporary directory.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import asyncpg

from ledger.cli import SCHEMA_PACKAGES
from ledger.db import connect, create_pool
from ledger.migrate import migrate_dsn
from projections import Projector, read_models, wait_for_position
from projections.replay import rebuild_read_models
from tests.bench.ledger_gen import generate
from tests.support.read_models import fresh_tables


async def ensure_ledger(url: str, name: str, events: int) -> str:
    admin = await asyncpg.connect(url)
    try:
        if not await admin.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", name):
            await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()
    db_url = url.rsplit("/", 1)[0] + f"/{name}"
    await migrate_dsn(db_url, SCHEMA_PACKAGES)
    conn = await connect(db_url)
    try:
        have = await conn.fetchval("SELECT count(*) FROM events")
        if have < events:
            started = time.perf_counter()
            await generate(conn, events - have, report=lambda p: print(f"\r  generating: {p:,} events", end="", flush=True))
            elapsed = time.perf_counter() - started
            print(f"\r  generated {events - have:,} events in {elapsed:.0f} s ({(events - have) / elapsed:,.0f}/s)")
    finally:
        await conn.close()
    return db_url


async def projector_path(db_url: str, events: int) -> float:
    """Events/s of the live projector, into a scratch schema, over the first `events`."""
    pool = await create_pool(db_url, min_size=1, max_size=4)
    try:
        await pool.execute("DROP SCHEMA IF EXISTS bench_projector CASCADE")
        await pool.execute("DELETE FROM projection_checkpoints WHERE name LIKE 'bench_projector.%'")
        async with pool.acquire() as conn:
            await fresh_tables(conn, "bench_projector")
        models = read_models("bench_projector")
        upto = await pool.fetchval("SELECT max(position) FROM (SELECT position FROM events ORDER BY position LIMIT $1) e", events)
        projector = Projector(pool, db_url, models)
        started = time.perf_counter()
        projector.start()
        await wait_for_position(pool, upto, timeout=3600, projections=[m.name for m in models])
        elapsed = time.perf_counter() - started
        await projector.stop()
        await pool.execute("DROP SCHEMA bench_projector CASCADE")
        await pool.execute("DELETE FROM projection_checkpoints WHERE name LIKE 'bench_projector.%'")
        return events / elapsed
    finally:
        await pool.close()


async def main(args) -> None:
    name = args.database or f"bench_replay_{os.getpid()}"
    print(f"ledger of {args.events:,} events in database {name} ({args.url.split('@')[-1]})")
    db_url = await ensure_ledger(args.url, name, args.events)
    try:
        if args.verify:
            started = time.perf_counter()
            verified = subprocess.run([sys.executable, "-m", "ledger.cli", "verify"], capture_output=True, text=True,
                                      env={**os.environ, "LEDGER_DATABASE_URL": db_url})
            print(f"  verify: exit {verified.returncode} in {time.perf_counter() - started:.0f} s: "
                  + verified.stdout.strip().replace("\n", " / "))
        rates = []
        for run in range(args.runs):
            report = await rebuild_read_models(db_url, sessions=args.sessions)
            rates.append(report.events_per_second)
            print(f"  replay {run + 1}: {report.events:,} events in {report.seconds:.1f} s = {report.events_per_second:,.0f} events/s")
        print(f"replay: median {statistics.median(rates):,.0f} events/s over {args.runs} runs ({args.sessions} sessions)")
        if args.projector:
            print(f"projector path: {await projector_path(db_url, args.projector):,.0f} events/s over {args.projector:,} events")
    finally:
        if not args.database:
            admin = await asyncpg.connect(args.url)
            await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            await admin.close()


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--url", default=os.environ.get("LEDGER_TEST_DATABASE_URL"))
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--sessions", type=int, default=2)
    parser.add_argument("--database", default=None, help="keep the ledger in this database, and reuse it")
    parser.add_argument("--projector", type=int, default=0, metavar="EVENTS")
    parser.add_argument("--verify", action="store_true")
    args = parser.parse_args()
    if args.url:
        asyncio.run(main(args))
    else:
        from ledger.embedded import start_postgres

        with tempfile.TemporaryDirectory() as tmp:
            server = start_postgres(Path(tmp))
            try:
                args.url = server.url
                asyncio.run(main(args))
            finally:
                server.stop()
