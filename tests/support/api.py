"""Helpers shared by the HTTP contract tests (tests/test_api_*.py); no tests of its own.

`Api` wraps the test client with one key's headers and remembers the ledger position of
the last command it sent, so every read it makes asks for at least that position
(`X-Ledger-Min-Position`): the tests read their own writes without sleeping.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any

# The objects of seed 004, field by field: name -> the JSON types it may have.
NULL = type(None)
ITEM_FIELDS = {
    "id": (int,), "part_number": (str,), "part_name": (str,), "description": (str, NULL),
    "category": (str, NULL), "serial_number": (str, NULL), "quantity_on_hand": (int,),
    "min_stock_level": (int,), "reorder_quantity": (int,), "cost_per_unit": (float, NULL),
    "price_per_unit": (float, NULL), "supplier_id": (int, NULL), "created_at": (str,), "updated_at": (str,),
}
STOCK_ENTRY_FIELDS = {
    "location_id": (int,), "location_name": (str, NULL), "location_type": (str, NULL), "quantity": (int,),
    "reserved_quantity": (int,), "available": (int,), "last_updated": (str,),
}
TRANSACTION_FIELDS = {
    "id": (int,), "transaction_type": (str,), "quantity": (int,), "location_id": (int, NULL),
    "location_name": (str, NULL), "related_location_id": (int, NULL), "related_location_name": (str, NULL),
    "job_id": (int, NULL), "user_name": (str, NULL), "notes": (str, NULL), "created_at": (str,),
}
LOCATION_FIELDS = {
    "id": (int,), "location_name": (str,), "location_type": (str,), "address": (str, NULL), "city": (str, NULL),
    "state": (str, NULL), "zip": (str, NULL), "is_active": (bool,), "created_at": (str,), "updated_at": (str,),
}
STOCK_SUMMARY_FIELDS = {
    "part_name": (str,), "part_number": (str,), "quantity": (int,), "reserved_quantity": (int,), "available": (int,),
}
PAGINATION_FIELDS = {"page": (int,), "per_page": (int,), "total": (int,), "total_pages": (int,)}
TIMESTAMP_FIELDS = {"created_at", "updated_at", "last_updated"}
TRANSACTION_TYPES = {"Add", "Remove", "Transfer_out", "Transfer_in", "Adjust", "Reserve", "Release", "Job_complete"}
LOCATION_TYPES = {"warehouse", "vehicle", "technician", "job_site", "other"}
_UTC_TIMESTAMP = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$")


def assert_shape(obj: Any, fields: dict[str, tuple[type, ...]], *, exact: bool = True) -> None:
    """`obj` has the documented fields with the documented JSON types (and, when
    `exact`, no others); timestamps are UTC ISO 8601."""
    assert isinstance(obj, dict), obj
    if exact:
        assert set(obj) == set(fields), f"fields {sorted(obj)} != documented {sorted(fields)}"
    else:
        assert set(fields) <= set(obj), f"missing {sorted(set(fields) - set(obj))}"
    for name, types in fields.items():
        value = obj[name]
        # JSON has no bool/int distinction problem the other way: a bool is not an int here.
        ok = any(type(value) is t for t in types)
        assert ok, f"{name}={value!r} is not {types}"
        if name in TIMESTAMP_FIELDS:
            assert _UTC_TIMESTAMP.match(value), f"{name}={value!r} is not a UTC timestamp"
            datetime.fromisoformat(value.replace("Z", "+00:00"))


def assert_item(obj: Any) -> None:
    assert_shape(obj, ITEM_FIELDS)


def assert_pagination(body: dict, *, page: int, per_page: int, total: int) -> None:
    assert_shape(body["pagination"], PAGINATION_FIELDS)
    assert body["pagination"] == {
        "page": page, "per_page": per_page, "total": total, "total_pages": -(-total // per_page),
    }


def assert_envelope(r, status: int = 200) -> dict:
    """A success envelope with its request id, in the body and as X-Request-ID."""
    assert r.status_code == status, r.text
    body = r.json()
    assert body["success"] is True, body
    assert "data" in body
    assert isinstance(body["request_id"], str) and body["request_id"], body
    assert r.headers["X-Request-ID"] == body["request_id"]
    return body


def assert_error(r, status: int, code: str) -> dict:
    """The error envelope: `success: false`, the code, a human message, the request id."""
    assert r.status_code == status, f"expected {status} {code}, got {r.status_code}: {r.text}"
    body = r.json()
    assert body["success"] is False and body["error"] == code, body
    assert isinstance(body["message"], str) and body["message"], body
    assert isinstance(body["request_id"], str) and r.headers["X-Request-ID"] == body["request_id"], body
    return body


async def event_count(pool) -> int:
    return await pool.fetchval("SELECT count(*) FROM events")


class Api:
    """A test client speaking as one key, reading at least its own last write."""

    def __init__(self, client, headers: dict[str, str]) -> None:
        self.client = client
        self.headers = headers
        self.position = 0

    def _track(self, r):
        if "X-Ledger-Position" in r.headers:
            self.position = max(self.position, int(r.headers["X-Ledger-Position"]))
        return r

    def _headers(self, extra: dict[str, str] | None, read: bool) -> dict[str, str]:
        headers = dict(self.headers)
        if read and self.position:
            headers["X-Ledger-Min-Position"] = str(self.position)
        return {**headers, **(extra or {})}

    async def get(self, path: str, *, headers: dict[str, str] | None = None, **kw):
        return await self.client.get(path, headers=self._headers(headers, True), **kw)

    async def post(self, path: str, json: Any = None, *, headers: dict[str, str] | None = None, **kw):
        kw = {"json": json, **kw} if json is not None else kw
        return self._track(await self.client.post(path, headers=self._headers(headers, False), **kw))

    async def put(self, path: str, json: Any = None, *, headers: dict[str, str] | None = None, **kw):
        kw = {"json": json, **kw} if json is not None else kw
        return self._track(await self.client.put(path, headers=self._headers(headers, False), **kw))

    async def patch(self, path: str, json: Any = None, *, headers: dict[str, str] | None = None, **kw):
        kw = {"json": json, **kw} if json is not None else kw
        return self._track(await self.client.patch(path, headers=self._headers(headers, False), **kw))

    async def delete(self, path: str, *, headers: dict[str, str] | None = None, **kw):
        return self._track(await self.client.delete(path, headers=self._headers(headers, False), **kw))

    async def request(self, method: str, path: str, *, headers: dict[str, str] | None = None, **kw):
        read = method.upper() == "GET"
        return self._track(await self.client.request(method, path, headers=self._headers(headers, read), **kw))

    # --- builders ---------------------------------------------------------------------

    async def location(self, name: str, **fields) -> int:
        r = await self.post("/api/v1/locations", {"location_name": name, **fields})
        return assert_envelope(r, 201)["data"]["id"]

    async def item(self, part_number: str, part_name: str = "Part", **fields) -> int:
        r = await self.post("/api/v1/items", {"part_number": part_number, "part_name": part_name, **fields})
        return assert_envelope(r, 201)["data"]["id"]

    async def add(self, item_id: int, location_id: int, quantity: int) -> dict:
        r = await self.post(f"/api/v1/items/{item_id}/add", {"location_id": location_id, "quantity": quantity})
        return assert_envelope(r)["data"]
