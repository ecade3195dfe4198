"""Read models equal a from-scratch fold of the ledger, under concurrent writers, row for row."""

from __future__ import annotations

import asyncio
import random
import time
import uuid
from collections import Counter
from datetime import UTC, datetime, timedelta

import msgspec
import pytest

from ledger import errors
from ledger.commands import (
    AddStock,
    AdjustStock,
    CompleteJob,
    Line,
    ReleaseStock,
    RemoveStock,
    ReserveStock,
    TransferStock,
    UpdateItem,
    UpdateLocation,
)
from ledger.keys import ensure_organization
from projections import READ_MODEL_NAMES, Projector, read_models, wait_for_position
from schemas import EventMetadata, ItemAttributes, LocationAttributes
from tests.support.read_models import fresh_tables
from tests.support.world import make_item, make_location

WRITERS = 16
SECONDS = 3.0
TABLES = {  # read-model table -> its key columns
    "items": "org_id, item_id",
    "stock": "org_id, item_id, location_id",
    "job_holdings": "org_id, job_id, item_id, location_id",
    "transactions": "position",
    "locations": "org_id, location_id",
}


async def head(pool) -> int:
    return await pool.fetchval("SELECT coalesce(max(position), 0) FROM events")


async def table_rows(pool, schema: str, table: str) -> list[tuple]:
    return [tuple(r) for r in await pool.fetch(f"SELECT * FROM {schema}.{table} ORDER BY {TABLES[table]}")]


# --- the oracle: the read models folded from the stored events, one by one, in Python ---

_ON_HAND = {"Add": 1, "Remove": -1, "Adjust": 1, "Transfer_in": 1, "Transfer_out": -1, "Job_complete": -1}
_ITEM_FIELDS = ("part_number", "part_name", "description", "category", "serial_number")
_LOCATION_FIELDS = ("location_name", "location_type", "address", "city", "state", "zip", "is_active")


def _ts(text: str | None) -> datetime | None:
    return datetime.fromisoformat(text) if text else None


async def folded_read_models(pool) -> dict[str, list[tuple]]:
    items, stock, holdings, transactions, locations = {}, {}, {}, {}, {}
    for e in await pool.fetch("SELECT * FROM events ORDER BY position"):
        d, org, at, kind = msgspec.json.decode(e["data"]), e["org_id"], e["recorded_at"], e["type"]
        if kind in ("ItemCreated", "ItemUpdated"):
            a = d["attributes"]
            old = items.get((org, d["item_id"]))
            items[org, d["item_id"]] = [
                org, d["item_id"], *(a.get(f) for f in _ITEM_FIELDS), old[7] if old else 0,
                a.get("min_stock_level", 0), a.get("reorder_quantity", 0), a.get("cost_per_unit"),
                a.get("price_per_unit"), a.get("supplier_id"), False, old[14] if old else at, at,
            ]
        elif kind == "ItemDeleted":
            item = items[org, d["item_id"]]
            item[13], item[15] = True, at  # deleted, updated_at
        elif kind in ("LocationCreated", "LocationUpdated"):
            a = d["attributes"]
            old = locations.get((org, d["location_id"]))
            defaults = {"location_type": "warehouse", "is_active": True}
            locations[org, d["location_id"]] = (
                org, d["location_id"], *(a.get(f, defaults.get(f)) for f in _LOCATION_FIELDS),
                old[9] if old else at, at,
            )
        else:
            n, place = d["quantity"], (org, d["item_id"], d["location_id"])
            on_hand = _ON_HAND.get(kind, 0) * n
            reserved = {"Reserve": n, "Release": -n, "Job_complete": -d.get("from_reserved", 0)}.get(kind, 0)
            items[org, d["item_id"]][7] += on_hand
            q, r, _ = stock.get(place, (0, 0, None))
            stock[place] = (q + on_hand, r + reserved, at)
            if "job_id" in d:
                key = (org, d["job_id"], d["item_id"], d["location_id"])
                h = holdings.setdefault(key, [0, 0, 0, None])
                h[0] += reserved
                h[1] += n if kind == "Job_complete" else 0
                h[2] += n if kind == "Release" else 0
                if kind == "Reserve":
                    h[3] = _ts(d.get("expires_at"))
            shown = {"Reserve": -n, "Release": n}.get(kind, on_hand)
            related = d.get("to_location_id") or d.get("from_location_id")
            notes = d.get("reason") if kind == "Adjust" else d.get("notes")
            if kind == "Release" and notes is None and d.get("reason", "requested") != "requested":
                notes = f"reservation {d['reason']}"
            user = msgspec.json.decode(e["metadata"]).get("user_name")
            transactions[e["position"]] = (
                e["position"], org, d["item_id"], kind, shown, d["location_id"], related, d.get("job_id"), user,
                notes, at,
            )
    return {
        "items": [tuple(v) for _, v in sorted(items.items())],
        "stock": [(*k, *v) for k, v in sorted(stock.items())],
        "job_holdings": [(*k, *v) for k, v in sorted(holdings.items())],
        "transactions": [v for _, v in sorted(transactions.items())],
        "locations": [v for _, v in sorted(locations.items())],
    }


# --- concurrent writers ------------------------------------------------------------------


async def make_world(store, orgs: list[int]) -> dict[int, tuple[list[int], list[int]]]:
    """Per organization: three locations and three items."""
    world = {}
    for org in orgs:
        locations = [await make_location(store, org, f"L{n}") for n in range(3)]
        items = [await make_item(store, org, min_stock_level=20) for _ in range(3)]
        world[org] = (locations, items)
    return world


async def write_concurrently(store, world: dict, *, writers: int = WRITERS, seconds: float = SECONDS,
                             pause: float = 0.0, committed: dict[int, float] | None = None) -> Counter:
    """Mixed commands from many tasks at once on a few hot items, in several organizations."""
    orgs = list(world)
    outcomes: Counter[str] = Counter()
    deadline = time.monotonic() + seconds

    def random_command(rng: random.Random, org: int):
        locations, items = world[org]
        item, location = rng.choice(items), rng.choice(locations)
        n, job = rng.randint(1, 8), rng.randint(1, 5)
        match rng.randrange(12):
            case 0 | 1 | 2:
                return AddStock(item_id=item, location_id=location, quantity=n * 2, notes=rng.choice([None, "PO"]))
            case 3:
                return RemoveStock(item_id=item, location_id=location, quantity=n)
            case 4:
                return AdjustStock(item_id=item, location_id=location, quantity=rng.choice([-n, n]), reason="count")
            case 5 | 6:
                target = rng.choice([loc for loc in locations if loc != location])
                return TransferStock(item_id=item, from_location_id=location, to_location_id=target, quantity=n,
                                     transfer_id=str(uuid.uuid4()))
            case 7:
                expires = rng.choice([None, datetime.now(UTC) + timedelta(hours=rng.randint(1, 9))])
                return ReserveStock(job_id=job, expires_at=expires, lines=[
                    Line(item_id=item, location_id=location, quantity=n),
                    Line(item_id=rng.choice(items), location_id=location, quantity=1)])
            case 8:
                return ReleaseStock(job_id=job)
            case 9:
                return CompleteJob(job_id=job, lines=rng.choice(
                    [None, [Line(item_id=item, location_id=location, quantity=n)]]))
            case 10:
                return UpdateItem(item_id=item, attributes=ItemAttributes(
                    part_number=f"P-{org}-{item}", part_name=f"part {rng.randrange(100)}",
                    min_stock_level=rng.randrange(40), price_per_unit=rng.choice([None, 1.25])))
            case _:
                return UpdateLocation(location_id=location, attributes=LocationAttributes(
                    location_name=f"L{rng.randrange(100)}", location_type=rng.choice(["warehouse", "vehicle"])))

    async def writer(seed: int) -> None:
        rng = random.Random(seed)
        while time.monotonic() < deadline:
            org = rng.choice(orgs)
            user = rng.choice([None, "API", "alice"])
            try:
                result = await store.execute(org, random_command(rng, org), metadata=EventMetadata(user_name=user))
                outcomes["accepted"] += 1
                if committed is not None:
                    committed.update((e.position, time.monotonic()) for e in result.events)
            except errors.LedgerError as refused:
                outcomes[refused.code] += 1
            if pause:
                await asyncio.sleep(pause * rng.random() * 2)

    await asyncio.gather(*(writer(seed) for seed in range(writers)))
    return outcomes


# (seconds of writing, commands that must have been accepted): the full run, and a quick one
# for the fast loop (`pytest -m "not slow"`) that races all the same.
@pytest.mark.parametrize("seconds, accepted", [pytest.param(SECONDS, 300, marks=pytest.mark.slow, id="full"),
                                               pytest.param(0.5, 30, id="quick")])
async def test_read_models_under_concurrent_writers_equal_a_fold_of_the_ledger_and_a_rebuild(
    store, pool, org_id, database_url, seconds, accepted
):
    other_org = await ensure_organization(pool, "globex")
    seen = Counter()
    projector = Projector(pool, database_url, read_models(), batch_size=50,
                          on_applied=lambda events: seen.update(e.position for e in events))
    projector.start()
    try:
        outcomes = await write_concurrently(store, await make_world(store, [org_id, other_org]), seconds=seconds)
        assert await wait_for_position(pool, await head(pool), timeout=10)
    finally:
        await projector.stop()
    assert outcomes["accepted"] > accepted, outcomes
    assert outcomes["insufficient_stock"] > 0, outcomes  # the writers really raced

    ledger = [r["position"] for r in await pool.fetch("SELECT position FROM events ORDER BY position")]
    assert sorted(seen) == ledger and set(seen.values()) == {1}  # every event, exactly once

    expected = await folded_read_models(pool)
    for table in TABLES:
        assert await table_rows(pool, "projections", table) == expected[table], table

    # The write model agrees on every level and hold.
    levels = {(r["org_id"], r["item_id"], r["location_id"]): (r["quantity"], r["reserved"])
              for r in await pool.fetch("SELECT * FROM stock_state")}
    assert {row[:3]: row[3:5] for row in expected["stock"]} == levels
    holds = {(r["org_id"], r["job_id"], r["item_id"], r["location_id"]): (r["quantity"], r["expires_at"])
             for r in await pool.fetch("SELECT * FROM reservation_state")}
    assert {row[:4]: (row[4], row[7]) for row in expected["job_holdings"] if row[4]} == holds

    # A rebuild into fresh tables, in batches cut differently, ends with the same rows.
    async with pool.acquire() as conn:
        await fresh_tables(conn, "rebuild")
    rebuild = read_models("rebuild")
    rebuilder = Projector(pool, database_url, rebuild, batch_size=1000)
    rebuilder.start()
    try:
        assert await wait_for_position(pool, ledger[-1], timeout=10, projections=[p.name for p in rebuild])
    finally:
        await rebuilder.stop()
    for table in TABLES:
        assert await table_rows(pool, "rebuild", table) == expected[table], table
    storage = "SELECT relname, reloptions FROM pg_class WHERE relnamespace = $1::regnamespace AND relkind = 'r'"
    assert sorted(map(tuple, await pool.fetch(storage, "rebuild"))) == sorted(
        map(tuple, await pool.fetch(storage, "projections")))


@pytest.mark.slow  # 2 s of steady load, for the lag it prints
async def test_every_committed_event_reaches_the_read_models_under_load(store, pool, org_id, database_url):
    """Every event a command committed under steady load is applied, each once. The lag
    (command return to rows committed) is printed, not asserted: it is measured on a quiet
    machine by tests/bench (the suite may share its machine and its server)."""
    committed: dict[int, float] = {}
    applied: dict[int, float] = {}

    def measure(events) -> None:
        now = time.monotonic()
        applied.update((e.position, now) for e in events)

    world = await make_world(store, [org_id])
    projector = Projector(pool, database_url, read_models())
    projector.start()
    try:
        assert await wait_for_position(pool, await head(pool), timeout=5)
        projector.on_applied = measure
        await asyncio.sleep(0.5)  # idle first: the projector has backed off to its slowest poll
        outcomes = await write_concurrently(store, world, writers=4, seconds=2.0, pause=0.02, committed=committed)
        assert await wait_for_position(pool, await head(pool), timeout=5)
    finally:
        await projector.stop()
    assert outcomes["accepted"] > 20, outcomes
    assert set(committed) <= set(applied), "a committed event never reached the read models"
    lags = sorted(max(applied[p] - at, 0.0) for p, at in committed.items())
    print(f"projection lag over {len(lags)} events: p50 {lags[len(lags) // 2] * 1000:.1f} ms, "
          f"p99 {lags[int(len(lags) * 0.99)] * 1000:.1f} ms")


async def test_wait_for_position_is_true_once_applied_and_false_on_timeout(store, pool, org_id, database_url):
    location = await make_location(store, org_id)
    item = await make_item(store, org_id)
    written = await store.execute(org_id, AddStock(item_id=item, location_id=location, quantity=3))
    assert not await wait_for_position(pool, written.position, timeout=0.1)  # nothing is projecting yet

    projector = Projector(pool, database_url, read_models())
    projector.start()
    try:
        assert await wait_for_position(pool, written.position, timeout=5)
        assert await wait_for_position(pool, written.position, projections=["items"], timeout=0)
        later = await store.execute(org_id, AddStock(item_id=item, location_id=location, quantity=1))
        assert await wait_for_position(pool, later.position, timeout=5)
        started = time.monotonic()
        assert not await wait_for_position(pool, later.position + 1000, timeout=0.2)
        assert time.monotonic() - started >= 0.2  # it waited its timeout out
        assert not await wait_for_position(pool, written.position, projections=["no-such-projection"], timeout=0.05)
    finally:
        await projector.stop()
    assert set(READ_MODEL_NAMES) == {p.name for p in read_models()}
