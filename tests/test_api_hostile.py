"""Hostile input on the command routes and the seed 004 surface: always a 4xx with an
`error` code in the envelope, never a 5xx, and nothing written to the ledger.

One database and one app for the module; every case counts the ledger's events before
and after. The world has stock, so a hostile body that slipped through validation would
be carried out and show up in the count.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

import asyncpg
import pytest
import pytest_asyncio

from ledger.db import create_pool
from tests.conftest import with_database
from tests.support.api import Api, assert_envelope, event_count
from tests.support.api_client import api_client, key_for

V1, INV = "/api/v1", "/api/v1/inventory"
JSON = {"Content-Type": "application/json"}
MB = 1_000_000


@dataclass
class World:
    client: object
    pool: asyncpg.Pool
    api: Api
    item: int
    location: int
    van: int


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def world(postgres_url, template_database):
    name = f"ledger_test_{uuid.uuid4().hex[:16]}"
    admin = await asyncpg.connect(postgres_url)
    await admin.execute(f'CREATE DATABASE "{name}" TEMPLATE "{template_database}"')
    url = with_database(postgres_url, name)
    pool = await create_pool(url, min_size=1, max_size=5)
    try:
        async with api_client(url) as client:
            api = Api(client, await key_for(pool))
            location = await api.location("Main Warehouse")
            van = await api.location("Van", location_type="vehicle")
            item = await api.item("FLT-001", "Filter")
            await api.add(item, location, 100)
            yield World(client, pool, api, item, location, van)
    finally:
        await pool.close()
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()


# Command routes: (name, method, path template, a valid body to corrupt).
COMMANDS = [
    ("create item", "POST", "/api/v1/items", {"part_number": "NEW-{n}", "part_name": "New"}),
    ("replace item", "PUT", "/api/v1/items/{item}", {"part_number": "FLT-001", "part_name": "Filter {n}"}),
    ("change item", "PATCH", "/api/v1/items/{item}", {"part_name": "Filter {n}"}),
    ("add", "POST", "/api/v1/items/{item}/add", {"location_id": "{location}", "quantity": 1}),
    ("remove", "POST", "/api/v1/items/{item}/remove", {"location_id": "{location}", "quantity": 1}),
    ("adjust", "POST", "/api/v1/items/{item}/adjust", {"location_id": "{location}", "quantity": 1, "reason": "r"}),
    ("count", "PUT", "/api/v1/items/{item}/stock/{location}", {"quantity": 77}),
    ("transfer", "POST", "/api/v1/transfers", {"item_id": "{item}", "from_location_id": "{location}", "to_location_id": "{van}", "quantity": 1}),
    ("reserve", "POST", "/api/v1/jobs/7/reservations", {"items": [{"item_id": "{item}", "location_id": "{location}", "quantity": 1}]}),
    ("create location", "POST", "/api/v1/locations", {"location_name": "Depot {n}"}),
    ("change location", "PATCH", "/api/v1/locations/{van}", {"location_name": "Van {n}"}),
    ("create key", "POST", "/api/v1/api-keys", {"scopes": ["inventory:read"]}),
    ("seed create", "POST", "/api/v1/inventory", {"part_number": "SEED-{n}", "part_name": "New"}),
    ("seed put", "PUT", "/api/v1/inventory?id={item}", {"part_number": "FLT-001", "part_name": "Filter {n}"}),
    ("seed patch", "PATCH", "/api/v1/inventory?id={item}", {"part_name": "Filter {n}"}),
    ("seed adjust", "POST", "/api/v1/inventory?id={item}&sub=adjust", {"location_id": "{location}", "quantity": 1, "reason": "r"}),
    ("seed transfer", "POST", "/api/v1/inventory?sub=transfer",
     {"item_id": "{item}", "from_location_id": "{location}", "to_location_id": "{van}", "quantity": 1}),
]
# Seed 004's item bodies ignore fields they do not know (an integration may send back the
# whole item it read), so an unknown field is no fault there.
LENIENT = {"seed create", "seed put", "seed patch"}
QUANTITY_ROUTES = {"add", "remove", "adjust", "count", "transfer", "seed adjust", "seed transfer"}
NAME_FIELD = {
    "create item": "part_name", "replace item": "part_name", "change item": "part_name", "seed create": "part_name",
    "seed put": "part_name", "seed patch": "part_name", "create location": "location_name", "change location": "location_name",
    "adjust": "reason", "seed adjust": "reason", "add": "notes", "remove": "notes", "transfer": "notes",
    "seed transfer": "notes", "count": "reason", "reserve": "notes", "create key": "name",
}

# Raw bodies that are not a JSON object of the right shape.
RAW_BODIES = {
    "truncated": b'{"quantity": 1',
    "garbage": b"{bad json}",
    "single quotes": b"{'quantity': 1}",
    "trailing comma": b'{"quantity": 1,}',
    "not utf-8": b'{"part_name": "\xff\xfe"}',
    "bare word": b"nul",
    "empty": b"",
    "whitespace": b"   ",
    "array": b"[]",
    "array of object": b'[{"location_id": 1, "quantity": 1}]',
    "number": b"1",
    "string": b'"hello"',
    "null": b"null",
    "true": b"true",
    "NaN": b'{"quantity": NaN}',
    "Infinity": b'{"quantity": Infinity}',
    "deep nesting": b'{"a": ' + b"[" * 10_000 + b"]" * 10_000 + b"}",
    "duplicate keys": None,  # filled per route: the valid body with the quantity twice, once bad
    "NUL escape": None,  # filled per route: a text field holding \u0000
    "lone surrogate": None,  # filled per route: a text field holding \ud800
    "5 MB body": b'{"notes": "' + b"x" * (5 * MB) + b'"}',
}


def fill(template, w: World, n: str):
    """The template with {item}, {location}, {van} as ids and {n} as a fresh suffix."""
    if isinstance(template, dict):
        return {k: fill(v, w, n) for k, v in template.items()}
    if isinstance(template, list):
        return [fill(v, w, n) for v in template]
    if isinstance(template, str):
        if template in ("{item}", "{location}", "{van}"):
            return getattr(w, template[1:-1])
        return template.replace("{n}", n)
    return template


def path_of(template: str, w: World) -> str:
    return template.replace("{item}", str(w.item)).replace("{location}", str(w.location)).replace("{van}", str(w.van))


def corrupted(name: str, valid: dict) -> list[tuple[str, dict]]:
    """(label, body) pairs: the valid body made wrong one way at a time."""
    cases = [] if name in LENIENT else [("unknown field", {**valid, "admin": True})]
    cases += [
        ("nested garbage", {**valid, **{k: {"$gt": [None, {"x": []}]} for k in list(valid)[:1]}}),
        ("all null", dict.fromkeys(valid)),
        ("object", {"": {"": {"": [1, 2, {"": None}]}}}),
    ]
    text = NAME_FIELD[name]
    cases += [
        ("1 MB string", {**valid, text: "x" * MB}),
        ("long string", {**valid, text: "x" * 5000}),
        ("text as number", {**valid, text: 12345}),
        ("text as list", {**valid, text: ["a"]}),
        ("NUL in text", {**valid, text: "a\u0000b"}),
    ]
    for field in valid:
        if field.endswith("_id"):
            cases += [
                (f"{field} 2**64", {**valid, field: 2**64}),
                (f"{field} 2**63", {**valid, field: 2**63}),
                (f"{field} string", {**valid, field: "1"}),
                (f"{field} negative", {**valid, field: -1}),
                (f"{field} zero", {**valid, field: 0}),
                (f"{field} float", {**valid, field: 1.5}),
                (f"{field} bool", {**valid, field: True}),
            ]
    if name in QUANTITY_ROUTES:
        for label, value in [
            ("2**63", 2**63), ("-2**63-1", -(2**63) - 1), ("10**30", 10**30), ("-10**30", -(10**30)),
            ("1.5", 1.5), ("1e308", 1e308), ("string", "5"), ("bool", True), ("null", None), ("list", [1]),
        ]:
            cases.append((f"quantity {label}", {**valid, "quantity": value}))
        if name != "count":
            cases += [("quantity 0", {**valid, "quantity": 0})]
        if name in ("add", "remove", "transfer", "seed transfer"):
            cases += [("quantity -1", {**valid, "quantity": -1}), ("quantity -2**63", {**valid, "quantity": -(2**63)})]
        if name == "count":
            cases += [("quantity -1", {**valid, "quantity": -1})]
    if name == "reserve":
        cases += [
            ("no lines", {"items": []}),
            ("101 lines", {"items": valid["items"] * 101}),
            ("line not an object", {"items": [1, 2]}),
            ("expires_at garbage", {**valid, "expires_at": "tomorrow"}),
            ("expires_at year 10000", {**valid, "expires_at": "10000-01-01T00:00:00Z"}),
        ]
    if name == "create key":
        cases += [
            ("unknown scope", {"scopes": ["inventory:root"]}),
            ("scopes not a list", {"scopes": "inventory:read"}),
            ("bad network", {"scopes": ["inventory:read"], "allowed_ips": ["300.1.1.1/8"]}),
            ("51 networks", {"scopes": ["inventory:read"], "allowed_ips": ["10.0.0.1"] * 51}),
        ]
    return cases


def raw_cases(name: str, valid: dict) -> list[tuple[str, bytes]]:
    text = NAME_FIELD[name]
    cases = []
    for label, body in RAW_BODIES.items():
        if label == "duplicate keys":
            encoded = _json(valid)
            body = encoded[:-1] + b', "' + text.encode() + b'": {"$ne": 1}}'
        elif label == "NUL escape":
            body = _json({**valid, text: "PLACEHOLDER"}).replace(b"PLACEHOLDER", b"x\\u0000y")
        elif label == "lone surrogate":
            body = _json({**valid, text: "PLACEHOLDER"}).replace(b"PLACEHOLDER", b"x\\ud800y")
        cases.append((label, body))
    return cases


def _json(value) -> bytes:
    import json

    return json.dumps(value).encode()


def _all_cases():
    for name, method, path, template in COMMANDS:
        for label, _ in corrupted(name, fill(template, _IDS, "0")):
            yield pytest.param(name, method, path, template, "json", label, id=f"{name}: {label}")
        for label, _ in raw_cases(name, fill(template, _IDS, "0")):
            yield pytest.param(name, method, path, template, "raw", label, id=f"{name}: raw {label}")


class _Ids:  # placeholder ids, only to enumerate the cases at collection time
    item = location = van = 1


_IDS = _Ids()


async def assert_refused(w: World, r, before: int) -> None:
    assert 400 <= r.status_code < 500, f"{r.status_code}: {r.text[:500]}"
    body = r.json()
    assert body["success"] is False and isinstance(body["error"], str) and body["error"], body
    assert isinstance(body["message"], str) and body["request_id"] == r.headers["X-Request-ID"]
    assert await event_count(w.pool) == before


@pytest.mark.parametrize(("name", "method", "path", "template", "kind", "label"), list(_all_cases()))
async def test_hostile_command_bodies(world: World, name, method, path, template, kind, label):
    valid = fill(template, world, uuid.uuid4().hex[:8])
    if kind == "json":
        body = dict(corrupted(name, valid))[label]
        kw = {"json": body}
    else:
        kw = {"content": dict(raw_cases(name, valid))[label], "headers": JSON}
    before = await event_count(world.pool)
    r = await world.api.request(method, path_of(path, world), **kw)
    await assert_refused(world, r, before)


@pytest.mark.parametrize("with_idempotency_key", [False, True])
async def test_hostile_bodies_with_an_idempotency_key(world: World, with_idempotency_key):
    """The idempotency middleware reads the body itself: the same refusals, through it."""
    headers = {**JSON, "Idempotency-Key": uuid.uuid4().hex} if with_idempotency_key else JSON
    path = f"{V1}/items/{world.item}/add"
    for body in (b"", b"{", b"[]", b"null", b'{"location_id": 1, "quantity": "1"}', b"x" * (5 * MB)):
        before = await event_count(world.pool)
        r = await world.api.post(path, content=body, headers=headers)
        await assert_refused(world, r, before)


# Paths and query strings.
HOSTILE_URLS = [
    ("GET", "/api/v1/items?per_page=10000"),
    ("GET", "/api/v1/items?per_page=0"),
    ("GET", "/api/v1/items?page=0"),
    ("GET", "/api/v1/items?page=-1"),
    ("GET", "/api/v1/items?page=abc"),
    ("GET", "/api/v1/items?page=99999999999999999999999"),
    ("GET", "/api/v1/items?per_page=1e3"),
    ("GET", "/api/v1/items?low_stock=perhaps"),
    ("GET", "/api/v1/items?min_position=99999999999999999999999"),
    ("GET", "/api/v1/items?min_position=-5"),
    ("GET", "/api/v1/items?category=" + "c" * 5000),
    ("GET", "/api/v1/items?search=" + "s" * 5000),
    ("GET", "/api/v1/items?search=%00"),
    ("GET", "/api/v1/items?category=a%00b"),
    ("GET", "/api/v1/items/abc"),
    ("GET", "/api/v1/items/1.5"),
    ("GET", "/api/v1/items/0"),
    ("GET", "/api/v1/items/-1"),
    ("GET", "/api/v1/items/99999999999999999999"),
    ("GET", "/api/v1/items/9223372036854775808"),
    ("GET", "/api/v1/items/9223372036854775808/stock"),
    ("GET", "/api/v1/items/{item}/transactions?type=" + "t" * 5000),
    ("GET", "/api/v1/items/{item}/transactions?type=%00"),
    ("GET", "/api/v1/items/{item}/transactions?per_page=10000"),
    ("POST", "/api/v1/items/abc/add"),
    ("POST", "/api/v1/items/9223372036854775808/add"),
    ("POST", "/api/v1/items/-1/adjust"),
    ("PUT", "/api/v1/items/{item}/stock/abc"),
    ("PUT", "/api/v1/items/{item}/stock/9223372036854775808"),
    ("POST", "/api/v1/jobs/9223372036854775808/reservations"),
    ("POST", "/api/v1/jobs/0/release"),
    ("POST", "/api/v1/jobs/abc/complete"),
    ("GET", "/api/v1/jobs/99999999999999999999"),
    ("GET", "/api/v1/locations?type=%00"),
    ("GET", "/api/v1/locations?type=" + "t" * 5000),
    ("GET", "/api/v1/locations?active_only=maybe"),
    ("GET", "/api/v1/locations/9223372036854775808"),
    ("PATCH", "/api/v1/locations/abc"),
    ("GET", "/api/v1/low-stock?per_page=10000"),
    ("GET", "/api/v1/low-stock?page=0"),
    ("DELETE", "/api/v1/api-keys/9223372036854775808"),
    ("DELETE", "/api/v1/api-keys/abc"),
    ("DELETE", "/api/v1/items/9223372036854775808"),
    ("GET", "/api/v1/inventory?per_page=10000"),
    ("GET", "/api/v1/inventory?page=0"),
    ("GET", "/api/v1/inventory?id=abc"),
    ("GET", "/api/v1/inventory?id=0"),
    ("GET", "/api/v1/inventory?id=9223372036854775808"),
    ("GET", "/api/v1/inventory?id=99999999999999999999999"),
    ("GET", "/api/v1/inventory?id={item}&sub=" + "x" * 5000),
    ("GET", "/api/v1/inventory?id={item}&sub=%00"),
    ("GET", "/api/v1/inventory?id={item}&sub=transactions&type=%00"),
    ("GET", "/api/v1/inventory?id={item}&sub=transactions&per_page=10000"),
    ("GET", "/api/v1/inventory?sub=locations&location_id=-5"),
    ("GET", "/api/v1/inventory?sub=locations&location_id=abc"),
    ("GET", "/api/v1/inventory?sub=locations&type=%00"),
    ("GET", "/api/v1/inventory?sub=locations&active_only=maybe"),
    ("GET", "/api/v1/inventory?sub=low-stock&per_page=10000"),
    ("GET", "/api/v1/inventory?search=%00"),
    ("GET", "/api/v1/inventory?category=%00"),
    ("GET", "/api/v1/inventory?low_stock=perhaps"),
    ("GET", "/api/v1/inventory?sub=nope"),
    ("DELETE", "/api/v1/inventory?id={item}"),
    ("POST", "/api/v1/inventory?id=abc&sub=adjust"),
    ("POST", "/api/v1/inventory?id=9223372036854775808&sub=adjust"),
    ("PUT", "/api/v1/inventory?id=-1"),
    ("PATCH", "/api/v1/inventory?id=1.5"),
    ("GET", "/api/v1/nope"),
    ("TRACE", "/api/v1/items"),
]


@pytest.mark.parametrize(("method", "url"), HOSTILE_URLS, ids=[f"{m} {u[:70]}" for m, u in HOSTILE_URLS])
async def test_hostile_urls(world: World, method, url):
    url = url.replace("{item}", str(world.item))
    before = await event_count(world.pool)
    kw = {"json": {"location_id": world.location, "quantity": 1, "reason": "r"}} if method in ("POST", "PUT", "PATCH") else {}
    r = await world.api.request(method, url, **kw)
    await assert_refused(world, r, before)


HOSTILE_HEADERS = [
    {"X-Ledger-Min-Position": "99999999999999999999999"},
    {"X-Ledger-Min-Position": "-1"},
    {"X-Ledger-Min-Position": "\u00e9t\u00e9".encode("latin-1")},
    {"X-Ledger-Min-Position": "1e3"},
    {"X-Correlation-ID": "x" * 10_000},
    {"X-Correlation-ID": b"a\x00b"},
    {"Idempotency-Key": b"a\x00b"},
    {"If-Match": "99999999999999999999999"},
    {"If-Match": "-1"},
    {"If-Match": "W/\"x\""},
    {"Idempotency-Key": "k" * 256},
    {"Idempotency-Key": "   "},
    {"X-API-Key": "k" * 10_000},
    {"Authorization": "Bearer " + "k" * 10_000},
    {"Content-Length": "abc"},
]


@pytest.mark.parametrize("headers", HOSTILE_HEADERS, ids=[str(h)[:60] for h in HOSTILE_HEADERS])
async def test_hostile_headers(world: World, headers):
    before = await event_count(world.pool)
    body = {"location_id": world.location, "quantity": 1}
    own = dict(world.api.headers)
    if "X-API-Key" in headers or "Authorization" in headers:
        own = {}
    kw = {"json": body}
    if "Content-Length" in headers:
        kw = {"content": b'{"location_id": 1, "quantity": 1}'}
    if "X-Ledger-Min-Position" in headers:
        r = await world.client.get(f"{V1}/items/{world.item}", headers={**own, **headers})
    else:
        r = await world.client.post(f"{V1}/items/{world.item}/add", headers={**own, **headers, **JSON}, **kw)
    await assert_refused(world, r, before)


async def test_unicode_round_trips(world: World):
    """Not hostile, only unusual: any Unicode text is kept as it was sent."""
    names = ["Фильтр воздушный", "空气过滤器 🔧", "Ünïcödé — “quotes” ‘’", "\u202eRTL override", "tab\there", "emoji 👩‍🔧🏳️‍🌈"]
    for n, name in enumerate(names):
        r = await world.api.post(f"{V1}/items", {"part_number": f"U-{n}-ß", "part_name": name, "description": name * 3})
        created = assert_envelope(r, 201)["data"]
        assert created["part_name"] == name and created["part_number"] == f"U-{n}-ß"
        r = await world.api.get(f"{V1}/items/{created['id']}")
        assert assert_envelope(r)["data"]["item"]["part_name"] == name
        r = await world.api.get(INV, params={"search": name[:4]})
        assert created["id"] in [i["id"] for i in assert_envelope(r)["data"]]
