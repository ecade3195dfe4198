"""Reservation expiry: expired holds are released through the command path, once."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import msgspec

from ledger.audit import audit_all
from ledger.commands import Line, ReserveStock
from ledger.expiry import ExpiryScheduler
from tests.world import make_item, make_location, stocked


async def releases(pool) -> list[dict]:
    rows = await pool.fetch("SELECT data, metadata FROM events WHERE type = 'Release' ORDER BY position")
    return [{**msgspec.json.decode(r["data"]), "user_name": msgspec.json.decode(r["metadata"])["user_name"]} for r in rows]


async def held(pool, job_id: int) -> int:
    return await pool.fetchval("SELECT coalesce(sum(quantity), 0) FROM reservation_state WHERE job_id = $1", job_id)


async def test_a_hold_is_released_when_it_expires_and_other_holds_stay(store, pool, org_id):
    location = await make_location(store, org_id)
    item = await make_item(store, org_id)
    await stocked(store, org_id, item, location, 100)
    soon = datetime.now(UTC) + timedelta(seconds=1)
    later = datetime.now(UTC) + timedelta(hours=2)
    await store.execute(org_id, ReserveStock(job_id=1, expires_at=soon, lines=[Line(item_id=item, location_id=location, quantity=7)]))
    await store.execute(org_id, ReserveStock(job_id=2, expires_at=later, lines=[Line(item_id=item, location_id=location, quantity=5)]))
    await store.execute(org_id, ReserveStock(job_id=3, lines=[Line(item_id=item, location_id=location, quantity=3)]))

    scheduler = ExpiryScheduler(pool, interval=0.05)
    scheduler.start()
    try:
        assert await held(pool, 1) == 7  # not before its time
        deadline = asyncio.get_running_loop().time() + 5
        while await held(pool, 1) and asyncio.get_running_loop().time() < deadline:
            await asyncio.sleep(0.05)
    finally:
        await scheduler.stop()
    assert datetime.now(UTC) >= soon
    assert await held(pool, 1) == 0 and await held(pool, 2) == 5 and await held(pool, 3) == 3
    [released] = await releases(pool)
    assert released["job_id"] == 1 and released["quantity"] == 7 and released["reason"] == "expired"
    assert released["user_name"] == "system"
    assert await pool.fetchval("SELECT reserved FROM stock_state WHERE item_id = $1", item) == 8
    async with pool.acquire() as conn:
        assert all(report.ok for report in await audit_all(conn, org_id))


async def test_two_schedulers_at_once_release_each_expired_hold_once(store, pool, org_id):
    location = await make_location(store, org_id)
    items = [await make_item(store, org_id) for _ in range(6)]
    past = datetime.now(UTC) - timedelta(seconds=1)  # the store takes any expiry; the API refuses past ones
    for item in items:
        await stocked(store, org_id, item, location, 50)
        for job in (1, 2, 3):
            await store.execute(org_id, ReserveStock(job_id=job, expires_at=past, lines=[
                Line(item_id=item, location_id=location, quantity=job)]))

    schedulers = [ExpiryScheduler(pool, batch=5) for _ in range(4)]  # small batches: they overlap
    for _ in range(10):
        await asyncio.gather(*(s.run_once() for s in schedulers))
    assert sum(s.released for s in schedulers) == len(items) * 3
    assert sum(1 for s in schedulers if s.released) > 1  # they really shared the work

    released = await releases(pool)
    assert sorted((r["item_id"], r["job_id"], r["quantity"]) for r in released) == sorted(
        (item, job, job) for item in items for job in (1, 2, 3))
    assert await pool.fetchval("SELECT count(*) FROM reservation_state") == 0
    assert await pool.fetchval("SELECT sum(reserved) FROM stock_state") == 0


async def test_a_hold_renewed_before_it_expired_is_not_released(store, pool, org_id):
    location = await make_location(store, org_id)
    item = await make_item(store, org_id)
    await stocked(store, org_id, item, location, 20)
    line = [Line(item_id=item, location_id=location, quantity=2)]
    await store.execute(org_id, ReserveStock(job_id=9, expires_at=datetime.now(UTC) + timedelta(seconds=0.3), lines=line))
    # Reserving more renews the hold's expiry (README: "Reservations").
    await store.execute(org_id, ReserveStock(job_id=9, expires_at=datetime.now(UTC) + timedelta(hours=1), lines=line))
    await asyncio.sleep(0.4)
    assert await ExpiryScheduler(pool).run_once() == 0
    assert await held(pool, 9) == 4 and await releases(pool) == []


async def test_an_api_process_that_projects_also_expires_holds(store, pool, org_id, database_url):
    from tests.api_client import api_client, key_for

    location = await make_location(store, org_id)
    item = await make_item(store, org_id)
    await stocked(store, org_id, item, location, 10)
    headers = await key_for(pool)
    expires_at = (datetime.now(UTC) + timedelta(seconds=1)).isoformat()
    async with api_client(database_url) as client:  # run_projector: the expiry scheduler runs too
        r = await client.post("/api/v1/jobs/42/reservations", headers=headers, json={
            "items": [{"item_id": item, "location_id": location, "quantity": 4}], "expires_at": expires_at})
        assert r.status_code == 201, r.text
        deadline = asyncio.get_running_loop().time() + 10
        while await held(pool, 42) and asyncio.get_running_loop().time() < deadline:
            await asyncio.sleep(0.1)
    assert await held(pool, 42) == 0
    [released] = await releases(pool)
    assert (released["job_id"], released["quantity"], released["reason"]) == (42, 4, "expired")
