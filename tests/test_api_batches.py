"""POST /api/v1/batches (DESIGN 10): atomic and line-by-line batches, JSON and CSV, bad input."""

from __future__ import annotations

import pytest

from tests.support.api_client import api_client, key_for


@pytest.fixture
async def api(database_url, pool):
    async with api_client(database_url) as client:
        headers = await key_for(pool)
        client.headers.update(headers)
        r = await client.post("/api/v1/locations", json={"location_name": "Main"})
        main = r.json()["data"]["id"]
        r = await client.post("/api/v1/locations", json={"location_name": "Van 1"})
        van = r.json()["data"]["id"]
        r = await client.post("/api/v1/items", json={"part_number": "FLT-1", "part_name": "Filter",
                                                    "quantity_on_hand": 3, "location_id": main})
        item = r.json()["data"]["id"]
        yield client, item, main, van


async def _stock(client, item: int) -> dict[int, int]:
    r = await client.get(f"/api/v1/items/{item}/stock")
    return {s["location_id"]: s["quantity"] for s in r.json()["data"]}


async def _events(pool) -> int:
    return await pool.fetchval("SELECT count(*) FROM events")


async def test_an_atomic_batch_records_every_line_in_order_on_the_running_state(api, pool):
    client, item, main, van = api
    r = await client.post("/api/v1/batches", json={"lines": [
        {"ref": "r1", "kind": "add", "item_id": item, "location_id": main, "quantity": 5, "notes": "PO 77"},
        {"kind": "remove", "part_number": "FLT-1", "location_id": main, "quantity": 7},
        {"kind": "transfer", "item_id": item, "from_location_id": main, "to_location_id": van, "quantity": 1},
        {"kind": "reserve", "job_id": 9, "item_id": item, "location_id": van, "quantity": 1},
        {"kind": "count", "item_id": item, "location_id": main, "quantity": 4, "reason": "cycle count"},
    ]})
    assert r.status_code == 200, r.text
    body = r.json()
    results = body["data"]["results"]
    assert [x["status"] for x in results] == ["recorded"] * 5
    assert results[0]["ref"] == "r1" and results[0]["new_quantity"] == 8
    assert results[1]["new_quantity"] == 1  # the earlier line's stock was there to remove
    assert results[2]["to_location"]["new_quantity"] == 1
    assert results[3]["reserved"] == [{"item_id": item, "location_id": van, "quantity": 1}]
    assert results[4]["change"] == 4 and results[4]["previous_quantity"] == 0
    positions = [x["position"] for x in results]
    assert positions == sorted(positions) and body["position"] == positions[-1]
    assert r.headers["X-Ledger-Position"] == str(positions[-1])
    assert body["data"]["recorded"] == 5 and body["data"]["refused"] == 0
    assert await _stock(client, item) == {main: 4, van: 1}


async def test_an_atomic_batch_with_a_refused_line_records_nothing_and_names_every_refused_line(api, pool):
    client, item, main, van = api
    before = await _events(pool)
    r = await client.post("/api/v1/batches", json={"atomic": True, "lines": [
        {"kind": "add", "item_id": item, "location_id": main, "quantity": 1},
        {"ref": "bad", "kind": "remove", "item_id": item, "location_id": main, "quantity": 50},
        {"kind": "remove", "part_number": "NOPE", "location_id": main, "quantity": 1},
    ]})
    assert r.status_code == 400, r.text
    body = r.json()
    assert body["error"] == "insufficient_stock"
    assert [(d["index"], d["error"]) for d in body["details"]] == [(1, "insufficient_stock"), (2, "item_not_found")]
    assert body["details"][0]["ref"] == "bad" and body["details"][0]["available_quantity"] == 4
    assert await _events(pool) == before
    assert await _stock(client, item) == {main: 3}


async def test_a_line_by_line_batch_records_what_it_can_and_refuses_the_rest_alone(api, pool):
    client, item, main, van = api
    r = await client.post("/api/v1/batches", json={"atomic": False, "lines": [
        {"kind": "remove", "item_id": item, "location_id": main, "quantity": 50},
        {"kind": "add", "item_id": item, "location_id": main, "quantity": 2},
        {"kind": "release", "job_id": 77},
    ]})
    assert r.status_code == 200, r.text
    data = r.json()["data"]
    assert [x["status"] for x in data["results"]] == ["refused", "recorded", "refused"]
    assert data["results"][0]["error"] == "insufficient_stock" and data["results"][0]["available_quantity"] == 3
    assert data["recorded"] == 1 and data["refused"] == 2
    assert await _stock(client, item) == {main: 5}


async def test_a_csv_batch_names_the_file_line_of_every_fault(api, pool):
    client, item, main, van = api
    good = f"kind,item_id,location_id,quantity,ref\nadd,{item},{main},2,a\nremove,{item},{main},1,b\n"
    r = await client.post("/api/v1/batches", content=good.encode(), headers={"Content-Type": "text/csv"})
    assert r.status_code == 200, r.text
    assert [x["ref"] for x in r.json()["data"]["results"]] == ["a", "b"]
    assert await _stock(client, item) == {main: 4}

    bad = f"kind,item_id,location_id,quantity\nadd,{item},{main},2\nfly,{item},{main},1\nadd,{item},{main},x\n"
    r = await client.post("/api/v1/batches", content=bad.encode(), headers={"Content-Type": "text/csv"})
    assert r.status_code == 400 and r.json()["error"] == "validation_failed"
    assert [(d["index"], d["line"]) for d in r.json()["details"]] == [(1, 3), (2, 4)]

    refused = f"kind,item_id,location_id,quantity\nadd,{item},{main},2\nremove,{item},{main},99\n"
    r = await client.post("/api/v1/batches", content=refused.encode(), headers={"Content-Type": "text/csv"})
    assert r.status_code == 400 and r.json()["details"][0]["line"] == 3
    r = await client.post("/api/v1/batches?atomic=false", content=refused.encode(), headers={"Content-Type": "text/csv"})
    assert r.status_code == 200 and r.json()["data"]["recorded"] == 1
    assert await _stock(client, item) == {main: 6}


@pytest.mark.parametrize(("body", "content_type", "status", "error"), [
    (b'{"lines": []}', "application/json", 400, "validation_failed"),
    (b'{"lines": [{"kind": "teleport", "item_id": 1}]}', "application/json", 400, "validation_failed"),
    (b'{"lines": [{"kind": "add", "item_id": 1, "location_id": 1}]}', "application/json", 400, "validation_failed"),
    (b'{"lines": [{"kind": "add", "item_id": "1", "location_id": 1, "quantity": 1}]}', "application/json", 400, "validation_failed"),
    (b'{"lines": {"kind": "add"}}', "application/json", 400, "validation_failed"),
    (b'{"lines": [], "extra": 1}', "application/json", 400, "validation_failed"),
    (b"kind,colour\nadd,red\n", "text/csv", 400, "validation_failed"),
    (b"kind,quantity\nadd,\xff\n", "text/csv", 400, "validation_failed"),
    (b"kind,item_id\n", "text/csv", 400, "validation_failed"),
    (b"{", "application/json", 400, "invalid_json"),
])
async def test_bad_batches_are_refused_whole_with_their_code(api, pool, body, content_type, status, error):
    client, *_ = api
    before = await _events(pool)
    r = await client.post("/api/v1/batches", content=body, headers={"Content-Type": content_type})
    assert (r.status_code, r.json()["error"]) == (status, error), r.text
    assert await _events(pool) == before


async def test_more_than_a_thousand_lines_is_batch_too_large(api):
    client, item, main, _ = api
    lines = [{"kind": "add", "item_id": item, "location_id": main, "quantity": 1}] * 1001
    r = await client.post("/api/v1/batches", json={"lines": lines})
    assert (r.status_code, r.json()["error"]) == (413, "batch_too_large")


async def test_a_thousand_lines_are_recorded_in_one_request(api, pool):
    client, item, main, _ = api
    lines = [{"kind": "add", "item_id": item, "location_id": main, "quantity": 1}] * 1000
    r = await client.post("/api/v1/batches", json={"lines": lines})
    assert r.status_code == 200, r.text
    assert r.json()["data"]["recorded"] == 1000
    assert await _stock(client, item) == {main: 1003}


async def test_each_line_needs_its_own_scope(api, pool):
    client, item, main, van = api
    write_only = await key_for(pool, scopes=("inventory:write",))
    r = await client.post("/api/v1/batches", headers=write_only, json={"lines": [
        {"kind": "add", "item_id": item, "location_id": main, "quantity": 1},
        {"ref": "t", "kind": "transfer", "item_id": item, "from_location_id": main, "to_location_id": van, "quantity": 1},
    ]})
    assert (r.status_code, r.json()["error"]) == (403, "insufficient_scope")
    assert [(d["index"], d["ref"]) for d in r.json()["details"]] == [(1, "t")]
    read_only = await key_for(pool, scopes=("inventory:read",))
    r = await client.post("/api/v1/batches", headers=read_only, json={"lines": [
        {"kind": "add", "item_id": item, "location_id": main, "quantity": 1}]})
    assert r.status_code == 403


async def test_another_organizations_items_are_not_found(api, pool):
    client, item, main, _ = api
    other = await key_for(pool, org="other")
    r = await client.post("/api/v1/batches", headers=other, json={"lines": [
        {"kind": "add", "item_id": item, "location_id": main, "quantity": 1}]})
    assert r.status_code == 400 and r.json()["details"][0]["error"] in ("not_found", "item_not_found", "location_not_found")
    assert await _stock(client, item) == {main: 3}


async def test_an_idempotency_key_covers_the_whole_batch(api, pool):
    client, item, main, _ = api
    body = {"lines": [{"kind": "add", "item_id": item, "location_id": main, "quantity": 2}] * 3}
    first = await client.post("/api/v1/batches", json=body, headers={"Idempotency-Key": "sync-1"})
    again = await client.post("/api/v1/batches", json=body, headers={"Idempotency-Key": "sync-1"})
    assert first.status_code == again.status_code == 200
    assert again.headers.get("Idempotent-Replayed") == "true"
    assert again.json()["data"] == first.json()["data"]
    assert await _stock(client, item) == {main: 9}
    # The stored response gone (a crash before it was kept): the ledger still finds the batch.
    await pool.execute("DELETE FROM idempotency_records")
    third = await client.post("/api/v1/batches", json=body, headers={"Idempotency-Key": "sync-1"})
    assert third.status_code == 200
    assert [x["position"] for x in third.json()["data"]["results"]] == [x["position"] for x in first.json()["data"]["results"]]
    assert await _stock(client, item) == {main: 9}


async def test_a_batchs_events_reach_the_read_models_like_any_others(api, pool):
    client, item, main, van = api
    r = await client.post("/api/v1/batches", json={"lines": [
        {"kind": "add", "item_id": item, "location_id": main, "quantity": 5},
        {"kind": "transfer", "item_id": item, "from_location_id": main, "to_location_id": van, "quantity": 2},
    ]})
    assert r.status_code == 200
    r = await client.get(f"/api/v1/items/{item}/transactions")
    types = [t["transaction_type"] for t in r.json()["data"]]
    assert sorted(types) == sorted(["Add", "Add", "Transfer_out", "Transfer_in"])


async def test_a_stored_batch_answer_is_replayed_only_to_a_key_allowed_every_line(api, pool):
    client, item, main, van = api
    body = {"lines": [{"kind": "transfer", "item_id": item, "from_location_id": main, "to_location_id": van, "quantity": 1}]}
    first = await client.post("/api/v1/batches", json=body, headers={"Idempotency-Key": "t-1"})
    assert first.status_code == 200
    write_only = await key_for(pool, scopes=("inventory:write",))
    again = await client.post("/api/v1/batches", json=body, headers={**write_only, "Idempotency-Key": "t-1"})
    assert (again.status_code, again.json()["error"]) == (403, "insufficient_scope")
    assert "Idempotent-Replayed" not in again.headers


async def test_each_kind_of_line_records_its_own_command(api, pool):
    client, item, main, van = api
    r = await client.post("/api/v1/batches", json={"lines": [
        {"kind": "add", "item_id": item, "location_id": main, "quantity": 10},
        {"kind": "remove", "item_id": item, "location_id": main, "quantity": 1},
        {"kind": "adjust", "item_id": item, "location_id": main, "quantity": -2, "reason": "damaged"},
        {"kind": "count", "item_id": item, "location_id": main, "quantity": 9, "reason": "cycle count"},
        {"kind": "reserve", "job_id": 5, "item_id": item, "location_id": main, "quantity": 3},
        {"kind": "release", "job_id": 5, "item_id": item, "location_id": main, "quantity": 1},
        {"kind": "complete", "job_id": 5},
    ]})
    assert r.status_code == 200, r.text
    types = await pool.fetch("SELECT type FROM events WHERE stream = $1 ORDER BY position", f"item-{item}")
    assert [t["type"] for t in types][-7:] == ["Add", "Remove", "Adjust", "Adjust", "Reserve", "Release", "Job_complete"]
    assert r.json()["data"]["results"][6]["consumed"] == [{"item_id": item, "location_id": main, "quantity": 2}]
