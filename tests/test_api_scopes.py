"""Scope × route: every route called with a key holding exactly one scope.

DESIGN 6: `inventory:write` implies `inventory:read`; `inventory:transfer` allows
transfers only and implies nothing; `keys:manage` is for `/api-keys`; seed 004's table
for `/api/v1/inventory`. A refused request is `403 insufficient_scope` and writes
nothing; an allowed one is carried out (each request below succeeds when allowed).

One database and one app for the whole matrix (built once per module), so the matrix
stays fast; each case's request is built to succeed whenever its scope allows it, in any
order.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

import asyncpg
import pytest
import pytest_asyncio

from ledger.db import create_pool
from ledger.keys import ALL_SCOPES
from tests.conftest import with_database
from tests.support.api import Api, assert_envelope, assert_error, event_count
from tests.support.api_client import api_client, key_for

READ, WRITE, TRANSFER = "inventory:read", "inventory:write", "inventory:transfer"
EVENTS, WEBHOOKS, KEYS = "events:read", "webhooks:manage", "keys:manage"
IMPLIES = {WRITE: {READ}}
V1, INV = "/api/v1", "/api/v1/inventory"


def unique() -> str:
    return uuid.uuid4().hex[:10]


# (name, needed scope, success status, request factory: ids -> (method, path, params, body))
ROUTES = [
    ("list items", READ, 200, lambda w: ("GET", f"{V1}/items", None, None)),
    ("create item", WRITE, 201, lambda w: ("POST", f"{V1}/items", None, {"part_number": unique(), "part_name": "x"})),
    ("get item", READ, 200, lambda w: ("GET", f"{V1}/items/{w['item']}", None, None)),
    ("replace item", WRITE, 200, lambda w: ("PUT", f"{V1}/items/{w['item']}", None, {"part_number": "FLT-001", "part_name": unique()})),
    ("change item", WRITE, 200, lambda w: ("PATCH", f"{V1}/items/{w['item']}", None, {"description": unique()})),
    ("archive item", WRITE, 200, lambda w: ("DELETE", f"{V1}/items/{w['archivable']}", None, None)),
    ("item stock", READ, 200, lambda w: ("GET", f"{V1}/items/{w['item']}/stock", None, None)),
    ("item transactions", READ, 200, lambda w: ("GET", f"{V1}/items/{w['item']}/transactions", {"type": "Add"}, None)),
    ("adjust", WRITE, 200, lambda w: ("POST", f"{V1}/items/{w['item']}/adjust", None, {"location_id": w["warehouse"], "quantity": 1, "reason": "r"})),
    ("add", WRITE, 200, lambda w: ("POST", f"{V1}/items/{w['item']}/add", None, {"location_id": w["warehouse"], "quantity": 1})),
    ("remove", WRITE, 200, lambda w: ("POST", f"{V1}/items/{w['item']}/remove", None, {"location_id": w["warehouse"], "quantity": 1})),
    ("count", WRITE, 200, lambda w: ("PUT", f"{V1}/items/{w['item']}/stock/{w['van']}", None, {"quantity": 40, "reason": "count"})),
    ("transfer", TRANSFER, 200, lambda w: ("POST", f"{V1}/transfers", None,
                                           {"item_id": w["item"], "from_location_id": w["warehouse"], "to_location_id": w["van"], "quantity": 1})),
    ("reserve", WRITE, 201, lambda w: ("POST", f"{V1}/jobs/100/reservations", None,
                                       {"items": [{"item_id": w["item"], "location_id": w["warehouse"], "quantity": 1}]})),
    ("release", WRITE, 200, lambda w: ("POST", f"{V1}/jobs/1/release", None,
                                       {"items": [{"item_id": w["item"], "location_id": w["warehouse"], "quantity": 1}]})),
    ("complete", WRITE, 200, lambda w: ("POST", f"{V1}/jobs/2/complete", None,
                                        {"items": [{"item_id": w["item"], "location_id": w["warehouse"], "quantity": 1}]})),
    ("get job", READ, 200, lambda w: ("GET", f"{V1}/jobs/3", None, None)),
    ("list locations", READ, 200, lambda w: ("GET", f"{V1}/locations", {"type": "warehouse"}, None)),
    ("create location", WRITE, 201, lambda w: ("POST", f"{V1}/locations", None, {"location_name": unique()})),
    ("get location", READ, 200, lambda w: ("GET", f"{V1}/locations/{w['warehouse']}", None, None)),
    ("change location", WRITE, 200, lambda w: ("PATCH", f"{V1}/locations/{w['van']}", None, {"city": unique()})),
    ("low stock", READ, 200, lambda w: ("GET", f"{V1}/low-stock", None, None)),
    ("create key", KEYS, 201, lambda w: ("POST", f"{V1}/api-keys", None, {"scopes": [KEYS]})),
    ("list keys", KEYS, 200, lambda w: ("GET", f"{V1}/api-keys", None, None)),
    ("revoke key", KEYS, 200, lambda w: ("DELETE", f"{V1}/api-keys/{w['victim_key']}", None, None)),
    ("batch of adds", WRITE, 200, lambda w: ("POST", f"{V1}/batches", None,
                                              {"lines": [{"kind": "add", "item_id": w["item"], "location_id": w["warehouse"], "quantity": 1}]})),
    ("batch of transfers", TRANSFER, 200, lambda w: ("POST", f"{V1}/batches", None,
                                                     {"lines": [{"kind": "transfer", "item_id": w["item"], "from_location_id": w["warehouse"],
                                                                 "to_location_id": w["van"], "quantity": 1}]})),
    # Seed 004's surface, with seed 004's scopes.
    ("seed: list items", READ, 200, lambda w: ("GET", INV, {"category": "Filters", "per_page": 25}, None)),
    ("seed: get item", READ, 200, lambda w: ("GET", INV, {"id": w["item"]}, None)),
    ("seed: item stock", READ, 200, lambda w: ("GET", INV, {"id": w["item"], "sub": "stock"}, None)),
    ("seed: transactions", READ, 200, lambda w: ("GET", INV, {"id": w["item"], "sub": "transactions", "type": "Adjust"}, None)),
    ("seed: locations", READ, 200, lambda w: ("GET", INV, {"sub": "locations", "type": "warehouse"}, None)),
    ("seed: location", READ, 200, lambda w: ("GET", INV, {"sub": "locations", "location_id": w["warehouse"]}, None)),
    ("seed: low stock", READ, 200, lambda w: ("GET", INV, {"sub": "low-stock"}, None)),
    ("seed: create", WRITE, 201, lambda w: ("POST", INV, None, {"part_number": unique(), "part_name": "x"})),
    ("seed: put", WRITE, 200, lambda w: ("PUT", INV, {"id": w["item"]}, {"part_number": "FLT-001", "part_name": unique()})),
    ("seed: patch", WRITE, 200, lambda w: ("PATCH", INV, {"id": w["item"]}, {"min_stock_level": 5})),
    ("seed: adjust", WRITE, 200, lambda w: ("POST", INV, {"id": w["item"], "sub": "adjust"},
                                            {"location_id": w["warehouse"], "quantity": 1, "reason": "r"})),
    ("seed: transfer", TRANSFER, 200, lambda w: ("POST", INV, {"sub": "transfer"},
                                                 {"item_id": w["item"], "from_location_id": w["warehouse"], "to_location_id": w["van"], "quantity": 1})),
]


def _declared_routes() -> list[tuple[str, str, str | None]]:
    """(method, path template, opt["scope"]) of every route of the app under /api/v1."""
    from api.app import create_app
    from api.settings import ApiSettings

    app = create_app(ApiSettings(database_url="postgresql://unused"))
    # Sorted: the app's route order may differ between processes (pytest-xdist workers
    # must collect the same tests).
    return sorted(
        (method, route.path, handler.opt.get("scope"))
        for route in app.routes if route.path.startswith(V1)
        for handler in route.route_handlers
        for method in sorted(handler.http_methods - {"OPTIONS", "HEAD"})
    )


def _matches(template: str, path: str) -> bool:
    """`/api/v1/items/{item_id:int}/add` matches `/api/v1/items/3/add`."""
    a, b = template.rstrip("/").split("/"), path.rstrip("/").split("/")
    return len(a) == len(b) and all(x == y or (x.startswith("{") and y != "") for x, y in zip(a, b, strict=True))


def _concrete(template: str) -> str:
    parts = []
    for part in template.split("/"):
        if part.startswith("{"):
            part = str(uuid.UUID(int=1)) if part.endswith(":uuid}") else "1"
        parts.append(part)
    return "/".join(parts)


_LISTED = {build({k: 1 for k in ("item", "archivable", "warehouse", "van", "victim_key")})[:2] for _, _, _, build in ROUTES}
# Routes added after the list was written (webhooks, events, ...) join the matrix from
# their declared scope, with an empty body: a refusal must be 403 before the body is
# read; an allowed call may end in any answer but 401, 403 or a 5xx.
GENERIC = [
    (f"{method} {template}", scope, None, lambda w, m=method, t=template: (m, _concrete(t), None, {} if m in ("POST", "PUT", "PATCH") else None))
    for method, template, scope in _declared_routes()
    if scope and not any(m == method and _matches(template, p) for m, p in _LISTED)
]


def allowed(held: str, needed: str) -> bool:
    return held == needed or needed in IMPLIES.get(held, set())


@dataclass
class Matrix:
    client: object
    pool: asyncpg.Pool
    keys: dict[str, dict[str, str]]
    ids: dict[str, int]


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def matrix(postgres_url, template_database):
    name = f"ledger_test_{uuid.uuid4().hex[:16]}"
    admin = await asyncpg.connect(postgres_url)
    await admin.execute(f'CREATE DATABASE "{name}" TEMPLATE "{template_database}"')
    url = with_database(postgres_url, name)
    pool = await create_pool(url, min_size=1, max_size=5)
    try:
        async with api_client(url) as client:
            api = Api(client, await key_for(pool))
            ids = {"warehouse": await api.location("Main Warehouse"), "van": await api.location("Van", location_type="vehicle")}
            ids["item"] = await api.item("FLT-001", "Filter", category="Filters")
            ids["archivable"] = await api.item("OLD-1", "Old part")
            await api.add(ids["item"], ids["warehouse"], 1000)
            for job in (1, 2, 3):
                r = await api.post(f"{V1}/jobs/{job}/reservations", {"items": [{"item_id": ids["item"], "location_id": ids["warehouse"], "quantity": 5}]})
                assert_envelope(r, 201)
            victim = await key_for(pool, scopes=(READ,))
            r = await client.get(f"{V1}/api-keys", headers=api.headers)
            ids["victim_key"] = max(k["key_id"] for k in assert_envelope(r)["data"])
            assert_envelope(await client.get(f"{V1}/items", headers=victim))
            keys = {scope: await key_for(pool, scopes=(scope,)) for scope in ALL_SCOPES}
            # Every read asks for the world as built: the read models have it.
            for headers in keys.values():
                headers["X-Ledger-Min-Position"] = str(api.position)
            yield Matrix(client, pool, keys, ids)
    finally:
        await pool.close()
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()


@pytest.mark.parametrize("held", ALL_SCOPES)
@pytest.mark.parametrize(("name", "needed", "status", "build"), ROUTES + GENERIC, ids=[r[0] for r in ROUTES + GENERIC])
async def test_scope_matrix(matrix: Matrix, held, name, needed, status, build):
    method, path, params, body = build(matrix.ids)
    kw = {"params": params} | ({"json": body} if body is not None else {})
    before = await event_count(matrix.pool)
    r = await matrix.client.request(method, path, headers=matrix.keys[held], **kw)
    if allowed(held, needed) and status is None:
        assert r.status_code not in (401, 403) and r.status_code < 500, f"{held} on {name}: {r.text}"
    elif allowed(held, needed):
        assert r.status_code == status, f"{held} on {name}: {r.text}"
        assert r.json()["success"] is True
    else:
        assert_error(r, 403, "insufficient_scope")
        assert needed in r.json()["message"]
        assert await event_count(matrix.pool) == before


def test_every_route_declares_its_scope():
    """Every route under /api/v1 is in the matrix: listed above, or by its declared scope."""
    undeclared = [
        (method, template) for method, template, scope in _declared_routes()
        if not scope and not any(m == method and _matches(template, p) for m, p in _LISTED)
    ]
    assert not undeclared, f"routes with no scope: {undeclared}"
    assert len(ROUTES) >= 37


async def test_every_route_refuses_a_key_with_no_inventory_scope(matrix: Matrix):
    """Beyond the matrix: a key whose scopes are unrelated (events, webhooks) reaches nothing."""
    headers = await key_for(matrix.pool, scopes=(EVENTS, WEBHOOKS))
    for _name, _needed, _, build in ROUTES:
        method, path, params, body = build(matrix.ids)
        kw = {"params": params} | ({"json": body} if body is not None else {})
        r = await matrix.client.request(method, path, headers=headers, **kw)
        assert_error(r, 403, "insufficient_scope")
