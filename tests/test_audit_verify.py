"""`ledger verify` finds what was changed behind the ledger's back, and says what it found."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys

import pytest

from ledger.commands import AddStock, Line, ReserveStock, TransferStock
from ledger.keys import ensure_organization
from projections import Projector, read_models, wait_for_position
from tests.support.world import make_item, make_location


def ledger(database_url: str, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "LEDGER_DATABASE_URL": database_url}
    return subprocess.run([sys.executable, "-m", "ledger.cli", *args], env=env, capture_output=True, text=True,
                          timeout=120)


async def run_ledger(database_url: str, *args: str) -> subprocess.CompletedProcess:
    return await asyncio.to_thread(ledger, database_url, *args)


@pytest.fixture
async def history(store, pool, org_id, database_url):
    """A little of everything in two organizations, with the read models caught up."""
    world = {}
    for org in (org_id, await ensure_organization(pool, "globex")):
        main, van = await make_location(store, org, "Main"), await make_location(store, org, "Van", location_type="vehicle")
        item = await make_item(store, org)
        await store.execute(org, AddStock(item_id=item, location_id=main, quantity=10))
        await store.execute(org, TransferStock(item_id=item, from_location_id=main, to_location_id=van, quantity=4))
        await store.execute(org, ReserveStock(job_id=3, lines=[Line(item_id=item, location_id=van, quantity=2)]))
        world[org] = (main, van, item)
    projector = Projector(pool, database_url, read_models())
    projector.start()
    try:
        assert await wait_for_position(pool, await pool.fetchval("SELECT max(position) FROM events"), timeout=10)
    finally:
        await projector.stop()
    return world


async def behind_the_ledgers_back(pool, statement: str, *args) -> None:
    """What only someone bypassing the service could do: the trigger is what stops it."""
    async with pool.acquire() as conn:
        await conn.execute("ALTER TABLE events DISABLE TRIGGER events_append_only")
        await conn.execute(statement, *args)
        await conn.execute("ALTER TABLE events ENABLE TRIGGER events_append_only")


async def test_verify_passes_a_sound_ledger_and_read_models(history, database_url):
    verified = await run_ledger(database_url, "verify")
    assert verified.returncode == 0, verified.stdout + verified.stderr
    assert "all sound" in verified.stdout and "all equal to the ledger" in verified.stdout
    assert "MISMATCH" not in verified.stdout


async def test_verify_finds_an_edited_event(history, pool, org_id, database_url):
    _, _, item = history[org_id]
    await behind_the_ledgers_back(
        pool, "UPDATE events SET data = jsonb_set(data, '{quantity}', '12') WHERE stream = $1 AND version = 2", f"item-{item}")
    verified = await run_ledger(database_url, "verify")
    assert verified.returncode == 1
    assert f"MISMATCH item-{item} v2" in verified.stdout and "it was edited" in verified.stdout, verified.stdout


async def test_verify_finds_a_deleted_event_in_the_middle_and_at_the_end(history, pool, org_id, database_url):
    main, van, item = history[org_id]
    await behind_the_ledgers_back(pool, "DELETE FROM events WHERE stream = $1 AND version = 3", f"item-{item}")
    verified = await run_ledger(database_url, "verify")
    assert verified.returncode == 1
    assert f"item-{item} v4" in verified.stdout and "expected version 3; an event is missing" in verified.stdout

    await behind_the_ledgers_back(pool, "DELETE FROM events WHERE stream = $1", f"location-{van}")
    verified = await run_ledger(database_url, "verify")
    assert f"location-{van}: its head is at version 1 but its events end at version 0; events are missing at the end" \
        in verified.stdout, verified.stdout


async def test_verify_finds_a_drifted_read_model_row_and_only_in_its_organization(history, pool, org_id, database_url):
    main, _, item = history[org_id]
    await pool.execute("UPDATE projections.stock SET quantity = quantity + 1 WHERE item_id = $1 AND location_id = $2",
                       item, main)
    verified = await run_ledger(database_url, "verify")
    assert verified.returncode == 1
    assert (f"MISMATCH stock org_id {org_id}, item_id {item}, location_id {main}: quantity is 7, the ledger says 6"
            in verified.stdout), verified.stdout
    assert "ledger: 6 streams" in verified.stdout and "all sound" in verified.stdout  # the ledger itself is fine
    assert "1 differences" in verified.stdout

    assert (await run_ledger(database_url, "verify", "--org", "globex")).returncode == 0
    await pool.execute("DELETE FROM projections.transactions WHERE position = "
                       "(SELECT max(position) FROM projections.transactions WHERE org_id = $1)", org_id)
    await pool.execute("UPDATE projections.items SET part_name = 'Renamed' WHERE item_id = $1", item)
    verified = await run_ledger(database_url, "verify", "--org", "acme")
    assert "transactions position" in verified.stdout and "missing from the read model" in verified.stdout
    assert f"items org_id {org_id}, item_id {item}: part_name is 'Renamed', the ledger says 'Filter'" in verified.stdout
