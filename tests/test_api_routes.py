"""Every route of the resource API (`/api/v1/...`), with each documented refusal, and the
cross-cutting contract: idempotency, If-Match, read-after-write, organizations, rate
limits, the two ways to present a key, IP allow-lists and revocation (DESIGN 6).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from datetime import UTC, datetime, timedelta

from litestar.testing import AsyncTestClient

from api.app import create_app
from api.settings import ApiSettings
from tests.support.api import (
    LOCATION_FIELDS,
    STOCK_ENTRY_FIELDS,
    TRANSACTION_FIELDS,
    Api,
    assert_envelope,
    assert_error,
    assert_item,
    assert_pagination,
    assert_shape,
    event_count,
)
from tests.support.api_client import api_client, key_for

V1 = "/api/v1"


async def stocked_world(api: Api) -> dict[str, int]:
    ids = {
        "warehouse": await api.location("Main Warehouse"),
        "van": await api.location("Van 1", location_type="vehicle"),
    }
    ids["item"] = await api.item("FLT-001", "Filter", category="Filters", min_stock_level=5)
    await api.add(ids["item"], ids["warehouse"], 100)
    return ids


# --- items ----------------------------------------------------------------------------


async def test_item_routes(database_url, pool):
    async with api_client(database_url) as client:
        api = Api(client, await key_for(pool))
        # An initial quantity needs a location to put it at.
        r = await api.post(f"{V1}/items", {"part_number": "A-1", "part_name": "A", "quantity_on_hand": 5})
        assert_error(r, 400, "missing_location_id")
        warehouse = await api.location("Main Warehouse")
        van = await api.location("Van 1", location_type="vehicle")

        r = await api.post(f"{V1}/items", {"part_number": "A-1", "part_name": "A", "quantity_on_hand": 5, "location_id": van})
        body = assert_envelope(r, 201)
        assert_item(body["data"])
        assert body["data"]["quantity_on_hand"] == 5 and body["message"] == "Item created"
        assert r.headers["X-Ledger-Position"] == str(body["position"])
        item = body["data"]["id"]
        r = await api.post(f"{V1}/items", {"part_number": "B-1", "part_name": "B", "quantity_on_hand": 7})
        second = assert_envelope(r, 201)["data"]["id"]

        r = await api.get(f"{V1}/items/{item}")
        data = assert_envelope(r)["data"]
        assert_item(data["item"])
        assert [(s["location_id"], s["quantity"]) for s in data["stock"]] == [(van, 5)]
        r = await api.get(f"{V1}/items/{second}/stock")
        (entry,) = assert_envelope(r)["data"]
        assert_shape(entry, STOCK_ENTRY_FIELDS)
        assert (entry["location_id"], entry["quantity"]) == (warehouse, 7)  # the first active location

        assert_error(await api.post(f"{V1}/items", {"part_name": "x"}), 400, "missing_part_number")
        assert_error(await api.post(f"{V1}/items", {"part_number": "C-1"}), 400, "missing_part_name")
        assert_error(await api.post(f"{V1}/items", {"part_number": "A-1", "part_name": "x"}), 409, "duplicate_part_number")
        r = await api.post(f"{V1}/items", {"part_number": "C-1", "part_name": "C", "quantity_on_hand": 1, "location_id": 999})
        assert_error(r, 400, "location_not_found")
        assert_error(await api.post(f"{V1}/items", {"part_number": "C-1", "part_name": "C", "bogus": 1}), 400, "validation_failed")

        # List, filter, search, paginate.
        await api.item("FLT-9", "Air filter", category="Filters")
        r = await api.get(f"{V1}/items", params={"category": "Filters"})
        body = assert_envelope(r)
        assert_pagination(body, page=1, per_page=50, total=1)
        assert [i["part_number"] for i in body["data"]] == ["FLT-9"]
        r = await api.get(f"{V1}/items", params={"search": "b-", "per_page": 1})
        assert [i["part_number"] for i in assert_envelope(r)["data"]] == ["B-1"]
        r = await api.get(f"{V1}/items", params={"per_page": 2, "page": 2})
        body = assert_envelope(r)
        assert_pagination(body, page=2, per_page=2, total=3)
        assert len(body["data"]) == 1
        r = await api.get(f"{V1}/items", params={"per_page": 2, "page": 7})
        body = assert_envelope(r)
        assert body["data"] == [] and body["pagination"] == {"page": 7, "per_page": 2, "total": 3, "total_pages": 2}
        r = await api.get(f"{V1}/items", params={"search": "%"})
        assert assert_envelope(r)["data"] == []  # a literal %, not a wildcard

        # PUT, PATCH and their refusals; quantity_on_hand is read-only.
        r = await api.put(f"{V1}/items/{item}", {"part_number": "A-2", "part_name": "A2", "quantity_on_hand": 0})
        body = assert_envelope(r)
        assert body["data"]["part_number"] == "A-2" and body["data"]["quantity_on_hand"] == 5
        assert_error(await api.put(f"{V1}/items/{item}", {"part_number": "B-1", "part_name": "x"}), 409, "duplicate_part_number")
        assert_error(await api.put(f"{V1}/items/999", {"part_number": "Z", "part_name": "x"}), 404, "not_found")
        assert_error(await api.put(f"{V1}/items/{item}", {"part_name": "x"}), 400, "missing_part_number")
        assert_error(await api.put(f"{V1}/items/{item}", {"part_number": "Z", "part_name": "x", "nope": 1}), 400, "validation_failed")
        r = await api.patch(f"{V1}/items/{item}", {"category": "Caps", "cost_per_unit": 1.25})
        body = assert_envelope(r)
        assert (body["data"]["category"], body["data"]["cost_per_unit"], body["data"]["part_name"]) == ("Caps", 1.25, "A2")
        assert_error(await api.patch(f"{V1}/items/{item}", {}), 400, "no_fields")
        assert_error(await api.patch(f"{V1}/items/{item}", {"part_number": ""}), 400, "invalid_part_number")
        assert_error(await api.patch(f"{V1}/items/{item}", {"part_number": "B-1"}), 409, "duplicate_part_number")
        assert_error(await api.patch(f"{V1}/items/999", {"category": "x"}), 404, "not_found")
        assert_error(await api.patch(f"{V1}/items/{item}", {"colour": "red"}), 400, "validation_failed")

        # Archive: refused while stock remains; then gone, its part number free again.
        assert_error(await api.delete(f"{V1}/items/{item}"), 409, "stock_remains")
        await api.post(f"{V1}/items/{item}/remove", {"location_id": van, "quantity": 5})
        r = await api.delete(f"{V1}/items/{item}")
        assert assert_envelope(r)["data"] == {"id": item, "deleted": True}
        assert_error(await api.get(f"{V1}/items/{item}"), 404, "not_found")
        assert_error(await api.delete(f"{V1}/items/{item}"), 404, "not_found")
        assert_error(await api.delete(f"{V1}/items/999"), 404, "not_found")
        assert_error(await api.post(f"{V1}/items/{item}/add", {"location_id": van, "quantity": 1}), 404, "not_found")
        r = await api.get(f"{V1}/items")
        assert item not in [i["id"] for i in assert_envelope(r)["data"]]
        assert (await api.item("A-2", "reused")) != item

        # Unknown ids on every item read.
        for path in ("/items/999", "/items/999/stock", "/items/999/transactions"):
            assert_error(await api.get(V1 + path), 404, "not_found")


async def test_stock_routes(database_url, pool):
    async with api_client(database_url) as client:
        api = Api(client, await key_for(pool))
        ids = await stocked_world(api)
        item, van = ids["item"], ids["van"]
        stock = f"{V1}/items/{item}"

        r = await api.post(f"{stock}/add", {"location_id": van, "quantity": 10, "notes": "delivery"})
        body = assert_envelope(r)
        assert body["data"] == {"item_id": item, "location_id": van, "new_quantity": 10, "reserved_quantity": 0, "available": 10}
        assert body["message"] == "Stock added"
        r = await api.post(f"{stock}/remove", {"location_id": van, "quantity": 4})
        assert assert_envelope(r)["data"]["new_quantity"] == 6
        r = await api.post(f"{stock}/adjust", {"location_id": van, "quantity": -1, "reason": "broken"})
        body = assert_envelope(r)
        assert body["data"] == {"new_quantity": 5} and body["message"] == "Stock adjusted"

        # Counting: an Adjust by the difference; a count that changes nothing records nothing.
        r = await api.put(f"{stock}/stock/{van}", {"quantity": 8, "reason": "cycle count", "expected_quantity": 5})
        body = assert_envelope(r)
        assert body["data"] == {"item_id": item, "location_id": van, "previous_quantity": 5, "quantity": 8, "change": 3}
        before = await event_count(pool)
        r = await api.put(f"{stock}/stock/{van}", {"quantity": 8})
        body = assert_envelope(r)
        assert body["data"]["change"] == 0 and body["position"] == api.position
        assert await event_count(pool) == before
        body = assert_error(await api.put(f"{stock}/stock/{van}", {"quantity": 1, "expected_quantity": 7}), 400, "count_mismatch")
        assert body["current_quantity"] == 8

        r = await api.get(f"{stock}/transactions", params={"type": "Adjust"})
        body = assert_envelope(r)
        for t in body["data"]:
            assert_shape(t, TRANSACTION_FIELDS)
        assert [(t["quantity"], t["notes"]) for t in body["data"]] == [(3, "cycle count"), (-1, "broken")]
        r = await api.get(f"{stock}/transactions")
        assert [t["transaction_type"] for t in assert_envelope(r)["data"]] == ["Adjust", "Adjust", "Remove", "Add", "Add"]
        r = await api.get(f"{stock}/transactions", params={"type": "Remove"})
        assert [t["quantity"] for t in assert_envelope(r)["data"]] == [-4]
        assert_error(await api.get(f"{stock}/transactions", params={"type": "remove"}), 400, "validation_failed")

        # Holds: only available stock can leave, adjusting never goes below what is reserved.
        r = await api.post(f"{V1}/jobs/1/reservations", {"items": [{"item_id": item, "location_id": van, "quantity": 6}]})
        assert_envelope(r, 201)
        before = await event_count(pool)
        body = assert_error(await api.post(f"{stock}/remove", {"location_id": van, "quantity": 3}), 400, "insufficient_stock")
        assert body["available_quantity"] == 2
        assert_error(await api.post(f"{stock}/adjust", {"location_id": van, "quantity": -3, "reason": "x"}), 400, "insufficient_stock")
        assert_error(await api.put(f"{stock}/stock/{van}", {"quantity": 5}), 400, "insufficient_stock")

        # Quantities and locations.
        for path, body, code in [
            ("add", {"location_id": van, "quantity": 0}, "invalid_quantity"),
            ("add", {"location_id": van, "quantity": -5}, "invalid_quantity"),
            ("remove", {"location_id": van, "quantity": 0}, "invalid_quantity"),
            ("adjust", {"location_id": van, "quantity": 0, "reason": "x"}, "invalid_quantity"),
            ("add", {"location_id": 999, "quantity": 1}, "location_not_found"),
            ("remove", {"location_id": 999, "quantity": 1}, "location_not_found"),
            ("adjust", {"location_id": 999, "quantity": 1, "reason": "x"}, "location_not_found"),
            ("add", {"quantity": 1}, "missing_location_id"),
            ("add", {"location_id": van}, "missing_quantity"),
            ("adjust", {"location_id": van, "quantity": 1}, "missing_reason"),
            ("add", {"location_id": van, "quantity": 1, "note": "typo"}, "validation_failed"),
            ("add", {"location_id": van, "quantity": 2**63}, "validation_failed"),
        ]:
            assert_error(await api.post(f"{stock}/{path}", body), 400, code)
        assert_error(await api.put(f"{stock}/stock/999", {"quantity": 1}), 400, "location_not_found")
        assert_error(await api.put(f"{stock}/stock/{van}", {"quantity": -1}), 400, "invalid_quantity")
        assert_error(await api.put(f"{V1}/items/999/stock/{van}", {"quantity": 1}), 404, "not_found")
        for path in ("add", "remove"):
            assert_error(await api.post(f"{V1}/items/999/{path}", {"location_id": van, "quantity": 1}), 404, "not_found")
        assert await event_count(pool) == before

        # An inactive location takes no new stock, but stock can still leave it.
        r = await api.patch(f"{V1}/locations/{van}", {"is_active": False})
        assert assert_envelope(r)["data"]["is_active"] is False
        assert_error(await api.post(f"{stock}/add", {"location_id": van, "quantity": 1}), 400, "location_inactive")
        assert_error(await api.post(f"{stock}/adjust", {"location_id": van, "quantity": 1, "reason": "x"}), 400, "location_inactive")
        r = await api.post(f"{stock}/remove", {"location_id": van, "quantity": 2})
        assert assert_envelope(r)["data"]["new_quantity"] == 6


async def test_transfer_route(database_url, pool):
    async with api_client(database_url) as client:
        api = Api(client, await key_for(pool))
        ids = await stocked_world(api)
        item, warehouse, van = ids["item"], ids["warehouse"], ids["van"]
        transfer = {"item_id": item, "from_location_id": warehouse, "to_location_id": van}
        r = await api.post(f"{V1}/transfers", {**transfer, "quantity": 30, "notes": "restock"})
        body = assert_envelope(r)
        assert body["message"] == "Stock transferred"
        assert body["data"]["from_location"] == {"location_id": warehouse, "location_name": "Main Warehouse", "new_quantity": 70}
        assert body["data"]["to_location"] == {"location_id": van, "location_name": "Van 1", "new_quantity": 30}
        r = await api.get(f"{V1}/items/{item}/transactions")
        out, into = sorted(assert_envelope(r)["data"][:2], key=lambda t: t["quantity"])
        assert (out["transaction_type"], out["quantity"], out["related_location_id"]) == ("Transfer_out", -30, van)
        assert (into["transaction_type"], into["quantity"], into["related_location_id"]) == ("Transfer_in", 30, warehouse)

        await api.post(f"{V1}/jobs/3/reservations", {"items": [{"item_id": item, "location_id": warehouse, "quantity": 60}]})
        closed = await api.location("Closed", is_active=False)
        empty = await api.location("Empty")
        before = await event_count(pool)
        for body, status, code in [
            ({**transfer, "quantity": 11}, 400, "insufficient_stock"),
            ({**transfer, "quantity": 0}, 400, "invalid_quantity"),
            ({**transfer, "quantity": -1}, 400, "invalid_quantity"),
            ({**transfer, "to_location_id": warehouse, "quantity": 1}, 400, "same_location"),
            ({**transfer, "from_location_id": 999, "quantity": 1}, 400, "from_location_not_found"),
            ({**transfer, "to_location_id": 999, "quantity": 1}, 400, "to_location_not_found"),
            ({**transfer, "to_location_id": closed, "quantity": 1}, 400, "location_inactive"),
            ({**transfer, "from_location_id": empty, "quantity": 1}, 400, "no_stock"),
            ({**transfer, "item_id": 999, "quantity": 1}, 404, "item_not_found"),
            ({"from_location_id": warehouse, "to_location_id": van, "quantity": 1}, 400, "missing_item_id"),
            ({"item_id": item, "to_location_id": van, "quantity": 1}, 400, "missing_from_location_id"),
            ({"item_id": item, "from_location_id": warehouse, "quantity": 1}, 400, "missing_to_location_id"),
            ({**transfer, "quantity": 1, "note": "typo"}, 400, "validation_failed"),
        ]:
            assert_error(await api.post(f"{V1}/transfers", body), status, code)
        assert await event_count(pool) == before
        r = await api.post(f"{V1}/transfers", {**transfer, "quantity": 10})
        assert assert_envelope(r)["data"]["from_location"]["new_quantity"] == 60


async def test_job_routes(database_url, pool):
    async with api_client(database_url) as client:
        api = Api(client, await key_for(pool))
        ids = await stocked_world(api)
        item, warehouse, van = ids["item"], ids["warehouse"], ids["van"]
        other = await api.item("CAP-1", "Capacitor")
        await api.add(other, van, 10)
        jobs = f"{V1}/jobs"

        later = (datetime.now(UTC) + timedelta(days=1)).isoformat()
        lines = [{"item_id": item, "location_id": warehouse, "quantity": 10}, {"item_id": other, "location_id": van, "quantity": 4}]
        r = await api.post(f"{jobs}/77/reservations", {"items": lines, "notes": "Monday", "expires_at": later})
        body = assert_envelope(r, 201)
        assert body["message"] == "Stock reserved"
        assert body["data"] == {"job_id": 77, "reserved": lines, "released": [], "consumed": []}

        r = await api.get(f"{jobs}/77")
        view = assert_envelope(r)["data"]
        assert view["job_id"] == 77 and view["reserved_quantity"] == 14 and view["consumed_quantity"] == 0
        assert sorted((h["item_id"], h["location_id"], h["reserved_quantity"]) for h in view["holdings"]) == sorted(
            [(item, warehouse, 10), (other, van, 4)])
        assert_error(await api.get(f"{jobs}/78"), 404, "not_found")

        # All or nothing: a line that cannot be held refuses the whole reservation.
        before = await event_count(pool)
        bad = [{"item_id": item, "location_id": warehouse, "quantity": 1}, {"item_id": other, "location_id": van, "quantity": 7}]
        body = assert_error(await api.post(f"{jobs}/78/reservations", {"items": bad}), 400, "insufficient_stock")
        assert body["available_quantity"] == 6
        # Two lines on one (item, location) are checked on their sum.
        twice = [{"item_id": other, "location_id": van, "quantity": 4}, {"item_id": other, "location_id": van, "quantity": 4}]
        assert_error(await api.post(f"{jobs}/78/reservations", {"items": twice}), 400, "insufficient_stock")
        past = (datetime.now(UTC) - timedelta(minutes=1)).isoformat()
        assert_error(await api.post(f"{jobs}/78/reservations", {"items": lines[:1], "expires_at": past}), 400, "validation_failed")
        assert_error(await api.post(f"{jobs}/78/reservations", {"items": lines[:1], "expires_at": "2099-01-01T00:00:00"}), 400, "validation_failed")
        assert_error(await api.post(f"{jobs}/78/reservations", {"items": []}), 400, "validation_failed")
        assert_error(await api.post(f"{jobs}/78/reservations", {}), 400, "missing_items")
        r = await api.post(f"{jobs}/78/reservations", {"items": [{"item_id": item, "location_id": 999, "quantity": 1}]})
        assert_error(r, 400, "location_not_found")
        r = await api.post(f"{jobs}/78/reservations", {"items": [{"item_id": 999, "location_id": van, "quantity": 1}]})
        assert_error(r, 404, "not_found")
        assert_error(await api.post(f"{jobs}/78/release"), 404, "not_found")  # holds nothing
        assert_error(await api.post(f"{jobs}/78/complete"), 404, "not_found")
        body = assert_error(await api.post(f"{jobs}/77/release", {"items": [{"item_id": item, "location_id": warehouse, "quantity": 11}]}),
                            400, "insufficient_reservation")
        assert body["reserved_quantity"] == 10
        assert await event_count(pool) == before

        # Release some lines, then complete: what is held is consumed first, the rest released.
        r = await api.post(f"{jobs}/77/release", {"items": [{"item_id": item, "location_id": warehouse, "quantity": 3}]})
        body = assert_envelope(r)
        assert body["data"]["released"] == [{"item_id": item, "location_id": warehouse, "quantity": 3}] and body["message"] == "Stock released"
        r = await api.post(f"{jobs}/77/complete", {"items": [{"item_id": item, "location_id": warehouse, "quantity": 9}]})
        body = assert_envelope(r)
        assert body["message"] == "Job completed"
        assert body["data"]["consumed"] == [{"item_id": item, "location_id": warehouse, "quantity": 9}]
        assert body["data"]["released"] == [{"item_id": other, "location_id": van, "quantity": 4}]
        r = await api.get(f"{V1}/items/{item}/stock")
        entry = next(e for e in assert_envelope(r)["data"] if e["location_id"] == warehouse)
        assert (entry["quantity"], entry["reserved_quantity"], entry["available"]) == (91, 0, 91)
        r = await api.get(f"{jobs}/77")
        view = assert_envelope(r)["data"]
        assert view["reserved_quantity"] == 0 and view["consumed_quantity"] == 9

        # No body: release everything the job holds; complete exactly what it holds.
        await api.post(f"{jobs}/80/reservations", {"items": lines})
        r = await api.post(f"{jobs}/80/release")
        assert sorted(line["quantity"] for line in assert_envelope(r)["data"]["released"]) == [4, 10]
        await api.post(f"{jobs}/81/reservations", {"items": lines})
        r = await api.post(f"{jobs}/81/complete")
        body = assert_envelope(r)
        assert sorted(line["quantity"] for line in body["data"]["consumed"]) == [4, 10] and body["data"]["released"] == []
        body = assert_error(await api.post(f"{jobs}/82/complete", {"items": [{"item_id": other, "location_id": van, "quantity": 100}]}),
                            400, "insufficient_stock")
        assert body["available_quantity"] == 6  # 10 came in, job 81 used 4


async def test_location_routes_and_low_stock(database_url, pool):
    async with api_client(database_url) as client:
        api = Api(client, await key_for(pool))
        r = await api.post(f"{V1}/locations", {"location_name": "Main", "address": "1 Road", "city": "Tampa", "state": "FL", "zip": "33601"})
        body = assert_envelope(r, 201)
        assert_shape(body["data"], LOCATION_FIELDS)
        assert body["data"]["location_type"] == "warehouse" and body["data"]["is_active"] is True
        main = body["data"]["id"]
        van = await api.location("Van", location_type="vehicle")
        assert_error(await api.post(f"{V1}/locations", {"location_name": "X", "location_type": "spaceship"}), 400, "validation_failed")
        assert_error(await api.post(f"{V1}/locations", {"location_type": "vehicle"}), 400, "missing_location_name")
        assert_error(await api.post(f"{V1}/locations", {"location_name": "  "}), 400, "validation_failed")

        r = await api.patch(f"{V1}/locations/{van}", {"city": "Orlando", "is_active": False})
        body = assert_envelope(r)
        assert (body["data"]["city"], body["data"]["is_active"], body["data"]["location_name"]) == ("Orlando", False, "Van")
        assert body["message"] == "Location updated"
        assert_error(await api.patch(f"{V1}/locations/{van}", {}), 400, "no_fields")
        assert_error(await api.patch(f"{V1}/locations/{van}", {"location_name": ""}), 400, "validation_failed")
        assert_error(await api.patch(f"{V1}/locations/999", {"city": "x"}), 404, "not_found")

        r = await api.get(f"{V1}/locations")
        body = assert_envelope(r)
        assert_pagination(body, page=1, per_page=50, total=1)
        assert [loc["id"] for loc in body["data"]] == [main]
        r = await api.get(f"{V1}/locations", params={"active_only": "false", "type": "vehicle"})
        (loc,) = assert_envelope(r)["data"]
        assert_shape(loc, LOCATION_FIELDS)
        assert loc["id"] == van
        item = await api.item("P-1", "Part", min_stock_level=10)
        await api.add(item, main, 4)
        r = await api.get(f"{V1}/locations/{main}")
        data = assert_envelope(r)["data"]
        assert data["location"]["id"] == main
        assert [(s["part_number"], s["quantity"], s["available"]) for s in data["stock_summary"]] == [("P-1", 4, 4)]
        assert_error(await api.get(f"{V1}/locations/999"), 404, "not_found")

        fine = await api.item("P-2", "Fine", min_stock_level=1)
        await api.add(fine, main, 2)
        r = await api.get(f"{V1}/low-stock")
        body = assert_envelope(r)
        assert_pagination(body, page=1, per_page=50, total=1)
        assert [i["id"] for i in body["data"]] == [item]
        assert_item(body["data"][0])
        r = await api.get(f"{V1}/items", params={"low_stock": "true"})
        assert [i["id"] for i in assert_envelope(r)["data"]] == [item]


async def test_api_key_routes(database_url, pool):
    async with api_client(database_url) as client:
        admin = await key_for(pool, scopes=("inventory:read", "keys:manage"))
        r = await client.post(f"{V1}/api-keys", json={"scopes": ["inventory:read"], "name": "dashboard"}, headers=admin)
        body = assert_envelope(r, 201)
        created = body["data"]
        assert created["key"].startswith("ldg_") and created["key"][:12] == created["key_prefix"]
        assert created["scopes"] == ["inventory:read"] and created["name"] == "dashboard" and created["revoked_at"] is None

        new = {"X-API-Key": created["key"]}
        assert_envelope(await client.get(f"{V1}/items", headers=new))
        assert_error(await client.get(f"{V1}/api-keys", headers=new), 403, "insufficient_scope")

        r = await client.get(f"{V1}/api-keys", headers=admin)
        listed = assert_envelope(r)["data"]
        assert created["key_id"] in [k["key_id"] for k in listed]
        assert all("key" not in k for k in listed)
        assert created["key"] not in r.text

        # A key can grant only the scopes it holds; bodies are checked.
        assert_error(await client.post(f"{V1}/api-keys", json={"scopes": ["inventory:write"]}, headers=admin), 400, "validation_failed")
        assert_error(await client.post(f"{V1}/api-keys", json={"scopes": ["root"]}, headers=admin), 400, "validation_failed")
        assert_error(await client.post(f"{V1}/api-keys", json={"scopes": []}, headers=admin), 400, "validation_failed")
        assert_error(await client.post(f"{V1}/api-keys", json={}, headers=admin), 400, "missing_scopes")
        r = await client.post(f"{V1}/api-keys", json={"scopes": ["inventory:read"], "allowed_ips": ["not an ip"]}, headers=admin)
        assert_error(r, 400, "validation_failed")

        # Revoked: 401 at once, everywhere; revoking an unknown key is 404.
        r = await client.delete(f"{V1}/api-keys/{created['key_id']}", headers=admin)
        assert assert_envelope(r)["data"] == {"key_id": created["key_id"], "revoked": True}
        assert_error(await client.get(f"{V1}/items", headers=new), 401, "unauthorized")
        assert_error(await client.get(f"{V1}/items", headers={"Authorization": f"Bearer {created['key']}"}), 401, "unauthorized")
        assert_error(await client.delete(f"{V1}/api-keys/999999", headers=admin), 404, "not_found")
        r = await client.get(f"{V1}/api-keys", headers=admin)
        (revoked,) = [k for k in assert_envelope(r)["data"] if k["key_id"] == created["key_id"]]
        assert revoked["revoked_at"] is not None


# --- idempotency ----------------------------------------------------------------------


async def test_idempotent_replay_and_reuse(database_url, pool):
    async with api_client(database_url) as client:
        api = Api(client, await key_for(pool))
        ids = await stocked_world(api)
        item, warehouse, van = ids["item"], ids["warehouse"], ids["van"]
        cases = [
            (f"{V1}/items/{item}/add", {"location_id": warehouse, "quantity": 1}, 200),
            (f"{V1}/items/{item}/remove", {"location_id": warehouse, "quantity": 1}, 200),
            (f"{V1}/items/{item}/adjust", {"location_id": warehouse, "quantity": 2, "reason": "r"}, 200),
            (f"{V1}/transfers", {"item_id": item, "from_location_id": warehouse, "to_location_id": van, "quantity": 3}, 200),
            (f"{V1}/jobs/9/reservations", {"items": [{"item_id": item, "location_id": warehouse, "quantity": 1}]}, 201),
            (f"{V1}/items", {"part_number": "NEW-1", "part_name": "New"}, 201),
            (f"{V1}/locations", {"location_name": "Depot"}, 201),
            ("/api/v1/inventory?sub=transfer", {"item_id": item, "from_location_id": warehouse, "to_location_id": van, "quantity": 3}, 200),
            (f"/api/v1/inventory?id={item}&sub=adjust", {"location_id": warehouse, "quantity": 2, "reason": "r"}, 200),
            ("/api/v1/inventory", {"part_number": "NEW-2", "part_name": "New"}, 201),
        ]
        for n, (path, body, status) in enumerate(cases):
            idem = {"Idempotency-Key": f"key-{n}"}
            first = await api.post(path, body, headers=idem)
            assert_envelope(first, status)
            assert "Idempotent-Replayed" not in first.headers
            events = await event_count(pool)
            again = await api.post(path, body, headers=idem)
            assert again.status_code == status, again.text
            assert again.headers["Idempotent-Replayed"] == "true"
            assert again.content == first.content
            assert again.headers["X-Ledger-Position"] == first.headers["X-Ledger-Position"]
            assert await event_count(pool) == events, path
            changed = {**body, **({"reason": "other"} if "reason" in body else {"part_name": "Other"} if "part_name" in body
                                  else {"location_name": "Other"} if "location_name" in body else {"notes": "other"})}
            assert_error(await api.post(path, changed, headers=idem), 409, "idempotency_key_reused")
            # The same key on another route is another request too.
            assert_error(await api.post(f"{V1}/items/{item}/add", {"location_id": van, "quantity": 5}, headers=idem),
                         409, "idempotency_key_reused")
            assert await event_count(pool) == events, path

        # The key is scoped to the organization: another organization's same key is its own.
        other = Api(client, await key_for(pool, "globex"))
        r = await other.post(f"{V1}/locations", {"location_name": "Globex depot"}, headers={"Idempotency-Key": "key-0"})
        assert assert_envelope(r, 201)["data"]["location_name"] == "Globex depot" and "Idempotent-Replayed" not in r.headers
        assert_error(await api.post(f"{V1}/items/{item}/add", {"location_id": van, "quantity": 1}, headers={"Idempotency-Key": ""}),
                     400, "validation_failed")
        assert_error(await api.post(f"{V1}/items/{item}/add", {"location_id": van, "quantity": 1}, headers={"Idempotency-Key": "k" * 256}),
                     400, "validation_failed")


async def test_refused_request_gives_its_idempotency_key_back(database_url, pool):
    async with api_client(database_url) as client:
        api = Api(client, await key_for(pool))
        ids = await stocked_world(api)
        item, warehouse = ids["item"], ids["warehouse"]
        idem = {"Idempotency-Key": "retry-me"}
        path = f"{V1}/items/{item}/remove"
        before = await event_count(pool)
        assert_error(await api.post(path, {"location_id": warehouse, "quantity": 500}, headers=idem), 400, "insufficient_stock")
        assert_error(await api.post(path, {"location_id": warehouse, "quantity": "x"}, headers=idem), 400, "validation_failed")
        assert_error(await api.post(path, content=b"{", headers={**idem, "Content-Type": "application/json"}), 400, "invalid_json")
        reader = await key_for(pool, scopes=("inventory:read",))
        assert_error(await client.post(path, json={"location_id": warehouse, "quantity": 5}, headers={**reader, **idem}),
                     403, "insufficient_scope")
        assert await event_count(pool) == before
        # The corrected retry runs (a different body is fine: nothing was recorded under the key).
        r = await api.post(path, {"location_id": warehouse, "quantity": 5}, headers=idem)
        assert assert_envelope(r)["data"]["new_quantity"] == 95 and "Idempotent-Replayed" not in r.headers
        r = await api.post(path, {"location_id": warehouse, "quantity": 5}, headers=idem)
        assert r.headers["Idempotent-Replayed"] == "true" and r.json()["data"]["new_quantity"] == 95
        assert await event_count(pool) == before + 1


async def test_concurrent_repeats_of_one_idempotent_request(database_url, pool):
    async with api_client(database_url) as client:
        api = Api(client, await key_for(pool))
        ids = await stocked_world(api)
        path = f"{V1}/items/{ids['item']}/add"
        before = await event_count(pool)
        responses = await asyncio.gather(*[
            api.post(path, {"location_id": ids["warehouse"], "quantity": 1}, headers={"Idempotency-Key": "together"}) for _ in range(8)
        ])
        assert {r.status_code for r in responses} == {200}, [r.text for r in responses]
        assert len({r.content for r in responses}) == 1
        assert sum(r.headers.get("Idempotent-Replayed") == "true" for r in responses) == 7
        assert await event_count(pool) == before + 1


async def test_idempotency_key_on_other_methods_does_not_swallow_later_commands(database_url, pool):
    """Idempotency-Key is a POST header (DESIGN 6). Sent with a PATCH it must not make a
    later command under the same key come back as that PATCH's recording, writing nothing."""
    async with api_client(database_url) as client:
        api = Api(client, await key_for(pool))
        ids = await stocked_world(api)
        item = ids["item"]
        idem = {"Idempotency-Key": "shared"}
        assert_envelope(await api.patch(f"{V1}/items/{item}", {"category": "A"}, headers=idem))
        r = await api.patch(f"{V1}/items/{item}", {"category": "B"}, headers=idem)
        assert assert_envelope(r)["data"]["category"] == "B"
        before = await event_count(pool)
        r = await api.post(f"{V1}/items/{item}/add", {"location_id": ids["warehouse"], "quantity": 1}, headers=idem)
        assert assert_envelope(r)["data"]["new_quantity"] == 101
        assert await event_count(pool) == before + 1
        r = await api.get(f"{V1}/items/{item}")
        assert assert_envelope(r)["data"]["item"]["category"] == "B"


async def test_replay_needs_the_scope_and_never_stores_a_key_secret(database_url, pool):
    """A stored response is replayed only to a caller allowed to make the request; a new
    API key's secret is shown once and never kept (not even for a replay)."""
    async with api_client(database_url) as client:
        admin = await key_for(pool, scopes=("inventory:read", "inventory:write", "keys:manage"))
        reader = await key_for(pool, scopes=("inventory:read",))
        idem = {"Idempotency-Key": "k1"}
        first = await client.post(f"{V1}/api-keys", json={"scopes": ["inventory:write"]}, headers={**admin, **idem})
        secret = assert_envelope(first, 201)["data"]["key"]
        r = await client.post(f"{V1}/api-keys", json={"scopes": ["inventory:write"]}, headers={**reader, **idem})
        assert_error(r, 403, "insufficient_scope")
        assert secret not in r.text
        stored = await pool.fetch("SELECT body FROM idempotency_records")
        assert stored and all(secret.encode() not in (row["body"] or b"") for row in stored)
        r2 = await client.post(f"{V1}/api-keys", json={"scopes": ["inventory:write"]}, headers={**admin, **idem})
        assert r2.status_code == 201 and r2.headers["Idempotent-Replayed"] == "true"
        replayed = r2.json()["data"]
        assert replayed["key"] is None and replayed["key_id"] == first.json()["data"]["key_id"]
        assert len(assert_envelope(await client.get(f"{V1}/api-keys", headers=admin))["data"]) == 3  # no second key
        r = await client.post(f"{V1}/locations", json={"location_name": "Depot"}, headers={**admin, "Idempotency-Key": "k2"})
        assert_envelope(r, 201)
        r = await client.post(f"{V1}/locations", json={"location_name": "Depot"}, headers={**reader, "Idempotency-Key": "k2"})
        assert_error(r, 403, "insufficient_scope")


# --- If-Match, read-after-write ---------------------------------------------------------


async def test_if_match_version_conflict(database_url, pool):
    async with api_client(database_url) as client:
        api = Api(client, await key_for(pool))
        ids = await stocked_world(api)  # item-N: v1 created, v2 the add
        item, warehouse = ids["item"], ids["warehouse"]
        before = await event_count(pool)
        for stale in ("1", '"1"', "3"):
            body = assert_error(await api.patch(f"{V1}/items/{item}", {"category": "X"}, headers={"If-Match": stale}), 412, "version_conflict")
            assert body["current_version"] == 2
        r = await api.post(f"{V1}/items/{item}/add", {"location_id": warehouse, "quantity": 1}, headers={"If-Match": "1"})
        assert_error(r, 412, "version_conflict")
        assert await event_count(pool) == before
        r = await api.patch(f"{V1}/items/{item}", {"category": "X"}, headers={"If-Match": '"2"'})
        assert assert_envelope(r)["data"]["category"] == "X"
        r = await api.post(f"{V1}/items/{item}/add", {"location_id": warehouse, "quantity": 1}, headers={"If-Match": "3"})
        assert assert_envelope(r)["data"]["new_quantity"] == 101
        assert_error(await api.patch(f"{V1}/items/{item}", {"category": "Y"}, headers={"If-Match": "three"}), 400, "validation_failed")
        assert_error(await api.patch(f"{V1}/locations/{warehouse}", {"city": "Y"}, headers={"If-Match": "9"}), 412, "version_conflict")
        r = await api.patch(f"{V1}/locations/{warehouse}", {"city": "Y"}, headers={"If-Match": "1"})
        assert assert_envelope(r)["data"]["city"] == "Y"


async def test_read_after_write(database_url, pool):
    async with api_client(database_url) as client:
        headers = await key_for(pool)
        r = await client.post(f"{V1}/locations", json={"location_name": "Main"}, headers=headers)
        location = r.json()["data"]["id"]
        r = await client.post(f"{V1}/items", json={"part_number": "P", "part_name": "Part"}, headers=headers)
        item = r.json()["data"]["id"]
        for n in range(1, 6):
            r = await client.post(f"{V1}/items/{item}/add", json={"location_id": location, "quantity": 1}, headers=headers)
            position = int(r.headers["X-Ledger-Position"])
            assert position == r.json()["position"]
            if n % 2:
                r = await client.get(f"{V1}/items/{item}", params={"min_position": position}, headers=headers)
            else:
                r = await client.get(f"{V1}/items/{item}", headers={**headers, "X-Ledger-Min-Position": str(position)})
            assert assert_envelope(r)["data"]["item"]["quantity_on_hand"] == n
            r = await client.get(f"{V1}/items/{item}/transactions", params={"min_position": position}, headers=headers)
            assert assert_envelope(r)["data"][0]["id"] == position
        for path in ("/items", f"/items/{item}/stock", "/locations", f"/locations/{location}", "/low-stock"):
            assert_envelope(await client.get(V1 + path, params={"min_position": position}, headers=headers))
        assert_error(await client.get(f"{V1}/items", params={"min_position": -1}, headers=headers), 400, "validation_failed")
        assert_error(await client.get(f"{V1}/items", headers={**headers, "X-Ledger-Min-Position": "x"}), 400, "validation_failed")


async def test_read_beyond_the_read_models_is_refused(database_url, pool, monkeypatch):
    monkeypatch.setattr("api.consistency.WAIT_SECONDS", 0.1)
    async with api_client(database_url, projector=False) as client:
        headers = await key_for(pool)
        r = await client.post(f"{V1}/locations", json={"location_name": "Main"}, headers=headers)
        position = r.headers["X-Ledger-Position"]
        body = assert_error(await client.get(f"{V1}/locations", params={"min_position": position}, headers=headers), 503, "not_caught_up")
        assert body["position"] == int(position)
        r = await client.get(f"{V1}/items", headers={**headers, "X-Ledger-Min-Position": position})
        assert_error(r, 503, "not_caught_up")


# --- organizations ----------------------------------------------------------------------


async def test_another_organizations_ids_are_not_found_everywhere(database_url, pool):
    async with api_client(database_url) as client:
        acme = Api(client, await key_for(pool, "acme"))
        ids = await stocked_world(acme)
        item, warehouse, van = ids["item"], ids["warehouse"], ids["van"]
        await acme.post(f"{V1}/jobs/5/reservations", {"items": [{"item_id": item, "location_id": warehouse, "quantity": 2}]})
        acme_key = assert_envelope(await acme.post(f"{V1}/api-keys", {"scopes": ["inventory:read"]}), 201)["data"]["key_id"]

        globex = Api(client, await key_for(pool, "globex"))
        own = await globex.location("Globex depot")
        own_item = await globex.item("G-1", "Globex part")
        await globex.add(own_item, own, 10)
        before = await event_count(pool)
        missing = 999_999
        I = "/api/v1/inventory"  # noqa: E741 - short so the table of requests below lines up

        def pairs(i, loc, other_loc):
            """(method, path, params, body) for every route that names an id."""
            return [
                ("GET", f"{V1}/items/{i}", None, None),
                ("GET", f"{V1}/items/{i}/stock", None, None),
                ("GET", f"{V1}/items/{i}/transactions", None, None),
                ("PUT", f"{V1}/items/{i}", None, {"part_number": "HIJACK", "part_name": "x"}),
                ("PATCH", f"{V1}/items/{i}", None, {"category": "hijacked"}),
                ("DELETE", f"{V1}/items/{i}", None, None),
                ("POST", f"{V1}/items/{i}/add", None, {"location_id": own, "quantity": 1}),
                ("POST", f"{V1}/items/{i}/remove", None, {"location_id": own, "quantity": 1}),
                ("POST", f"{V1}/items/{i}/adjust", None, {"location_id": own, "quantity": 1, "reason": "x"}),
                ("PUT", f"{V1}/items/{i}/stock/{own}", None, {"quantity": 1}),
                ("POST", f"{V1}/items/{own_item}/add", None, {"location_id": loc, "quantity": 1}),
                ("POST", f"{V1}/items/{own_item}/adjust", None, {"location_id": loc, "quantity": 1, "reason": "x"}),
                ("PUT", f"{V1}/items/{own_item}/stock/{loc}", None, {"quantity": 1}),
                ("POST", f"{V1}/transfers", None, {"item_id": i, "from_location_id": loc, "to_location_id": other_loc, "quantity": 1}),
                ("POST", f"{V1}/transfers", None, {"item_id": own_item, "from_location_id": own, "to_location_id": loc, "quantity": 1}),
                ("POST", f"{V1}/transfers", None, {"item_id": own_item, "from_location_id": loc, "to_location_id": own, "quantity": 1}),
                ("POST", f"{V1}/jobs/1/reservations", None, {"items": [{"item_id": i, "location_id": loc, "quantity": 1}]}),
                ("POST", f"{V1}/jobs/1/reservations", None, {"items": [{"item_id": own_item, "location_id": loc, "quantity": 1}]}),
                ("GET", f"{V1}/locations/{loc}", None, None),
                ("PATCH", f"{V1}/locations/{loc}", None, {"is_active": False}),
                ("GET", I, {"id": i}, None),
                ("GET", I, {"id": i, "sub": "stock"}, None),
                ("GET", I, {"id": i, "sub": "transactions"}, None),
                ("GET", I, {"sub": "locations", "location_id": loc}, None),
                ("PUT", I, {"id": i}, {"part_number": "HIJACK", "part_name": "x"}),
                ("PATCH", I, {"id": i}, {"category": "hijacked"}),
                ("POST", I, {"id": i, "sub": "adjust"}, {"location_id": own, "quantity": 1, "reason": "x"}),
                ("POST", I, {"id": own_item, "sub": "adjust"}, {"location_id": loc, "quantity": 1, "reason": "x"}),
                ("POST", I, {"sub": "transfer"}, {"item_id": i, "from_location_id": loc, "to_location_id": other_loc, "quantity": 1}),
            ]

        # Another organization's id answers exactly as an id that does not exist.
        for theirs, unknown in zip(pairs(item, warehouse, van), pairs(missing, missing, missing + 1), strict=True):
            method, path, params, body = theirs
            kw = {"params": params} | ({"json": body} if body is not None else {})
            r = await globex.request(method, path, **kw)
            assert r.status_code in (400, 404), (method, path, r.text)
            method, path, params, body = unknown
            kw = {"params": params} | ({"json": body} if body is not None else {})
            r_unknown = await globex.request(method, path, **kw)
            assert (r.status_code, r.json()["error"]) == (r_unknown.status_code, r_unknown.json()["error"]), (theirs, r.text)
        assert_error(await globex.get(f"{V1}/jobs/5"), 404, "not_found")
        assert_error(await globex.post(f"{V1}/jobs/5/release"), 404, "not_found")
        assert_error(await globex.post(f"{V1}/jobs/5/complete"), 404, "not_found")
        assert_error(await globex.delete(f"{V1}/api-keys/{acme_key}"), 404, "not_found")
        assert await event_count(pool) == before

        # Nothing leaked into the lists, nothing changed for acme.
        for path in ("/items", "/locations", "/low-stock"):
            r = await globex.get(V1 + path, params={"active_only": "false"} if path == "/locations" else None)
            assert {x["id"] for x in assert_envelope(r)["data"]} <= {own, own_item}
        r = await globex.get(f"{V1}/api-keys")
        assert acme_key not in [k["key_id"] for k in assert_envelope(r)["data"]]
        r = await acme.get(f"{V1}/items/{item}")
        data = assert_envelope(r)["data"]
        assert data["item"]["part_number"] == "FLT-001" and data["item"]["category"] == "Filters"
        assert data["item"]["quantity_on_hand"] == 100
        r = await acme.get(f"{V1}/jobs/5")
        assert assert_envelope(r)["data"]["reserved_quantity"] == 2
        r = await acme.get(f"{V1}/api-keys")
        assert [k["revoked_at"] for k in assert_envelope(r)["data"] if k["key_id"] == acme_key] == [None]


# --- rate limits, keys, addresses -------------------------------------------------------


async def test_rate_limit_headers_and_refusal(database_url, pool):
    async with api_client(database_url, rate_limit=5) as client:
        headers = await key_for(pool)
        other = await key_for(pool)
        responses = [
            await client.post(f"{V1}/locations", json={"location_name": "Main"}, headers=headers),
            await client.get(f"{V1}/items", headers=headers),
            await client.get(f"{V1}/items/999", headers=headers),
            await client.post(f"{V1}/items", json={"part_name": "x"}, headers=headers),
            await client.get(f"{V1}/api-keys", headers=headers),
        ]
        assert [r.status_code for r in responses] == [201, 200, 404, 400, 200]
        for n, r in enumerate(responses):
            assert r.headers["X-RateLimit-Limit"] == "5"
            assert r.headers["X-RateLimit-Remaining"] == str(4 - n)
            assert abs(int(r.headers["X-RateLimit-Reset"]) - time.time()) < 120
        before = await event_count(pool)
        for r in [
            await client.get(f"{V1}/items", headers=headers),
            await client.post(f"{V1}/locations", json={"location_name": "Second"}, headers=headers),
            await client.post(f"{V1}/locations", json={"location_name": "Second"}, headers={"Authorization": f"Bearer {headers['X-API-Key']}"}),
        ]:
            body = assert_error(r, 429, "rate_limit_exceeded")
            assert int(r.headers["Retry-After"]) >= 1 and body["retry_after"] == int(r.headers["Retry-After"])
            assert r.headers["X-RateLimit-Limit"] == "5" and r.headers["X-RateLimit-Remaining"] == "0"
            assert r.headers["X-RateLimit-Reset"]
        assert await event_count(pool) == before
        # Counted per key: another key is not limited by the first one's use.
        r = await client.get(f"{V1}/items", headers=other)
        assert r.status_code == 200 and r.headers["X-RateLimit-Remaining"] == "4"
        # Refusals raised before the handler (authentication, idempotency) carry them too.
        fenced = await key_for(pool, allowed_ips=["192.0.2.0/24"])
        idem = {**other, "Idempotency-Key": "k"}
        refusals = [
            (await client.get(f"{V1}/items"), 401, "unauthorized"),  # counted per address
            (await client.get(f"{V1}/items", headers={"X-API-Key": "ldg_unknown"}), 401, "unauthorized"),
            (await client.get(f"{V1}/items", headers=fenced), 403, "forbidden"),
            (await client.post(f"{V1}/locations", json={"location_name": "A"}, headers=idem), 201, None),
            (await client.post(f"{V1}/locations", json={"location_name": "B"}, headers=idem), 409, "idempotency_key_reused"),
            (await client.post(f"{V1}/locations", content=b"{" * 2_000_000, headers={**other, "Idempotency-Key": "big"}), 413, "payload_too_large"),
        ]
        for r, status, code in refusals:
            assert r.status_code == status, r.text
            if code:
                assert_error(r, status, code)
            assert r.headers["X-RateLimit-Limit"] == "5" and r.headers["X-RateLimit-Remaining"].isdigit(), (status, r.headers)
            assert r.headers["X-RateLimit-Reset"].isdigit()
        assert [r.headers["X-RateLimit-Remaining"] for r, _, _ in refusals[3:]] == ["3", "2", "1"]  # the other key's count
        assert (await client.get("/healthz")).status_code == 200


async def test_request_ids(database_url, pool):
    """Every response carries X-Request-ID, the body's request_id: the caller's when sane."""
    async with api_client(database_url) as client:
        headers = await key_for(pool)
        r = await client.get(f"{V1}/items", headers={**headers, "X-Request-ID": "trace-42.a_b"})
        assert assert_envelope(r)["request_id"] == "trace-42.a_b"
        r = await client.get(f"{V1}/items/999", headers={**headers, "X-Request-ID": "trace-43"})
        assert assert_error(r, 404, "not_found")["request_id"] == "trace-43"
        r = await client.get(f"{V1}/items", headers={**headers, "X-Request-ID": "no spaces; or <tags>"})
        assert assert_envelope(r)["request_id"] != "no spaces; or <tags>"
        ids = {assert_envelope(await client.get(f"{V1}/items", headers=headers))["request_id"] for _ in range(3)}
        assert len(ids) == 3
        r = await client.get(f"{V1}/items")
        assert assert_error(r, 401, "unauthorized")["request_id"]


async def test_bearer_works_like_x_api_key(database_url, pool):
    async with api_client(database_url) as client:
        key = (await key_for(pool))["X-API-Key"]
        for headers in ({"Authorization": f"Bearer {key}"}, {"Authorization": f"bearer {key}"}, {"X-API-Key": key}):
            r = await client.post(f"{V1}/locations", json={"location_name": "Main"}, headers=headers)
            assert_envelope(r, 201)
            assert_envelope(await client.get(f"{V1}/locations", headers=headers))
        for headers in ({"Authorization": key}, {"Authorization": f"Basic {key}"}, {"Authorization": "Bearer "}, {"X-API-Key": ""}):
            assert_error(await client.get(f"{V1}/locations", headers=headers), 401, "unauthorized")
        reader = (await key_for(pool, scopes=("inventory:read",)))["X-API-Key"]
        r = await client.post(f"{V1}/locations", json={"location_name": "X"}, headers={"Authorization": f"Bearer {reader}"})
        assert_error(r, 403, "insufficient_scope")


@contextlib.asynccontextmanager
async def client_from(database_url: str, address: str):
    """The real app, seen from `address` (the test client's own address is "testclient")."""
    app = create_app(ApiSettings(database_url=database_url))

    async def from_address(scope, receive, send):
        if scope["type"] == "http":
            scope = {**scope, "client": (address, 40000)}
        await app(scope, receive, send)

    async with AsyncTestClient(from_address) as client:
        yield client


async def test_ip_allow_list(database_url, pool):
    local = await key_for(pool, allowed_ips=["127.0.0.1/32", "10.0.0.0/8"])
    elsewhere = await key_for(pool, allowed_ips=["192.0.2.0/24"])
    anywhere = await key_for(pool)
    async with client_from(database_url, "127.0.0.1") as client:
        assert_envelope(await client.get(f"{V1}/locations", headers=local))
        assert_error(await client.get(f"{V1}/locations", headers=elsewhere), 403, "forbidden")
        assert_envelope(await client.get(f"{V1}/locations", headers=anywhere))
    async with client_from(database_url, "10.20.30.40") as client:
        assert_envelope(await client.get(f"{V1}/locations", headers=local))
    # The plain test client's address is "testclient", not an IP address: no allow-list admits it.
    async with api_client(database_url) as client:
        before = await event_count(pool)
        assert_error(await client.get(f"{V1}/locations", headers=local), 403, "forbidden")
        assert_error(await client.post(f"{V1}/locations", json={"location_name": "X"}, headers=elsewhere), 403, "forbidden")
        assert_error(await client.get("/api/v1/inventory", headers=elsewhere), 403, "forbidden")
        assert await event_count(pool) == before
        assert_envelope(await client.get(f"{V1}/locations", headers=anywhere))


async def test_revoked_key_is_unauthorized(database_url, pool):
    async with api_client(database_url) as client:
        admin = await key_for(pool, scopes=("keys:manage", "inventory:read"))
        victim = await key_for(pool, scopes=("inventory:read",))
        assert_envelope(await client.get(f"{V1}/items", headers=victim))  # cached as live now
        keys = assert_envelope(await client.get(f"{V1}/api-keys", headers=admin))["data"]
        victim_id = max(k["key_id"] for k in keys)
        assert_envelope(await client.delete(f"{V1}/api-keys/{victim_id}", headers=admin))
        assert_error(await client.get(f"{V1}/items", headers=victim), 401, "unauthorized")
        assert_error(await client.get("/api/v1/inventory", headers=victim), 401, "unauthorized")
        # A key may revoke itself; its next request is refused.
        admin_id = min(k["key_id"] for k in keys)
        assert_envelope(await client.delete(f"{V1}/api-keys/{admin_id}", headers=admin))
        assert_error(await client.get(f"{V1}/api-keys", headers=admin), 401, "unauthorized")
