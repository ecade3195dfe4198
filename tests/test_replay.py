"""`ledger replay`: read models rebuilt from the ledger equal the live ones, swapped in whole."""

from __future__ import annotations

import asyncio

import pytest

from ledger.db import connect
from ledger.keys import ensure_organization
from projections import Projector, read_models, wait_for_position
from projections.replay import REBUILD_SCHEMA, rebuild_read_models
from tests.test_audit_verify import run_ledger
from tests.test_projections import TABLES, folded_read_models, head, make_world, table_rows, write_concurrently

INDEXES = "SELECT indexname, indexdef FROM pg_indexes WHERE schemaname = 'projections' ORDER BY indexname"
STORAGE = "SELECT relname, reloptions FROM pg_class WHERE relnamespace = 'projections'::regnamespace AND relkind = 'r' ORDER BY relname"
OIDS = "SELECT relname, oid FROM pg_class WHERE relnamespace = 'projections'::regnamespace AND relkind = 'r'"


async def live_tables(pool) -> dict[str, list[tuple]]:
    return {table: await table_rows(pool, "projections", table) for table in TABLES}


async def project_to_head(pool, database_url) -> None:
    projector = Projector(pool, database_url, read_models())
    projector.start()
    try:
        assert await wait_for_position(pool, await head(pool), timeout=20)
    finally:
        await projector.stop()


# (seconds of writing, commands that must have been accepted): full, and quick for the fast loop.
@pytest.mark.parametrize("seconds, accepted", [pytest.param(2.0, 200, marks=pytest.mark.slow, id="full"),
                                               pytest.param(0.5, 30, id="quick")])
async def test_replay_rebuilds_tables_equal_to_the_live_ones_under_their_own_names(
    store, pool, org_id, database_url, seconds, accepted
):
    other_org = await ensure_organization(pool, "globex")
    outcomes = await write_concurrently(store, await make_world(store, [org_id, other_org]), seconds=seconds)
    assert outcomes["accepted"] > accepted, outcomes
    await project_to_head(pool, database_url)
    live, indexes, storage = await live_tables(pool), await pool.fetch(INDEXES), await pool.fetch(STORAGE)
    assert live == await folded_read_models(pool)

    report = await rebuild_read_models(database_url, chunk=97)  # many small chunks: merges across chunk boundaries
    assert report.events == await pool.fetchval("SELECT count(*) FROM events") and report.position == await head(pool)
    assert report.took_over == []  # no projector was running
    assert await live_tables(pool) == live
    assert await pool.fetch(INDEXES) == indexes and await pool.fetch(STORAGE) == storage
    assert not await pool.fetchval("SELECT count(*) FROM pg_namespace WHERE nspname = $1", REBUILD_SCHEMA)
    checkpoints = await pool.fetch("SELECT name, position FROM projection_checkpoints ORDER BY name")
    assert {r["position"] for r in checkpoints} == {report.position} and len(checkpoints) == 4

    # The live projector goes on from the replay's checkpoints, exactly once per event.
    await write_concurrently(store, await make_world(store, [org_id]), writers=4, seconds=0.5)
    await project_to_head(pool, database_url)
    assert await live_tables(pool) == await folded_read_models(pool)


async def test_replaying_one_projection_swaps_only_its_tables(store, pool, org_id, database_url):
    await write_concurrently(store, await make_world(store, [org_id]), writers=4, seconds=0.5)
    await project_to_head(pool, database_url)
    before, live = dict(await pool.fetch(OIDS)), await live_tables(pool)
    replayed = await run_ledger(database_url, "replay", "--projection", "stock")
    assert replayed.returncode == 0, replayed.stderr
    assert "into stock in" in replayed.stdout and "events/s" in replayed.stdout
    after = dict(await pool.fetch(OIDS))
    assert {t for t in before if before[t] != after[t]} == {"stock", "job_holdings"}
    assert await live_tables(pool) == live
    refused = await run_ledger(database_url, "replay", "--projection", "stok")
    assert refused.returncode == 2 and "read models are items, stock, transactions, locations" in refused.stderr


async def test_a_replay_that_meets_an_event_it_cannot_apply_changes_nothing(store, pool, org_id, database_url):
    await write_concurrently(store, await make_world(store, [org_id]), writers=2, seconds=0.3)
    await project_to_head(pool, database_url)
    before = dict(await pool.fetch(OIDS))
    await pool.execute(
        "INSERT INTO events (event_id, org_id, stream, version, type, data, metadata, recorded_at, prev_hash, hash) "
        "VALUES (gen_random_uuid(), $1, 'item-999', 1, 'Teleported', '{}', '{}', now(), '', '')", org_id)
    replayed = await run_ledger(database_url, "replay")
    assert replayed.returncode == 1 and "has type 'Teleported', which this version cannot replay" in replayed.stderr
    assert dict(await pool.fetch(OIDS)) == before
    assert not await pool.fetchval("SELECT count(*) FROM pg_namespace WHERE nspname = $1", REBUILD_SCHEMA)


# (events in the ledger, reads that must have been answered during the replay): the full
# run, and a quick one for the fast loop, where the replay is over after a few reads.
@pytest.mark.parametrize("events, min_reads", [pytest.param(20_000, 10, marks=pytest.mark.slow, id="full"),
                                               pytest.param(500, 1, id="quick")])
async def test_reads_keep_working_while_a_replay_fences_off_the_live_projector_and_swaps(
    store, pool, org_id, database_url, events, min_reads
):
    """A replay in its own process, against an API that runs a live projector and serves reads."""
    from tests.bench.ledger_gen import generate
    from tests.support.api_client import api_client, key_for
    from tests.test_events_feed import writers_elsewhere

    conn = await connect(database_url)
    try:
        await generate(conn, events, org="bench", items=50, locations=6)  # a ledger worth replaying
    finally:
        await conn.close()
    bench = await ensure_organization(pool, "bench")
    headers = await key_for(pool, "bench", scopes=("inventory:read",))
    # The live projector is fenced off until the swap, so a read that waits for the writes
    # before it would wait for the swap: these reads ask for what the models hold now.
    headers["X-Ledger-Consistency"] = "eventual"
    quiet_item, busy_items = 1, [2, 3, 4]  # nobody writes to item 1 during the test
    async with api_client(database_url) as client:
        assert await wait_for_position(pool, await head(pool), timeout=30)
        quiet = (await client.get(f"/api/v1/items/{quiet_item}/stock", headers=headers)).json()["data"]
        assert quiet
        replaying = asyncio.create_task(run_ledger(database_url, "replay"))
        reads, totals = 0, {}
        with writers_elsewhere(database_url, {bench: (1, busy_items)}, writers=3):
            while not replaying.done():
                assert (await client.get(f"/api/v1/items/{quiet_item}/stock", headers=headers)).json()["data"] == quiet
                for item in busy_items:
                    r = await client.get(f"/api/v1/items/{item}/transactions", params={"per_page": 1}, headers=headers)
                    assert r.status_code == 200, r.text
                    total = r.json()["pagination"]["total"]
                    assert total >= totals.get(item, 0)  # never a read model that went back in time
                    totals[item] = total
                r = await client.get("/api/v1/locations/1", headers=headers)
                assert r.status_code == 200 and r.json()["data"]["stock_summary"], r.text
                reads += 1
                # The test client answers without ever suspending: yield, or the loop
                # never learns that the replay's thread has finished.
                await asyncio.sleep(0.01)
        replayed = await replaying
        assert replayed.returncode == 0, replayed.stderr
        assert "took the projections over from projector sessions" in replayed.stdout
        assert reads >= min_reads
        # The fenced-off projector took its projections back and caught up from the swap.
        assert await wait_for_position(pool, await head(pool), timeout=30)
    assert await live_tables(pool) == await folded_read_models(pool)
