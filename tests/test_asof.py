"""Stock as it was: `as_of` (a moment) and `at_position` (a ledger position), folded from the ledger."""

from __future__ import annotations

from datetime import timedelta

from ledger.commands import AddStock, CompleteJob, Line, ReserveStock, TransferStock, UpdateLocation
from ledger.keys import ensure_organization
from schemas import LocationAttributes
from tests.support.api_client import api_client, key_for
from tests.support.world import make_item, make_location


def levels(body: dict) -> dict[int, tuple[int, int, int]]:
    return {e["location_id"]: (e["quantity"], e["reserved_quantity"], e["available"]) for e in body["data"]}


async def test_stock_as_it_was_at_each_point_of_a_known_history(store, pool, org_id, database_url):
    main = await make_location(store, org_id, "Main Warehouse")
    van = await make_location(store, org_id, "Van 1", location_type="vehicle")
    item = await make_item(store, org_id)
    steps = [
        AddStock(item_id=item, location_id=main, quantity=100),
        TransferStock(item_id=item, from_location_id=main, to_location_id=van, quantity=30),
        ReserveStock(job_id=5, lines=[Line(item_id=item, location_id=van, quantity=12)]),
        CompleteJob(job_id=5, lines=[Line(item_id=item, location_id=van, quantity=10)]),  # releases the other 2
        AddStock(item_id=item, location_id=main, quantity=7),
    ]
    expected = [
        {main: (100, 0, 100)},
        {main: (70, 0, 70), van: (30, 0, 30)},
        {main: (70, 0, 70), van: (30, 12, 18)},
        {main: (70, 0, 70), van: (20, 0, 20)},
        {main: (77, 0, 77), van: (20, 0, 20)},
    ]
    other = await make_item(store, org_id)
    results, between = [], []
    for step in steps:
        results.append(await store.execute(org_id, step))
        # Another item's event right after: at its position, this item is as the step left it.
        between.append(await store.execute(org_id, AddStock(item_id=other, location_id=main, quantity=1)))
    # Renamed afterwards: a past stock entry shows the location's current name.
    await store.execute(org_id, UpdateLocation(location_id=van, attributes=LocationAttributes(
        location_name="Van 1 (Alex)", location_type="vehicle")))
    headers = await key_for(pool, scopes=("inventory:read",))
    url = f"/api/v1/items/{item}/stock"
    async with api_client(database_url, projector=False) as client:
        for n, (result, want) in enumerate(zip(results, expected, strict=True)):
            by_position = await client.get(url, params={"at_position": result.position}, headers=headers)
            assert by_position.status_code == 200, by_position.text
            assert levels(by_position.json()) == want
            later = await client.get(url, params={"at_position": between[n].position}, headers=headers)
            assert levels(later.json()) == want
            earlier = await client.get(url, params={"at_position": result.events[0].position - 1}, headers=headers)
            assert levels(earlier.json()) == (expected[n - 1] if n else {})
            # Every event of a command has the same recorded_at: the moment the command took effect.
            moment = result.events[-1].recorded_at
            by_time = await client.get(url, params={"as_of": moment.isoformat()}, headers=headers)
            assert levels(by_time.json()) == want
            just_before = await client.get(url, params={"as_of": (moment - timedelta(microseconds=1)).isoformat()},
                                           headers=headers)
            assert levels(just_before.json()) == (expected[n - 1] if n else {})
        entry = [e for e in by_position.json()["data"] if e["location_id"] == van][0]
        assert entry["location_name"] == "Van 1 (Alex)" and entry["location_type"] == "vehicle"
        assert entry["last_updated"].startswith(results[3].events[-1].recorded_at.isoformat()[:19])
        now = await client.get(url, headers=headers, params={"as_of": "2999-01-01T00:00:00Z"})
        assert levels(now.json()) == expected[-1]
        before_the_item = await client.get(url, params={"at_position": 1}, headers=headers)
        assert before_the_item.status_code == 200 and before_the_item.json()["data"] == []


async def test_as_of_refuses_both_parameters_naive_times_and_other_organizations(store, pool, org_id, database_url):
    location = await make_location(store, org_id)
    item = await make_item(store, org_id)
    await store.execute(org_id, AddStock(item_id=item, location_id=location, quantity=3))
    other_org = await ensure_organization(pool, "globex")
    theirs = await make_item(store, other_org)
    headers = await key_for(pool, scopes=("inventory:read",))
    url = f"/api/v1/items/{item}/stock"
    async with api_client(database_url, projector=False) as client:
        r = await client.get(url, params={"as_of": "2026-01-01T00:00:00Z", "at_position": 3}, headers=headers)
        assert r.status_code == 400 and r.json()["error"] == "validation_failed" and "not both" in r.json()["message"]
        r = await client.get(url, params={"as_of": "2026-01-01T00:00:00"}, headers=headers)
        assert r.status_code == 400 and "time zone" in r.json()["message"]
        r = await client.get(url, params={"as_of": "yesterday"}, headers=headers)
        assert r.status_code == 400
        r = await client.get(url, params={"at_position": -1}, headers=headers)
        assert r.status_code == 400
        r = await client.get(f"/api/v1/items/{theirs}/stock", params={"at_position": 10**6}, headers=headers)
        assert r.status_code == 404 and r.json()["error"] == "not_found"
        r = await client.get(url, params={"as_of": "2026-01-01T00:00:00+02:00"}, headers=headers)
        assert r.status_code == 200 and r.json()["data"] == []
        r = await client.get(url, params={"at_position": 10**6}, headers={"X-API-Key": "nope"})
        assert r.status_code == 401
