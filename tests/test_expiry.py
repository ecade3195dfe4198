"""Reservation expiry: expired holds are released through the command path, once."""

from __future__ import annotations

import asyncio
import contextlib
from datetime import UTC, datetime, timedelta

import msgspec

from ledger import errors
from ledger.commands import Line, ReleaseStock, RemoveStock, ReserveStock
from ledger.expiry import ExpiryScheduler
from ledger.store import EventStore
from ledger.verify import verify_all
from tests.support.world import make_item, make_location, stocked


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
        assert all(report.ok for report in await verify_all(conn, org_id))


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
    from tests.support.api_client import api_client, key_for

    location = await make_location(store, org_id)
    item = await make_item(store, org_id)
    await stocked(store, org_id, item, location, 10)
    headers = await key_for(pool)
    async with api_client(database_url) as client:  # run_projector: the expiry scheduler runs too
        # A second from now once the app is up (starting it on a loaded machine once took longer).
        expires_at = (datetime.now(UTC) + timedelta(seconds=1)).isoformat()
        r = await client.post("/api/v1/jobs/42/reservations", headers=headers, json={
            "items": [{"item_id": item, "location_id": location, "quantity": 4}], "expires_at": expires_at})
        assert r.status_code == 201, r.text
        deadline = asyncio.get_running_loop().time() + 10
        while await held(pool, 42) and asyncio.get_running_loop().time() < deadline:
            await asyncio.sleep(0.1)
    assert await held(pool, 42) == 0
    [released] = await releases(pool)
    assert (released["job_id"], released["quantity"], released["reason"]) == (42, 4, "expired")


async def test_expiry_racing_a_second_scheduler_and_the_jobs_own_commands_releases_each_expired_hold_once(
    store, pool, org_id
):
    """Two schedulers and a crowd of ordinary commands, all on one item stream at once:
    the schedulers' releases lose races and go through the store's retry, and still every
    expired hold is released exactly once, and never one that was renewed first."""
    location = await make_location(store, org_id)
    item = await make_item(store, org_id)
    await stocked(store, org_id, item, location, 10_000)
    past, future = datetime.now(UTC) - timedelta(seconds=1), datetime.now(UTC) + timedelta(hours=1)

    def line(quantity: int) -> list[Line]:
        return [Line(item_id=item, location_id=location, quantity=quantity)]

    left_to_expire, renewing, giving_back, not_expiring = range(1, 13), range(101, 109), range(201, 209), range(301, 305)
    for job in (*left_to_expire, *renewing, *giving_back):
        await store.execute(org_id, ReserveStock(job_id=job, expires_at=past, lines=line(job % 100)))
    for job in not_expiring:
        await store.execute(org_id, ReserveStock(job_id=job, expires_at=future, lines=line(5)))

    # Stores of their own: commands of one store take turns in memory; these race in the database.
    stores: list[EventStore] = []

    def own_store() -> EventStore:
        stores.append(EventStore(pool))
        return stores[-1]

    async def renew(job: int) -> None:
        await own_store().execute(org_id, ReserveStock(job_id=job, expires_at=future, lines=line(1)))

    async def give_back(job: int) -> None:
        with contextlib.suppress(errors.NotFound):  # the expiry released it first
            await own_store().execute(org_id, ReleaseStock(job_id=job))

    async def remove_other_stock() -> None:
        mine = own_store()
        for _ in range(8):
            await mine.execute(org_id, RemoveStock(item_id=item, location_id=location, quantity=1))

    schedulers = [ExpiryScheduler(pool, batch=7) for _ in range(2)]

    async def expire(scheduler: ExpiryScheduler) -> None:
        for _ in range(6):
            await scheduler.run_once()

    await asyncio.gather(
        *(expire(s) for s in schedulers), *(renew(j) for j in renewing), *(give_back(j) for j in giving_back),
        *(remove_other_stock() for _ in range(6)),
    )
    while await schedulers[0].run_once():  # whatever the race left expired
        pass

    # The store's retry after a lost race ran, for the schedulers' releases too.
    assert sum(s.store.lost_races for s in schedulers) > 0
    assert sum(s.lost_races for s in stores) > 0

    # Fold the item's stream: every expired release takes a whole hold that had expired.
    rows = await pool.fetch(
        "SELECT type, data, recorded_at FROM events WHERE stream = $1 ORDER BY version", f"item-{item}")
    holds: dict[int, tuple[int, datetime | None]] = {}
    expired_releases: dict[int, int] = {}
    releases_by_job: dict[int, int] = {}
    for row in rows:
        data = msgspec.json.decode(row["data"])
        job = data.get("job_id")
        if row["type"] == "Reserve":
            held_before = holds.get(job, (0, None))[0]
            expires_at = datetime.fromisoformat(data["expires_at"]) if data.get("expires_at") else None
            holds[job] = (held_before + data["quantity"], expires_at)
        elif row["type"] == "Release":
            quantity, expires_at = holds.pop(job)
            assert data["quantity"] == quantity  # every release here gives a whole hold back
            releases_by_job[job] = releases_by_job.get(job, 0) + 1
            if data["reason"] == "expired":
                assert expires_at is not None and expires_at <= row["recorded_at"], f"job {job}: not expired"
                expired_releases[job] = expired_releases.get(job, 0) + 1
    assert {job: expired_releases.get(job) for job in left_to_expire} == dict.fromkeys(left_to_expire, 1)
    assert all(releases_by_job.get(job) == 1 for job in giving_back)  # by the job or by the expiry
    assert not any(job in releases_by_job for job in not_expiring)
    for job in renewing:  # renewed first: kept; or released first, then reserved anew
        quantity, expires_at = holds[job]
        assert expires_at == future and quantity == (job % 100 + 1 if job not in expired_releases else 1)
    assert sum(expired_releases.values()) == sum(s.released for s in schedulers)

    assert await pool.fetchval("SELECT count(*) FROM reservation_state WHERE expires_at <= now()") == 0
    assert {r["job_id"]: r["quantity"] for r in await pool.fetch("SELECT job_id, quantity FROM reservation_state")} \
        == {job: quantity for job, (quantity, _) in holds.items()}
    level = await pool.fetchrow("SELECT quantity, reserved FROM stock_state WHERE item_id = $1", item)
    assert level["reserved"] == sum(q for q, _ in holds.values()) and 0 <= level["reserved"] <= level["quantity"]
    assert level["quantity"] == 10_000 - 6 * 8
    async with pool.acquire() as conn:  # hash chains intact; the write model equals a re-fold
        assert all(report.ok for report in await verify_all(conn, org_id))


def test_an_expirys_release_decides_nothing_unless_the_hold_is_still_the_one_found_expired():
    from ledger.decide import decide
    from ledger.state import Hold, ItemState, LocationState, Snapshot, StockLevel
    from schemas import ItemAttributes, LocationAttributes, StockReleased

    found = datetime(2026, 1, 1, 12, tzinfo=UTC)

    def snapshot(hold: Hold | None) -> Snapshot:
        level = StockLevel(quantity=10, reserved=hold.quantity if hold else 0, holds={7: hold} if hold else {}, recorded=True)
        return Snapshot(
            items={1: ItemState(item_id=1, attributes=ItemAttributes(part_number="P", part_name="N"), stock={2: level})},
            locations={2: LocationState(location_id=2, attributes=LocationAttributes(location_name="L"))},
        )

    expiry = ReleaseStock(job_id=7, reason="expired", expired_at=found, lines=[Line(item_id=1, location_id=2, quantity=3)])
    [released] = decide(snapshot(Hold(quantity=3, expires_at=found)), expiry)
    assert isinstance(released, StockReleased) and (released.quantity, released.reason) == (3, "expired")
    assert decide(snapshot(Hold(quantity=4, expires_at=found + timedelta(hours=1))), expiry) == []  # renewed
    assert decide(snapshot(Hold(quantity=3, expires_at=None)), expiry) == []  # renewed without an expiry
    assert decide(snapshot(Hold(quantity=1, expires_at=found)), expiry) == []  # partly given back since
    assert decide(snapshot(None), expiry) == []  # released already
