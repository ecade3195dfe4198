"""The auditor's HTTP surface: the ledger feed, an item's raw stream, and one stream's audit."""

from __future__ import annotations

import asyncio
import contextlib
import random
import threading

from ledger.commands import AddStock, RemoveStock
from ledger.db import create_pool
from ledger.keys import ensure_organization
from ledger.store import EventStore
from tests.support.api_client import api_client, key_for
from tests.support.world import make_item, make_location, stocked


async def ledger_positions(pool, org_id: int) -> list[int]:
    return [r["position"] for r in await pool.fetch("SELECT position FROM events WHERE org_id = $1 ORDER BY position", org_id)]


async def page_through(client, headers, *, after: str | None = None, limit: int = 7, **filters) -> tuple[list[dict], str]:
    """Every page from `after` until has_next_page is false; the events and the last cursor."""
    events = []
    while True:
        params = {"limit": limit, **filters, **({"after": after} if after is not None else {})}
        r = await client.get("/api/v1/events", params=params, headers=headers)
        assert r.status_code == 200, r.text
        body = r.json()
        events += body["data"]
        after = body["page_info"]["next_cursor"]
        if not body["page_info"]["has_next_page"]:
            return events, after


@contextlib.contextmanager
def writers_elsewhere(database_url: str, places: dict[int, tuple[int, list[int]]], writers: int = 6):
    """Writers appending all along, on an event loop of their own: the test client blocks
    the test's loop while a request runs, which would freeze writers mid-transaction."""
    stop = threading.Event()

    async def write() -> None:
        pool = await create_pool(database_url, min_size=1, max_size=writers)
        store = EventStore(pool)

        async def writer(seed: int) -> None:
            rng = random.Random(seed)
            while not stop.is_set():
                org = rng.choice(list(places))
                location, items = places[org]
                await store.execute(org, AddStock(item_id=rng.choice(items), location_id=location, quantity=rng.randint(1, 5)))
                await asyncio.sleep(rng.random() * 0.003)

        try:
            await asyncio.gather(*(writer(seed) for seed in range(writers)))
        finally:
            await pool.close()

    thread = threading.Thread(target=asyncio.run, args=(write(),))
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()


async def test_the_feed_pages_through_every_event_once_in_order_while_writers_append(store, pool, org_id, database_url):
    other_org = await ensure_organization(pool, "globex")
    places = {}
    for org in (org_id, other_org):
        location = await make_location(store, org)
        places[org] = (location, [await make_item(store, org) for _ in range(4)])
    headers = await key_for(pool, "acme", scopes=("events:read",))
    seen, cursor = [], None
    async with api_client(database_url, projector=False) as client:
        with writers_elsewhere(database_url, places):
            for _ in range(15):  # tail the feed while the ledger grows under it
                page, cursor = await page_through(client, headers, after=cursor)
                seen += page
                await asyncio.sleep(0.05)
        page, cursor = await page_through(client, headers, after=cursor)
        seen += page
    positions = [e["position"] for e in seen]
    assert len(positions) > 100
    assert positions == await ledger_positions(pool, org_id)  # all of ours, each once, in order
    assert {e["org_id"] for e in seen} == {org_id}  # never another organization's


async def test_an_event_reads_as_its_envelope_and_after_accepts_a_position(store, pool, org_id, database_url):
    location = await make_location(store, org_id)
    item = await make_item(store, org_id)
    await stocked(store, org_id, item, location, 10)
    removed = await store.execute(org_id, RemoveStock(item_id=item, location_id=location, quantity=3))
    headers = await key_for(pool, scopes=("events:read",))
    async with api_client(database_url, projector=False) as client:
        r = await client.get("/api/v1/events", params={"after": removed.position - 1}, headers=headers)
        assert r.status_code == 200, r.text
        [event] = r.json()["data"]
        recorded = removed.events[0]
        assert event == {
            "event_id": str(recorded.event_id), "position": recorded.position, "org_id": org_id,
            "stream": f"item-{item}", "version": recorded.version, "type": "Remove",
            "data": {"type": "Remove", "item_id": item, "location_id": location, "quantity": 3, "notes": None},
            "metadata": {"request_id": None, "key_id": None, "user_name": None, "idempotency_key": None,
                         "correlation_id": None, "causation_id": None},
            "recorded_at": event["recorded_at"], "prev_hash": recorded.prev_hash, "hash": recorded.hash,
        }
        assert r.json()["page_info"]["has_next_page"] is False

        # A cursor is opaque but stable: the same cursor gives the same page.
        first = (await client.get("/api/v1/events", params={"limit": 2}, headers=headers)).json()
        cursor = first["page_info"]["next_cursor"]
        assert not cursor.isdigit()
        again = [(await client.get("/api/v1/events", params={"after": cursor}, headers=headers)).json()["data"]
                 for _ in range(2)]
        assert again[0] == again[1] and again[0][0]["position"] > first["data"][-1]["position"]


async def test_the_feed_filters_by_type_and_item(store, pool, org_id, database_url):
    location = await make_location(store, org_id)
    item, other = await make_item(store, org_id), await make_item(store, org_id)
    for n in range(5):
        await stocked(store, org_id, item, location, n + 1)
        await stocked(store, org_id, other, location, 1)
    await store.execute(org_id, RemoveStock(item_id=item, location_id=location, quantity=1))
    headers = await key_for(pool, scopes=("events:read",))
    async with api_client(database_url, projector=False) as client:
        adds, _ = await page_through(client, headers, type="Add", item_id=item, limit=2)
        assert [e["data"]["quantity"] for e in adds] == [1, 2, 3, 4, 5]
        mine, _ = await page_through(client, headers, item_id=item)
        assert [e["type"] for e in mine] == ["ItemCreated", *["Add"] * 5, "Remove"]
        both, _ = await page_through(client, headers, type="Remove,ItemCreated")
        assert sorted(e["type"] for e in both) == ["ItemCreated", "ItemCreated", "Remove"]

        r = await client.get("/api/v1/events", params={"type": "Teleport"}, headers=headers)
        assert r.status_code == 400 and r.json()["error"] == "validation_failed"
        r = await client.get("/api/v1/events", params={"after": "not-a-cursor!"}, headers=headers)
        assert r.status_code == 400 and r.json()["error"] == "invalid_cursor"
        for limit in (0, 1001):
            r = await client.get("/api/v1/events", params={"limit": limit}, headers=headers)
            assert r.status_code == 400 and r.json()["error"] == "validation_failed", r.text
        reader = await key_for(pool, scopes=("inventory:read",))
        r = await client.get("/api/v1/events", headers=reader)
        assert r.status_code == 403 and r.json()["error"] == "insufficient_scope"


async def test_an_items_stream_reads_in_version_order_and_another_orgs_is_not_found(store, pool, org_id, database_url):
    location = await make_location(store, org_id)
    item = await make_item(store, org_id)
    for n in range(5):
        await stocked(store, org_id, item, location, n + 1)
    other_org = await ensure_organization(pool, "globex")
    theirs = await make_item(store, other_org)
    headers = await key_for(pool, scopes=("events:read",))
    async with api_client(database_url, projector=False) as client:
        versions, after = [], None
        while True:
            r = await client.get(f"/api/v1/items/{item}/events", params={"limit": 4, **({"after": after} if after else {})},
                                 headers=headers)
            assert r.status_code == 200, r.text
            versions += [e["version"] for e in r.json()["data"]]
            after = r.json()["page_info"]["next_cursor"]
            if not r.json()["page_info"]["has_next_page"]:
                break
        assert versions == [1, 2, 3, 4, 5, 6]
        r = await client.get(f"/api/v1/items/{theirs}/events", headers=headers)
        assert r.status_code == 404 and r.json()["error"] == "not_found"
        r = await client.get("/api/v1/items/999999/events", headers=headers)
        assert r.status_code == 404


async def test_audit_verify_reports_a_sound_stream_and_names_an_edited_event(store, pool, org_id, database_url):
    location = await make_location(store, org_id)
    item = await make_item(store, org_id)
    await stocked(store, org_id, item, location, 10)
    other_org = await ensure_organization(pool, "globex")
    theirs = await make_item(store, other_org)
    headers = await key_for(pool, scopes=("events:read",))
    async with api_client(database_url, projector=False) as client:
        r = await client.get("/api/v1/audit/verify", params={"item_id": item}, headers=headers)
        assert r.status_code == 200, r.text
        assert r.json()["data"] == {"stream": f"item-{item}", "ok": True, "events": 2, "problems": []}
        r = await client.get("/api/v1/audit/verify", params={"location_id": location}, headers=headers)
        assert r.json()["data"]["ok"] is True

        await pool.execute("ALTER TABLE events DISABLE TRIGGER events_append_only")
        await pool.execute("UPDATE events SET data = jsonb_set(data, '{quantity}', '11') WHERE stream = $1 AND version = 2",
                           f"item-{item}")
        r = await client.get("/api/v1/audit/verify", params={"item_id": item}, headers=headers)
        report = r.json()["data"]
        assert report["ok"] is False
        assert any("v2" in p and "edited" in p for p in report["problems"]), report
        assert any("quantity 10" in p and "quantity 11" in p for p in report["problems"]), report

        r = await client.get("/api/v1/audit/verify", params={"item_id": theirs}, headers=headers)
        assert r.status_code == 404
        r = await client.get("/api/v1/audit/verify", headers=headers)
        assert r.status_code == 400
