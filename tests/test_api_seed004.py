"""Seed 004 (`Inventory API`) walked through `/api/v1/inventory`, example by example.

Every example request of the document is sent as written (ids adapted to the world built
here through the API), and every response is checked against the documented shape:
field names and JSON types of item, stock entry, transaction and location objects,
`item_id` beside `data`, `message`, `pagination`, `request_id`; then every documented
error code with its HTTP status.
"""

from __future__ import annotations

import time

from tests.support.api import (
    LOCATION_FIELDS,
    STOCK_ENTRY_FIELDS,
    STOCK_SUMMARY_FIELDS,
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

INV = "/api/v1/inventory"
VAN = "Van #1 — Alex Johnson"
CAP_002 = {  # the create example, verbatim
    "part_number": "CAP-002",
    "part_name": "Run Capacitor 35/5 MFD",
    "description": "Dual run capacitor for HVAC systems",
    "category": "Capacitors",
    "min_stock_level": 10,
    "reorder_quantity": 25,
    "cost_per_unit": 12.50,
    "price_per_unit": 24.99,
}
CAP_002_V2 = {  # the PUT example, verbatim
    "part_number": "CAP-002-V2",
    "part_name": "Run Capacitor 35/5 MFD (Updated)",
    "description": "Dual run capacitor v2",
    "category": "Capacitors",
    "min_stock_level": 15,
    "reorder_quantity": 30,
    "cost_per_unit": 13.00,
    "price_per_unit": 25.99,
}
FLT_001 = {
    "part_number": "FLT-001",
    "part_name": "HVAC Air Filter 20x25x1",
    "description": "Standard residential air filter",
    "category": "Filters",
    "min_stock_level": 20,
    "reorder_quantity": 50,
    "cost_per_unit": 8.50,
    "price_per_unit": 15.99,
}


async def world(api: Api) -> dict[str, int]:
    """The document's world: a warehouse, a van, a technician; FLT-001 with 100 on hand."""
    ids = {
        "warehouse": await api.location(
            "Main Warehouse", location_type="warehouse", address="123 Industrial Blvd", city="Tampa", state="FL", zip="33601"
        ),
        "van": await api.location(VAN, location_type="vehicle"),
        "tech": await api.location("Tech bench", location_type="technician"),
    }
    r = await api.post(INV, {**FLT_001, "quantity_on_hand": 100})
    ids["filter"] = assert_envelope(r, 201)["data"]["id"]
    return ids


async def test_item_examples(database_url, pool):
    async with api_client(database_url) as client:
        api = Api(client, await key_for(pool, scopes=("inventory:read", "inventory:write")))
        await world(api)

        # Create an item: 201, the item object, item_id beside data.
        r = await api.post(INV, CAP_002)
        body = assert_envelope(r, 201)
        created = body["data"]
        assert_item(created)
        assert body["item_id"] == created["id"]
        assert {k: created[k] for k in CAP_002} == CAP_002
        assert created["serial_number"] is None and created["supplier_id"] is None
        assert created["quantity_on_hand"] == 0
        assert created["created_at"] == created["updated_at"]
        cap = created["id"]

        # Get a single item: {"item": ..., "stock": [...]}.
        r = await api.get(INV, params={"id": cap})
        data = assert_envelope(r)["data"]
        assert set(data) == {"item", "stock"}
        assert_item(data["item"])
        assert data["item"] == created
        assert data["stock"] == []

        # PUT (full): the example; then PUT resets every field it omits.
        r = await api.put(INV, CAP_002_V2, params={"id": cap})
        updated = assert_envelope(r)["data"]
        assert_item(updated)
        assert {k: updated[k] for k in CAP_002_V2} == CAP_002_V2
        assert updated["id"] == cap and updated["created_at"] == created["created_at"]
        assert updated["updated_at"] >= created["updated_at"]
        r = await api.patch(INV, {"serial_number": "SN-1", "supplier_id": 7}, params={"id": cap})
        assert assert_envelope(r)["data"]["supplier_id"] == 7
        r = await api.put(INV, {"part_number": "CAP-002-V2", "part_name": "Bare"}, params={"id": cap})
        bare = assert_envelope(r)["data"]
        assert {k: bare[k] for k in ITEM_DEFAULTS} == ITEM_DEFAULTS, bare
        assert bare["part_name"] == "Bare"
        r = await api.put(INV, CAP_002_V2, params={"id": cap})
        assert_envelope(r)

        # PATCH (partial): the example; the others keep their values.
        r = await api.patch(INV, {"min_stock_level": 25, "price_per_unit": 27.99}, params={"id": cap})
        patched = assert_envelope(r)["data"]
        assert_item(patched)
        assert patched == {**patched, **CAP_002_V2, "min_stock_level": 25, "price_per_unit": 27.99}
        r = await api.patch(INV, {"description": None}, params={"id": cap})
        assert assert_envelope(r)["data"]["description"] is None

        # quantity_on_hand is read-only on PUT and PATCH.
        r = await api.patch(INV, {"quantity_on_hand": 999, "category": "Caps"}, params={"id": cap})
        assert assert_envelope(r)["data"]["quantity_on_hand"] == 0
        r = await api.put(INV, {**CAP_002_V2, "quantity_on_hand": 999}, params={"id": cap})
        assert assert_envelope(r)["data"]["quantity_on_hand"] == 0

        # List items: ?category=Filters&per_page=25.
        for n in range(3):
            await api.post(INV, {"part_number": f"FLT-10{n}", "part_name": f"Filter {n}", "category": "Filters"})
        r = await api.get(INV, params={"category": "Filters", "per_page": 25})
        body = assert_envelope(r)
        assert_pagination(body, page=1, per_page=25, total=4)
        for item in body["data"]:
            assert_item(item)
        assert [i["part_number"] for i in body["data"]] == ["FLT-001", "FLT-100", "FLT-101", "FLT-102"]
        assert body["data"][0]["quantity_on_hand"] == 100
        r = await api.get(INV, params={"category": "Filters", "per_page": 3, "page": 2})
        body = assert_envelope(r)
        assert_pagination(body, page=2, per_page=3, total=4)
        assert [i["part_number"] for i in body["data"]] == ["FLT-102"]
        r = await api.get(INV)
        assert_pagination(assert_envelope(r), page=1, per_page=50, total=5)
        r = await api.get(INV, params={"search": "capacitor"})
        assert [i["id"] for i in assert_envelope(r)["data"]] == [cap]
        r = await api.get(INV, params={"per_page": 101})
        assert_error(r, 400, "validation_failed")


ITEM_DEFAULTS = {
    "description": None, "category": None, "serial_number": None, "min_stock_level": 0, "reorder_quantity": 0,
    "cost_per_unit": None, "price_per_unit": None, "supplier_id": None,
}


async def test_item_errors(database_url, pool):
    async with api_client(database_url) as client:
        api = Api(client, await key_for(pool, scopes=("inventory:read", "inventory:write")))
        ids = await world(api)
        cap = assert_envelope(await api.post(INV, CAP_002), 201)["data"]["id"]
        before = await event_count(pool)

        # Create.
        assert_error(await api.post(INV, {"part_name": "x"}), 400, "missing_part_number")
        assert_error(await api.post(INV, {"part_number": "", "part_name": "x"}), 400, "missing_part_number")
        assert_error(await api.post(INV, {"part_number": "X-1"}), 400, "missing_part_name")
        assert_error(await api.post(INV, {"part_number": "X-1", "part_name": "  "}), 400, "missing_part_name")
        assert_error(await api.post(INV, {"part_number": "CAP-002", "part_name": "again"}), 400, "duplicate_part_number")

        # PUT.
        assert_error(await api.put(INV, {"part_name": "x"}, params={"id": cap}), 400, "missing_part_number")
        assert_error(await api.put(INV, {"part_number": "", "part_name": "x"}, params={"id": cap}), 400, "missing_part_number")
        assert_error(await api.put(INV, {"part_number": "CAP-002"}, params={"id": cap}), 400, "missing_part_name")
        assert_error(await api.put(INV, {"part_number": "FLT-001", "part_name": "x"}, params={"id": cap}), 400, "duplicate_part_number")
        assert_error(await api.put(INV, {"part_number": "NEW", "part_name": "x"}, params={"id": 9999}), 404, "not_found")

        # PATCH.
        assert_error(await api.patch(INV, {"part_number": ""}, params={"id": cap}), 400, "invalid_part_number")
        assert_error(await api.patch(INV, {"part_name": ""}, params={"id": cap}), 400, "invalid_part_name")
        assert_error(await api.patch(INV, {"part_number": "FLT-001"}, params={"id": cap}), 400, "duplicate_part_number")
        assert_error(await api.patch(INV, {}, params={"id": cap}), 400, "no_fields")
        assert_error(await api.patch(INV, {"colour": "red"}, params={"id": cap}), 400, "no_fields")
        assert_error(await api.patch(INV, {"min_stock_level": 1}, params={"id": 9999}), 404, "not_found")

        # Get.
        assert_error(await api.get(INV, params={"id": 9999}), 404, "not_found")
        assert_error(await api.get(INV, params={"id": 9999, "sub": "stock"}), 404, "not_found")
        assert_error(await api.get(INV, params={"id": 9999, "sub": "transactions"}), 404, "not_found")
        assert_error(await api.get(INV, params={"sub": "locations", "location_id": 9999}), 404, "not_found")
        assert await event_count(pool) == before

        # Nothing changed: the items are as they were, and the refused part numbers are free.
        r = await api.get(INV, params={"id": cap})
        assert assert_envelope(r)["data"]["item"]["part_number"] == "CAP-002"
        r = await api.get(INV)
        assert sorted(i["part_number"] for i in assert_envelope(r)["data"]) == ["CAP-002", "FLT-001"]
        assert_envelope(await api.post(INV, {"part_number": "X-1", "part_name": "now fine"}), 201)
        assert ids["filter"] in [i["id"] for i in assert_envelope(await api.get(INV))["data"]]


async def test_stock_adjust_and_transactions(database_url, pool):
    async with api_client(database_url) as client:
        api = Api(client, await key_for(pool, scopes=("inventory:read", "inventory:write", "inventory:transfer")))
        ids = await world(api)
        item, warehouse = ids["filter"], ids["warehouse"]

        # Adjust stock: the add and remove examples.
        r = await api.post(INV, {"location_id": warehouse, "quantity": 25, "reason": "Shipment received from supplier"},
                           params={"id": item, "sub": "adjust"})
        body = assert_envelope(r)
        assert body["data"] == {"new_quantity": 125} and body["message"] == "Stock adjusted"
        r = await api.post(INV, {"location_id": warehouse, "quantity": -5, "reason": "Damaged units removed from inventory"},
                           params={"id": item, "sub": "adjust"})
        body = assert_envelope(r)
        assert body["data"] == {"new_quantity": 120} and body["message"] == "Stock adjusted"
        assert r.headers["X-Ledger-Position"] == str(body["position"])
        r = await api.post(INV, {"location_id": ids["van"], "quantity": 50, "reason": "Van loaded"},
                           params={"id": item, "sub": "adjust"})
        assert assert_envelope(r)["data"] == {"new_quantity": 50}

        # Get item stock: a list of stock entries with item_id beside it.
        r = await api.get(INV, params={"id": item, "sub": "stock"})
        body = assert_envelope(r)
        assert body["item_id"] == item
        for entry in body["data"]:
            assert_shape(entry, STOCK_ENTRY_FIELDS)
        by_location = {e["location_id"]: e for e in body["data"]}
        assert set(by_location) == {warehouse, ids["van"]}
        assert by_location[warehouse] | {"last_updated": None} == {
            "location_id": warehouse, "location_name": "Main Warehouse", "location_type": "warehouse",
            "quantity": 120, "reserved_quantity": 0, "available": 120, "last_updated": None,
        }
        assert by_location[ids["van"]]["location_name"] == VAN and by_location[ids["van"]]["location_type"] == "vehicle"
        r = await api.get(INV, params={"id": item})
        assert assert_envelope(r)["data"]["item"]["quantity_on_hand"] == 170

        # Get item transactions, filtered by type=Adjust: newest first, signed quantities.
        r = await api.get(INV, params={"id": item, "sub": "transactions", "type": "Adjust"})
        body = assert_envelope(r)
        assert body["item_id"] == item
        assert_pagination(body, page=1, per_page=50, total=3)
        for t in body["data"]:
            assert_shape(t, TRANSACTION_FIELDS)
            assert t["transaction_type"] == "Adjust" and t["user_name"] == "API"
            assert t["related_location_id"] is None and t["related_location_name"] is None and t["job_id"] is None
        assert [(t["quantity"], t["location_id"], t["notes"]) for t in body["data"]] == [
            (50, ids["van"], "Van loaded"),
            (-5, warehouse, "Damaged units removed from inventory"),
            (25, warehouse, "Shipment received from supplier"),
        ]
        assert body["data"][1]["location_name"] == "Main Warehouse"
        assert body["data"][0]["id"] > body["data"][1]["id"] > body["data"][2]["id"]
        r = await api.get(INV, params={"id": item, "sub": "transactions"})
        body = assert_envelope(r)
        assert [t["transaction_type"] for t in body["data"]] == ["Adjust", "Adjust", "Adjust", "Add"]
        assert body["data"][-1]["quantity"] == 100
        r = await api.get(INV, params={"id": item, "sub": "transactions", "per_page": 2, "page": 2})
        body = assert_envelope(r)
        assert_pagination(body, page=2, per_page=2, total=4)
        assert [t["transaction_type"] for t in body["data"]] == ["Adjust", "Add"]
        r = await api.get(INV, params={"id": item, "sub": "transactions", "type": "Bogus"})
        assert_error(r, 400, "validation_failed")

        # Adjust errors, each with its documented status; none writes anything.
        before = await event_count(pool)
        adjust = {"id": item, "sub": "adjust"}
        cases = [
            ({"quantity": 5, "reason": "r"}, 400, "missing_location_id"),
            ({"location_id": warehouse, "reason": "r"}, 400, "missing_quantity"),
            ({"location_id": warehouse, "quantity": "five", "reason": "r"}, 400, "missing_quantity"),
            ({"location_id": warehouse, "quantity": 5}, 400, "missing_reason"),
            ({"location_id": warehouse, "quantity": 0, "reason": "r"}, 400, "invalid_quantity"),
            ({"location_id": 9999, "quantity": 5, "reason": "r"}, 400, "location_not_found"),
            ({"location_id": warehouse, "quantity": -121, "reason": "r"}, 400, "insufficient_stock"),
        ]
        for body, status, code in cases:
            assert_error(await api.post(INV, body, params=adjust), status, code)
        r = await api.post(INV, {"location_id": warehouse, "quantity": 5, "reason": "r"}, params={"id": 9999, "sub": "adjust"})
        assert_error(r, 404, "not_found")
        assert await event_count(pool) == before


async def test_transfer_examples_and_errors(database_url, pool):
    async with api_client(database_url) as client:
        api = Api(client, await key_for(pool, scopes=("inventory:read", "inventory:write", "inventory:transfer")))
        ids = await world(api)
        item, warehouse, van = ids["filter"], ids["warehouse"], ids["van"]
        await api.post(INV, {"location_id": van, "quantity": 50, "reason": "Van loaded"}, params={"id": item, "sub": "adjust"})

        # The example: 10 from the warehouse to the van.
        r = await api.post(INV, {"item_id": item, "from_location_id": warehouse, "to_location_id": van, "quantity": 10,
                                 "notes": "Restocking service van for Monday jobs"}, params={"sub": "transfer"})
        body = assert_envelope(r)
        assert body["message"] == "Stock transferred"
        assert body["data"]["from_location"] == {"location_id": warehouse, "location_name": "Main Warehouse", "new_quantity": 90}
        assert body["data"]["to_location"] == {"location_id": van, "location_name": VAN, "new_quantity": 60}

        # Two transaction records: Transfer_out at the source, Transfer_in at the destination.
        r = await api.get(INV, params={"id": item, "sub": "transactions", "type": "Transfer_out"})
        (out,) = assert_envelope(r)["data"]
        assert_shape(out, TRANSACTION_FIELDS)
        assert (out["quantity"], out["location_id"], out["location_name"], out["related_location_id"], out["related_location_name"]) == (
            -10, warehouse, "Main Warehouse", van, VAN)
        assert out["notes"] == "Restocking service van for Monday jobs" and out["user_name"] == "API"
        r = await api.get(INV, params={"id": item, "sub": "transactions", "type": "Transfer_in"})
        (into,) = assert_envelope(r)["data"]
        assert (into["quantity"], into["location_id"], into["related_location_id"], into["related_location_name"]) == (
            10, van, warehouse, "Main Warehouse")

        # Transfers check available stock (total minus reserved): 90 there, 20 held, 70 can go.
        r = await api.post("/api/v1/jobs/41/reservations", {"items": [{"item_id": item, "location_id": warehouse, "quantity": 20}]})
        assert_envelope(r, 201)
        r = await api.get(INV, params={"id": item, "sub": "stock"})
        entry = next(e for e in assert_envelope(r)["data"] if e["location_id"] == warehouse)
        assert (entry["quantity"], entry["reserved_quantity"], entry["available"]) == (90, 20, 70)
        r = await api.get(INV, params={"id": item, "sub": "transactions", "type": "Reserve"})
        (reserve,) = assert_envelope(r)["data"]
        assert reserve["job_id"] == 41 and reserve["location_id"] == warehouse
        before = await event_count(pool)
        transfer = {"item_id": item, "from_location_id": warehouse, "to_location_id": van}
        body = assert_error(await api.post(INV, {**transfer, "quantity": 71}, params={"sub": "transfer"}), 400, "insufficient_stock")
        assert body["available_quantity"] == 70
        assert await event_count(pool) == before
        r = await api.post(INV, {**transfer, "quantity": 70}, params={"sub": "transfer"})
        assert assert_envelope(r)["data"]["from_location"]["new_quantity"] == 20

        # Every documented transfer error, with its status; none writes anything.
        before = await event_count(pool)
        cases = [
            ({"from_location_id": warehouse, "to_location_id": van, "quantity": 1}, 400, "missing_item_id"),
            ({"item_id": item, "to_location_id": van, "quantity": 1}, 400, "missing_from_location_id"),
            ({"item_id": item, "from_location_id": warehouse, "quantity": 1}, 400, "missing_to_location_id"),
            ({**transfer, "quantity": 0}, 400, "invalid_quantity"),
            ({**transfer, "quantity": -3}, 400, "invalid_quantity"),
            ({**transfer, "quantity": 1.5}, 400, "invalid_quantity"),
            ({**transfer, "quantity": "3"}, 400, "invalid_quantity"),
            ({**transfer, "to_location_id": warehouse, "quantity": 1}, 400, "same_location"),
            ({**transfer, "from_location_id": 9999, "quantity": 1}, 400, "from_location_not_found"),
            ({**transfer, "to_location_id": 9999, "quantity": 1}, 400, "to_location_not_found"),
            ({**transfer, "from_location_id": ids["tech"], "quantity": 1}, 400, "no_stock"),
            ({**transfer, "quantity": 21}, 400, "insufficient_stock"),
            ({**transfer, "item_id": 9999, "quantity": 1}, 404, "item_not_found"),
        ]
        for body, status, code in cases:
            assert_error(await api.post(INV, body, params={"sub": "transfer"}), status, code)
        assert await event_count(pool) == before


async def test_locations_and_low_stock(database_url, pool):
    async with api_client(database_url) as client:
        api = Api(client, await key_for(pool, scopes=("inventory:read", "inventory:write")))
        ids = await world(api)
        closed = await api.location("Old depot", location_type="warehouse", is_active=False)
        warehouse = ids["warehouse"]
        cap = assert_envelope(await api.post(INV, {**CAP_002, "quantity_on_hand": 30}), 201)["data"]["id"]
        r = await api.post("/api/v1/jobs/5/reservations", {"items": [{"item_id": ids["filter"], "location_id": warehouse, "quantity": 5}]})
        assert_envelope(r, 201)

        # List locations, ?type=warehouse: active ones by default; active_only=false adds the rest.
        r = await api.get(INV, params={"sub": "locations", "type": "warehouse"})
        body = assert_envelope(r)
        assert_pagination(body, page=1, per_page=50, total=1)
        (location,) = body["data"]
        assert_shape(location, LOCATION_FIELDS)
        assert {k: location[k] for k in ("id", "location_name", "location_type", "address", "city", "state", "zip", "is_active")} == {
            "id": warehouse, "location_name": "Main Warehouse", "location_type": "warehouse",
            "address": "123 Industrial Blvd", "city": "Tampa", "state": "FL", "zip": "33601", "is_active": True,
        }
        r = await api.get(INV, params={"sub": "locations", "type": "warehouse", "active_only": "false"})
        body = assert_envelope(r)
        assert [(loc["id"], loc["is_active"]) for loc in body["data"]] == [(warehouse, True), (closed, False)]
        r = await api.get(INV, params={"sub": "locations"})
        body = assert_envelope(r)
        assert_pagination(body, page=1, per_page=50, total=3)
        for loc in body["data"]:
            assert_shape(loc, LOCATION_FIELDS)
        r = await api.get(INV, params={"sub": "locations", "type": "vehicle"})
        assert [loc["location_name"] for loc in assert_envelope(r)["data"]] == [VAN]

        # Get a single location: the location and a summary of what is stocked there.
        r = await api.get(INV, params={"sub": "locations", "location_id": warehouse})
        data = assert_envelope(r)["data"]
        assert set(data) == {"location", "stock_summary"}
        assert_shape(data["location"], LOCATION_FIELDS)
        assert data["location"] == location
        for line in data["stock_summary"]:
            assert_shape(line, STOCK_SUMMARY_FIELDS, exact=False)
        summary = {line["part_number"]: {k: line[k] for k in STOCK_SUMMARY_FIELDS} for line in data["stock_summary"]}
        assert summary == {
            "FLT-001": {"part_name": "HVAC Air Filter 20x25x1", "part_number": "FLT-001", "quantity": 100, "reserved_quantity": 5, "available": 95},
            "CAP-002": {"part_name": "Run Capacitor 35/5 MFD", "part_number": "CAP-002", "quantity": 30, "reserved_quantity": 0, "available": 30},
        }

        # Low stock: min_stock_level > 0 and quantity_on_hand <= it, most critical first.
        thermostat = {
            "part_number": "THM-001", "part_name": "Thermostat Wire 18/5", "category": "Wire & Cable",
            "quantity_on_hand": 3, "min_stock_level": 10, "reorder_quantity": 20, "cost_per_unit": 0.45, "price_per_unit": 0.89,
        }
        thm = assert_envelope(await api.post(INV, thermostat), 201)["data"]["id"]
        empty = assert_envelope(await api.post(INV, {"part_number": "EMP-1", "part_name": "Empty", "min_stock_level": 5}), 201)["data"]["id"]
        at_min = assert_envelope(await api.post(INV, {"part_number": "MIN-1", "part_name": "At min", "min_stock_level": 4, "quantity_on_hand": 4}), 201)["data"]["id"]
        await api.post(INV, {"part_number": "ZERO-1", "part_name": "No minimum"})  # min 0: never low
        await api.patch(INV, {"min_stock_level": 30}, params={"id": cap})  # 30 of 30: at its minimum
        r = await api.get(INV, params={"sub": "low-stock"})
        body = assert_envelope(r)
        assert_pagination(body, page=1, per_page=50, total=4)
        for item in body["data"]:
            assert_item(item)
        assert [i["id"] for i in body["data"]] == [empty, thm, cap, at_min]
        low = body["data"][1]
        assert {k: low[k] for k in thermostat if k != "quantity_on_hand"} == {k: v for k, v in thermostat.items() if k != "quantity_on_hand"}
        assert low["quantity_on_hand"] == 3 and low["description"] is None
        r = await api.get(INV, params={"sub": "low-stock", "per_page": 2, "page": 2})
        body = assert_envelope(r)
        assert_pagination(body, page=2, per_page=2, total=4)
        assert [i["id"] for i in body["data"]] == [cap, at_min]
        r = await api.get(INV, params={"low_stock": "true"})
        assert sorted(i["id"] for i in assert_envelope(r)["data"]) == sorted([empty, thm, cap, at_min])


async def test_general_errors(database_url, pool):
    async with api_client(database_url) as client:
        api = Api(client, await key_for(pool))
        ids = await world(api)
        item = ids["filter"]
        before = await event_count(pool)
        json_headers = {"Content-Type": "application/json"}

        # invalid_json, validation_failed (with details).
        assert_error(await api.post(INV, content=b'{"part_number": "X",', headers=json_headers), 400, "invalid_json")
        r = await api.post(INV, content=b"{oops}", headers=json_headers, params={"id": item, "sub": "adjust"})
        assert_error(r, 400, "invalid_json")
        assert_error(await api.patch(INV, content=b"[1,", headers=json_headers, params={"id": item}), 400, "invalid_json")
        body = assert_error(await api.post(INV, {"part_number": "X", "part_name": "Y", "min_stock_level": "ten"}), 400, "validation_failed")
        assert body["details"] and body["details"][0]["field"] == "min_stock_level"
        assert_error(await api.post(INV, {"part_number": "X", "part_name": "Y", "cost_per_unit": -1}), 400, "validation_failed")
        assert_error(await api.patch(INV, {"supplier_id": "abc"}, params={"id": item}), 400, "validation_failed")
        assert_error(await api.get(INV, params={"id": "abc"}), 400, "validation_failed")
        assert_error(await api.get(INV, params={"page": 0}), 400, "validation_failed")
        r = await api.post(INV, {"location_id": ids["warehouse"], "quantity": 1, "reason": "r", "extra": 1},
                           params={"id": item, "sub": "adjust"})
        assert_error(r, 400, "validation_failed")

        # unauthorized: no key, an unknown key, as X-API-Key or Bearer.
        assert_error(await client.get(INV), 401, "unauthorized")
        assert_error(await client.get(INV, headers={"X-API-Key": "ldg_nope"}), 401, "unauthorized")
        assert_error(await client.get(INV, headers={"Authorization": "Bearer ldg_nope"}), 401, "unauthorized")
        assert_error(await client.post(INV, json={"part_number": "A", "part_name": "B"}), 401, "unauthorized")

        # insufficient_scope: a read key may not write, a write key may not transfer.
        reader = await key_for(pool, scopes=("inventory:read",))
        writer = await key_for(pool, scopes=("inventory:write",))
        assert_error(await client.post(INV, json={"part_number": "A", "part_name": "B"}, headers=reader), 403, "insufficient_scope")
        r = await client.post(INV, json={"item_id": item, "from_location_id": ids["warehouse"], "to_location_id": ids["van"], "quantity": 1},
                              params={"sub": "transfer"}, headers=writer)
        assert_error(r, 403, "insufficient_scope")

        # method_not_allowed: only GET, POST, PUT and PATCH.
        for key in (api.headers, reader, {}):
            assert_error(await client.delete(INV, params={"id": item}, headers=key), 405, "method_not_allowed")

        # not_found: unknown operations.
        assert_error(await api.get(INV, params={"sub": "nope"}), 404, "not_found")
        assert_error(await api.post(INV, {}, params={"sub": "nope"}), 404, "not_found")
        assert_error(await api.put(INV, {"part_number": "A", "part_name": "B"}), 404, "not_found")
        assert await event_count(pool) == before


async def test_rate_limit_exceeded(database_url, pool):
    async with api_client(database_url, rate_limit=3) as client:
        headers = await key_for(pool)
        for n in range(3):
            r = await client.get(INV, headers=headers)
            assert r.status_code == 200, r.text
            assert r.headers["X-RateLimit-Limit"] == "3" and r.headers["X-RateLimit-Remaining"] == str(2 - n)
        body = assert_error(await client.get(INV, headers=headers), 429, "rate_limit_exceeded")
        r = await client.post(INV, json={"part_number": "A", "part_name": "B"}, headers=headers)
        body = assert_error(r, 429, "rate_limit_exceeded")
        assert int(r.headers["Retry-After"]) >= 1 and body["retry_after"] == int(r.headers["Retry-After"])
        assert int(r.headers["X-RateLimit-Reset"]) >= int(time.time())
        assert await pool.fetchval("SELECT count(*) FROM events WHERE type = 'ItemCreated'") == 0


async def test_reads_wait_for_min_position(database_url, pool, monkeypatch):
    """Read-after-write on the seed 004 surface too: min_position (or the header) ahead of
    the read models is refused, never answered from a model that is behind; a position
    beyond anything the ledger handed out is the caller's mistake."""
    monkeypatch.setattr("api.consistency.WAIT_SECONDS", 0.1)
    async with api_client(database_url, projector=False) as client:  # nothing projects
        headers = await key_for(pool)
        made = await client.post("/api/v1/locations", json={"location_name": "Main"}, headers=headers)
        ahead = made.headers["X-Ledger-Position"]
        for params in ({}, {"sub": "locations"}):
            r = await client.get(INV, params={**params, "min_position": ahead}, headers=headers)
            assert_error(r, 503, "not_caught_up")
        for params in ({"id": 1, "sub": "stock"}, {"sub": "low-stock"}):
            r = await client.get(INV, params=params, headers={**headers, "X-Ledger-Min-Position": ahead})
            assert_error(r, 503, "not_caught_up")
        r = await client.get(INV, params={"min_position": str(2**62)}, headers=headers)
        assert_error(r, 400, "unknown_position")
        assert_error(await client.get(INV, params={"min_position": -1}, headers=headers), 400, "validation_failed")
        r = await client.get(INV, headers={**headers, "X-Ledger-Min-Position": "soon"})
        assert_error(r, 400, "validation_failed")
