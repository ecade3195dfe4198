"""`ledger import FILE.csv`: batches of a file's lines; run again after a kill, no line twice."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from ledger.keys import ensure_organization
from ledger.store import EventStore
from schemas import LocationAttributes
from tests.support.processes import ledger_env


async def _setup(pool, store: EventStore, items: int = 3) -> tuple[int, list[int], int]:
    org_id = await ensure_organization(pool, "acme")
    location = (await store.create_location(org_id, LocationAttributes(location_name="Main"))).events[0].data.location_id
    from schemas import ItemAttributes

    ids = []
    for n in range(items):
        created = await store.create_item(org_id, ItemAttributes(part_number=f"P-{n}", part_name="part"))
        ids.append(created.events[0].data.item_id)
    return org_id, ids, location


def _write_csv(lines: list[str]) -> Path:
    path = Path(tempfile.mkdtemp(prefix="ledger-import-")) / "moves.csv"
    path.write_text("\n".join(["kind,part_number,location_id,quantity,ref", *lines]) + "\n")
    return path


def _import(env: dict, path: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "ledger.cli", "import", str(path), *args], env=env,
                          capture_output=True, text=True, timeout=120)


async def _stock(pool, item_ids: list[int]) -> list[int]:
    rows = {r["item_id"]: r["quantity"] for r in await pool.fetch("SELECT item_id, quantity FROM stock_state")}
    return [rows.get(i, 0) for i in item_ids]


async def test_an_import_records_every_line_and_a_second_run_records_nothing_again(database_url, nats_url, pool, store):
    _, items, location = await _setup(pool, store)
    path = _write_csv([f"add,P-{n % 3},{location},{n % 5 + 1},r{n}" for n in range(250)])
    env = ledger_env(database_url, nats_url)
    first = _import(env, path, "--chunk", "100")
    assert first.returncode == 0, first.stderr
    assert "250 lines recorded" in first.stdout
    expected = [sum(n % 5 + 1 for n in range(250) if n % 3 == k) for k in range(3)]
    assert await _stock(pool, items) == expected
    again = _import(env, path, "--chunk", "100")
    assert again.returncode == 0 and "0 lines recorded, 250 recorded before" in again.stdout, again.stdout
    assert await _stock(pool, items) == expected


async def test_an_atomic_import_stops_at_a_refused_batch_naming_the_file_line(database_url, nats_url, pool, store):
    _, items, location = await _setup(pool, store)
    path = _write_csv([f"add,P-0,{location},1,a{n}" for n in range(10)] + [f"remove,P-1,{location},5,bad"])
    result = _import(ledger_env(database_url, nats_url), path, "--chunk", "5")
    assert result.returncode != 0
    assert "line 12: insufficient_stock" in result.stderr, result.stderr
    assert await _stock(pool, items) == [10, 0, 0]  # the two batches before it
    assert "Traceback" not in result.stderr


async def test_a_file_with_an_unknown_column_is_refused_with_one_line(database_url, nats_url, pool, store):
    await _setup(pool, store)
    path = Path(tempfile.mkdtemp(prefix="ledger-import-")) / "bad.csv"
    path.write_text("kind,colour\nadd,red\n")
    result = _import(ledger_env(database_url, nats_url), path)
    assert result.returncode != 0 and "unknown CSV column" in result.stderr and "Traceback" not in result.stderr


@pytest.mark.slow
async def test_an_import_killed_midway_and_run_again_records_each_line_exactly_once(database_url, nats_url, pool, store):
    _, items, location = await _setup(pool, store)
    lines = 3000
    path = _write_csv([f"add,P-{n % 3},{location},1,r{n}" for n in range(lines)])
    env = ledger_env(database_url, nats_url)
    proc = subprocess.Popen([sys.executable, "-m", "ledger.cli", "import", str(path), "--chunk", "50"], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        for _ in range(600):  # until part of the file is in, then kill it without warning
            if sum(await _stock(pool, items)) >= 400:
                break
            await asyncio.sleep(0.02)
        proc.kill()
        proc.wait(10)
    finally:
        if proc.poll() is None:
            proc.kill()
    partial = sum(await _stock(pool, items))
    assert 0 < partial < lines, f"the kill came at {partial} of {lines} lines: not midway"
    result = _import(env, path, "--chunk", "50")
    assert result.returncode == 0, result.stderr
    assert await _stock(pool, items) == [1000, 1000, 1000]
    assert await pool.fetchval("SELECT count(*) FROM events WHERE type = 'Add'") == lines
    print(f"killed at {partial} lines; the second run recorded the other {lines - partial}")
    os.remove(path)
