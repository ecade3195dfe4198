"""First walk through the HTTP API: commands, envelope, errors."""

from __future__ import annotations

from tests.support.api_client import api_client, key_for
from tests.support.world import make_item, make_location


async def test_stock_commands_through_http(database_url, pool, store, org_id):
    headers = await key_for(pool)
    warehouse = await make_location(store, org_id)
    van = await make_location(store, org_id, "Van 1", location_type="vehicle")
    item = await make_item(store, org_id)
    async with api_client(database_url) as client:
        r = await client.post(f"/api/v1/items/{item}/add", json={"location_id": warehouse, "quantity": 100}, headers=headers)
        assert r.status_code == 200, r.text
        body = r.json()
        assert body["success"] and body["data"]["new_quantity"] == 100 and r.headers["X-Ledger-Position"] == str(body["position"])
        assert r.headers["X-Request-ID"] == body["request_id"]
        assert r.headers["X-RateLimit-Limit"]
        r = await client.post("/api/v1/transfers", json={"item_id": item, "from_location_id": warehouse, "to_location_id": van, "quantity": 10}, headers=headers)
        assert r.status_code == 200, r.text
        assert r.json()["data"]["from_location"]["new_quantity"] == 90
        r = await client.post(f"/api/v1/items/{item}/remove", json={"location_id": warehouse, "quantity": 1000}, headers=headers)
        assert r.status_code == 400 and r.json()["error"] == "insufficient_stock" and r.json()["available_quantity"] == 90
        r = await client.post(f"/api/v1/items/{item}/adjust", content=b"{bad", headers={**headers, "content-type": "application/json"})
        assert r.status_code == 400 and r.json()["error"] == "invalid_json", r.text
        r = await client.post(f"/api/v1/items/{item}/adjust", json={"quantity": 5, "reason": "x"}, headers=headers)
        assert r.json()["error"] == "missing_location_id", r.text
        r = await client.post(f"/api/v1/items/{item}/adjust", json={"location_id": warehouse, "quantity": 2**63, "reason": "x"}, headers=headers)
        assert r.json()["error"] == "validation_failed", r.text
        r = await client.post(f"/api/v1/items/{item}/add", json={"location_id": warehouse, "quantity": 1}, headers={"X-API-Key": "nope"})
        assert r.status_code == 401 and r.json()["error"] == "unauthorized"
        r = await client.post("/api/v1/jobs/7/reservations", json={"items": [{"item_id": item, "location_id": warehouse, "quantity": 5}]}, headers=headers)
        assert r.status_code == 201, r.text
        r = await client.post("/api/v1/jobs/7/complete", headers=headers)
        assert r.status_code == 200 and r.json()["data"]["consumed"][0]["quantity"] == 5, r.text
        idem = {**headers, "Idempotency-Key": "abc"}
        r1 = await client.post(f"/api/v1/items/{item}/add", json={"location_id": warehouse, "quantity": 1}, headers=idem)
        r2 = await client.post(f"/api/v1/items/{item}/add", json={"location_id": warehouse, "quantity": 1}, headers=idem)
        assert r1.json() == r2.json() and r2.headers.get("Idempotent-Replayed") == "true"
        r3 = await client.post(f"/api/v1/items/{item}/add", json={"location_id": warehouse, "quantity": 2}, headers=idem)
        assert r3.status_code == 409 and r3.json()["error"] == "idempotency_key_reused"
        r = await client.delete("/api/v1/transfers", headers=headers)
        assert r.status_code == 405 and r.json()["error"] == "method_not_allowed"


async def test_items_and_locations_through_http(database_url, pool):
    headers = await key_for(pool)
    async with api_client(database_url) as client:
        r = await client.post("/api/v1/items", json={"part_number": "CAP-002", "part_name": "Cap", "quantity_on_hand": 5}, headers=headers)
        assert r.status_code == 400 and r.json()["error"] == "missing_location_id", r.text
        r = await client.post("/api/v1/locations", json={"location_name": "Main Warehouse"}, headers=headers)
        assert r.status_code == 201, r.text
        location = r.json()["data"]["id"]
        r = await client.post("/api/v1/items", json={"part_number": "CAP-002", "part_name": "Cap", "quantity_on_hand": 5, "cost_per_unit": 12.5}, headers=headers)
        assert r.status_code == 201, r.text
        item = r.json()["data"]
        assert item["quantity_on_hand"] == 5 and item["cost_per_unit"] == 12.5
        r = await client.post("/api/v1/items", json={"part_number": "CAP-002", "part_name": "Other"}, headers=headers)
        assert r.status_code == 409 and r.json()["error"] == "duplicate_part_number", r.text
        r = await client.post("/api/v1/items", json={"part_name": "Other"}, headers=headers)
        assert r.status_code == 400 and r.json()["error"] == "missing_part_number", r.text
        r = await client.patch(f"/api/v1/items/{item['id']}", json={"min_stock_level": 25}, headers=headers)
        assert r.status_code == 200 and r.json()["data"]["min_stock_level"] == 25 and r.json()["data"]["quantity_on_hand"] == 5, r.text
        r = await client.patch(f"/api/v1/items/{item['id']}", json={"part_name": ""}, headers=headers)
        assert r.json()["error"] == "invalid_part_name", r.text
        r = await client.patch(f"/api/v1/items/{item['id']}", json={}, headers=headers)
        assert r.json()["error"] == "no_fields", r.text
        r = await client.put(f"/api/v1/items/{item['id']}", json={"part_number": "CAP-002-V2", "part_name": "Cap v2"}, headers=headers)
        assert r.status_code == 200 and r.json()["data"]["min_stock_level"] == 0, r.text
        r = await client.delete(f"/api/v1/items/{item['id']}", headers=headers)
        assert r.status_code == 409 and r.json()["error"] == "stock_remains", r.text
        r = await client.patch(f"/api/v1/locations/{location}", json={"is_active": False}, headers=headers)
        assert r.status_code == 200 and r.json()["data"]["is_active"] is False, r.text
        other = await key_for(pool, "globex")
        r = await client.patch(f"/api/v1/items/{item['id']}", json={"min_stock_level": 1}, headers=other)
        assert r.status_code == 404 and r.json()["error"] == "not_found", r.text


async def test_reads_see_the_commands_they_follow(database_url, pool):
    headers = await key_for(pool)
    async with api_client(database_url) as client:
        location = (await client.post("/api/v1/locations", json={"location_name": "Main"}, headers=headers)).json()["data"]["id"]
        r = await client.post("/api/v1/items", json={"part_number": "FLT-001", "part_name": "Filter", "quantity_on_hand": 7, "min_stock_level": 10}, headers=headers)
        item = r.json()["data"]["id"]
        position = r.headers["X-Ledger-Position"]
        r = await client.get(f"/api/v1/items/{item}", headers={**headers, "X-Ledger-Min-Position": position})
        assert r.status_code == 200, r.text
        assert r.json()["data"]["item"]["quantity_on_hand"] == 7
        assert r.json()["data"]["stock"][0]["location_id"] == location
        r = await client.get(f"/api/v1/low-stock?min_position={position}", headers=headers)
        assert [i["id"] for i in r.json()["data"]] == [item]
        r = await client.get(f"/api/v1/inventory?id={item}&sub=transactions&min_position={position}", headers=headers)
        assert r.status_code == 200 and r.json()["data"][0]["transaction_type"] == "Add" and r.json()["item_id"] == item, r.text
        r = await client.get("/readyz")
        assert r.status_code == 200 and r.json()["checks"]["projections"] == "ok", r.text


async def test_readyz_reports_nats_and_the_relay(database_url, private_nats):
    import asyncio

    async with api_client(database_url, nats_url=private_nats.url) as client:
        for _ in range(50):
            r = await client.get("/readyz")
            if r.json()["checks"].get("nats") == "ok":
                break
            await asyncio.sleep(0.1)
        assert r.status_code == 200 and r.json()["checks"]["nats"] == "ok", r.text
        private_nats.stop()
        for _ in range(50):
            r = await client.get("/readyz")
            if r.json()["checks"]["nats"] != "ok":
                break
            await asyncio.sleep(0.1)
        # Commands need no NATS: the API stays in service, and says what is wrong.
        assert r.status_code == 200 and r.json()["status"] == "degraded", r.text
        assert r.json()["checks"]["nats"] == "unreachable", r.text
