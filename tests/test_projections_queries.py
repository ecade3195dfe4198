"""The queries the API serves return seed-004-shaped data, scoped to one organization."""

from __future__ import annotations

import contextlib

import msgspec
import pytest

from ledger.commands import (
    AddStock,
    AdjustStock,
    CompleteJob,
    DeleteItem,
    Line,
    ReleaseStock,
    ReserveStock,
    TransferStock,
    UpdateItem,
    UpdateLocation,
)
from ledger.keys import ensure_organization
from projections import Projector, queries, read_models, wait_for_position
from schemas import EventMetadata, ItemAttributes, LocationAttributes
from tests.support.world import make_item, make_location

SEED_ITEM_FIELDS = [
    "id", "part_number", "part_name", "description", "category", "serial_number", "quantity_on_hand",
    "min_stock_level", "reorder_quantity", "cost_per_unit", "price_per_unit", "supplier_id",
    "created_at", "updated_at",
]
SEED_STOCK_FIELDS = [
    "location_id", "location_name", "location_type", "quantity", "reserved_quantity", "available", "last_updated",
]
SEED_TRANSACTION_FIELDS = [
    "id", "transaction_type", "quantity", "location_id", "location_name", "related_location_id",
    "related_location_name", "job_id", "user_name", "notes", "created_at",
]
SEED_LOCATION_FIELDS = [
    "id", "location_name", "location_type", "address", "city", "state", "zip", "is_active", "created_at", "updated_at",
]
API = EventMetadata(user_name="API")
ALEX = EventMetadata(user_name="Alex Johnson")


def as_json(value):
    return msgspec.json.decode(msgspec.json.encode(value))


@contextlib.asynccontextmanager
async def caught_up(pool, database_url):
    """The read models, projected up to the ledger's head."""
    projector = Projector(pool, database_url, read_models())
    projector.start()
    try:
        head = await pool.fetchval("SELECT coalesce(max(position), 0) FROM events")
        assert await wait_for_position(pool, head, timeout=10)
        yield
    finally:
        await projector.stop()


@pytest.fixture
async def history(store, pool, org_id):
    """A small known history in one organization (and a little in another)."""
    main = await make_location(store, org_id, "Main Warehouse", address="123 Industrial Blvd", city="Tampa",
                               state="FL", zip="33601")
    van = await make_location(store, org_id, "Van #1", location_type="vehicle")
    closed = await make_location(store, org_id, "Old Depot", location_type="warehouse")
    await store.execute(org_id, UpdateLocation(location_id=closed, attributes=LocationAttributes(
        location_name="Old Depot", is_active=False)))
    filters = await make_item(store, org_id, "FLT-001", part_name="HVAC Air Filter 20x25x1", category="Filters",
                              min_stock_level=20, reorder_quantity=50, cost_per_unit=8.5, price_per_unit=15.99)
    capacitor = await make_item(store, org_id, "CAP-002", part_name="Run Capacitor 35/5 MFD", category="Capacitors",
                                min_stock_level=10)
    wire = await make_item(store, org_id, "THM-001", part_name="Thermostat Wire 18/5", min_stock_level=10)
    fuse = await make_item(store, org_id, "FUS-004", part_name="Fuse 5A", min_stock_level=4)
    valve = await make_item(store, org_id, "VLV-005", part_name="Valve", min_stock_level=4)
    gone = await make_item(store, org_id, "OLD-999", part_name="Discontinued filter", category="Filters")

    await store.execute(org_id, AddStock(item_id=filters, location_id=main, quantity=100, notes="PO 17"), metadata=API)
    await store.execute(org_id, TransferStock(item_id=filters, from_location_id=main, to_location_id=van,
                                              quantity=10, notes="Restocking van"), metadata=ALEX)
    await store.execute(org_id, AdjustStock(item_id=filters, location_id=main, quantity=-5,
                                            reason="Damaged units removed"), metadata=API)
    await store.execute(org_id, ReserveStock(job_id=7, lines=[Line(item_id=filters, location_id=main, quantity=4)]),
                        metadata=API)
    await store.execute(org_id, ReleaseStock(job_id=7, lines=[Line(item_id=filters, location_id=main, quantity=1)]),
                        metadata=API)
    await store.execute(org_id, CompleteJob(job_id=7, lines=[Line(item_id=filters, location_id=main, quantity=2)]),
                        metadata=API)  # consumes 2 of the 3 held, releases the last one
    await store.execute(org_id, ReserveStock(job_id=8, lines=[Line(item_id=filters, location_id=van, quantity=3)]))
    await store.execute(org_id, AddStock(item_id=capacitor, location_id=main, quantity=5))  # 5/10
    await store.execute(org_id, AddStock(item_id=wire, location_id=van, quantity=3))  # 3/10
    await store.execute(org_id, AddStock(item_id=valve, location_id=main, quantity=2))  # 2/4: same ratio as 5/10
    # fuse: nothing on hand, the most critical
    await store.execute(org_id, DeleteItem(item_id=gone))
    renamed = await store.execute(org_id, UpdateLocation(location_id=van, attributes=LocationAttributes(
        location_name="Van #1 — Alex Johnson", location_type="vehicle")))
    updated = await store.execute(org_id, UpdateItem(item_id=filters, attributes=ItemAttributes(
        part_number="FLT-001", part_name="HVAC Air Filter 20x25x1", category="Filters", min_stock_level=20,
        reorder_quantity=50, cost_per_unit=8.5, price_per_unit=16.49)))
    await store.execute(org_id, AddStock(item_id=filters, location_id=main, quantity=1))  # after the update

    other_org = await ensure_organization(pool, "globex")
    other_location = await make_location(store, other_org, "Globex Warehouse")
    other_item = await make_item(store, other_org, "FLT-001", part_name="Their filter", min_stock_level=5)
    return dict(main=main, van=van, closed=closed, filters=filters, capacitor=capacitor, wire=wire, fuse=fuse,
                valve=valve, gone=gone, other_org=other_org, other_location=other_location, other_item=other_item,
                renamed_at=renamed.events[0].recorded_at, updated_at=updated.events[0].recorded_at)


async def test_an_item_reads_as_seed_004_item_object(pool, database_url, org_id, history):
    async with caught_up(pool, database_url):
        item = await queries.get_item(pool, org_id, history["filters"])
    body = as_json(item)
    assert list(body) == SEED_ITEM_FIELDS
    assert body["id"] == history["filters"]
    assert body["quantity_on_hand"] == 100 - 5 - 2 + 1  # a transfer moves stock, it does not change the total
    assert (body["part_number"], body["category"], body["price_per_unit"], body["serial_number"]) == (
        "FLT-001", "Filters", 16.49, None)
    # updated_at dates the last change of the item record, not the last stock movement
    assert item.updated_at == history["updated_at"] and item.created_at < item.updated_at
    assert body["updated_at"].endswith("Z")


async def test_stock_entries_show_current_location_names_and_reservations(pool, database_url, org_id, history):
    async with caught_up(pool, database_url):
        item, stock = await queries.item_with_stock(pool, org_id, history["filters"])  # one statement
        assert item == await queries.get_item(pool, org_id, history["filters"])
    assert all(s.last_updated.utcoffset().total_seconds() == 0 for s in stock)
    assert [list(as_json(s)) for s in stock] == [SEED_STOCK_FIELDS] * 2
    main, van = stock
    assert (main.location_id, main.location_name, main.location_type) == (history["main"], "Main Warehouse", "warehouse")
    assert (main.quantity, main.reserved_quantity, main.available) == (84, 0, 84)
    assert (van.location_name, van.location_type) == ("Van #1 — Alex Johnson", "vehicle")
    assert (van.quantity, van.reserved_quantity, van.available) == (10, 3, 7)


async def test_transactions_are_newest_first_with_signed_quantities_and_transfer_sides(
    pool, database_url, org_id, history
):
    async with caught_up(pool, database_url):
        transactions, total = await queries.item_transactions(pool, org_id, history["filters"])
        adjusts, adjust_total = await queries.item_transactions(pool, org_id, history["filters"], type="Adjust")
        page2, _ = await queries.item_transactions(pool, org_id, history["filters"], page=2, per_page=3)
    assert total == len(transactions) == 10
    assert all(list(as_json(t)) == SEED_TRANSACTION_FIELDS for t in transactions)
    assert [t.id for t in transactions] == sorted((t.id for t in transactions), reverse=True)
    oldest_first = [(t.transaction_type, t.quantity, t.location_id, t.related_location_id, t.job_id, t.user_name,
                     t.notes) for t in reversed(transactions)]
    main, van = history["main"], history["van"]
    assert oldest_first == [
        ("Add", 100, main, None, None, "API", "PO 17"),
        ("Transfer_out", -10, main, van, None, "Alex Johnson", "Restocking van"),
        ("Transfer_in", 10, van, main, None, "Alex Johnson", "Restocking van"),
        ("Adjust", -5, main, None, None, "API", "Damaged units removed"),
        ("Reserve", -4, main, None, 7, "API", None),  # Reserve/Release: the change of available
        ("Release", 1, main, None, 7, "API", None),
        ("Job_complete", -2, main, None, 7, "API", None),
        ("Release", 1, main, None, 7, "API", "reservation completed"),
        ("Reserve", -3, van, None, 8, None, None),
        ("Add", 1, main, None, None, None, None),
    ]
    transfer_out = transactions[-2]
    assert (transfer_out.location_name, transfer_out.related_location_name) == ("Main Warehouse", "Van #1 — Alex Johnson")
    assert transactions[-3].related_location_name == "Main Warehouse"
    assert adjust_total == 1 and adjusts[0].notes == "Damaged units removed"
    assert [t.id for t in page2] == [t.id for t in transactions[3:6]]


async def test_low_stock_lists_the_most_critical_first(pool, database_url, org_id, history):
    async with caught_up(pool, database_url):
        low, total = await queries.low_stock(pool, org_id)
        only_low, only_low_total = await queries.list_items(pool, org_id, low_stock=True)
    # fuse 0/4 first; wire 3/10; then capacitor 5/10 and valve 2/4 tie on the ratio, and
    # the larger shortfall (5 against 2) comes first. Filters (94/20) and the archived item are not low.
    assert [i.part_number for i in low] == ["FUS-004", "THM-001", "CAP-002", "VLV-005"]
    assert total == 4
    assert {i.id for i in only_low} == {i.id for i in low} and only_low_total == 4
    assert all(list(as_json(i)) == SEED_ITEM_FIELDS for i in low)


async def test_item_lists_filter_search_page_and_leave_archived_items_out(pool, database_url, org_id, history):
    async with caught_up(pool, database_url):
        everything, total = await queries.list_items(pool, org_id)
        filters, filters_total = await queries.list_items(pool, org_id, category="Filters")
        found, _ = await queries.list_items(pool, org_id, search="capacitor")
        by_number, _ = await queries.list_items(pool, org_id, search="thm-0")
        literal, _ = await queries.list_items(pool, org_id, search="%")
        page, page_total = await queries.list_items(pool, org_id, page=2, per_page=2)
        past_the_end, past_total = await queries.list_items(pool, org_id, page=9, per_page=2)
        archived = await queries.get_item(pool, org_id, history["gone"])
        archived_on_request = await queries.get_item(pool, org_id, history["gone"], include_deleted=True)
    assert total == 5 and history["gone"] not in [i.id for i in everything]
    assert [i.id for i in everything] == sorted(i.id for i in everything)
    assert [i.part_number for i in filters] == ["FLT-001"] and filters_total == 1
    assert [i.part_number for i in found] == ["CAP-002"]
    assert [i.part_number for i in by_number] == ["THM-001"]
    assert literal == []  # search text is matched literally, not as a pattern
    assert page == everything[2:4] and page_total == 5
    assert past_the_end == [] and past_total == 5
    assert archived is None and archived_on_request.part_number == "OLD-999"


async def test_locations_list_and_detail_with_stock_summary(pool, database_url, org_id, history):
    async with caught_up(pool, database_url):
        active, total = await queries.list_locations(pool, org_id)
        every, every_total = await queries.list_locations(pool, org_id, active_only=False)
        vehicles, _ = await queries.list_locations(pool, org_id, type="vehicle")
        location, summary = await queries.get_location(pool, org_id, history["main"])
        empty_location, empty_summary = await queries.get_location(pool, org_id, history["closed"])
    assert [loc.location_name for loc in active] == ["Main Warehouse", "Van #1 — Alex Johnson"] and total == 2
    assert every_total == 3 and not every[2].is_active
    assert [loc.id for loc in vehicles] == [history["van"]]
    body = as_json(location)
    assert list(body) == SEED_LOCATION_FIELDS
    assert (body["address"], body["city"], body["state"], body["zip"]) == ("123 Industrial Blvd", "Tampa", "FL", "33601")
    assert every[1].updated_at == history["renamed_at"] > every[1].created_at
    assert [(s.item_id, s.part_number, s.part_name, s.quantity, s.reserved_quantity, s.available) for s in summary] == [
        (history["filters"], "FLT-001", "HVAC Air Filter 20x25x1", 84, 0, 84),
        (history["capacitor"], "CAP-002", "Run Capacitor 35/5 MFD", 5, 0, 5),
        (history["valve"], "VLV-005", "Valve", 2, 0, 2),
    ]
    assert list(as_json(summary[0])) == ["item_id", "part_name", "part_number", "quantity", "reserved_quantity",
                                          "available"]
    assert empty_location.location_name == "Old Depot" and empty_summary == []


async def test_a_job_view_shows_what_it_holds_and_consumed(pool, database_url, org_id, history):
    async with caught_up(pool, database_url):
        completed = await queries.job_view(pool, org_id, 7)
        holding = await queries.job_view(pool, org_id, 8)
        unknown = await queries.job_view(pool, org_id, 999)
    [line] = completed.holdings
    assert (line.item_id, line.location_id, line.part_number) == (history["filters"], history["main"], "FLT-001")
    assert (line.reserved_quantity, line.consumed_quantity, line.released_quantity) == (0, 2, 2)
    assert line.expires_at is None
    assert (completed.reserved_quantity, completed.consumed_quantity) == (0, 2)
    [held] = holding.holdings
    assert (held.location_name, held.reserved_quantity, held.consumed_quantity) == ("Van #1 — Alex Johnson", 3, 0)
    assert unknown is None


async def test_another_organizations_ids_read_as_absent(pool, database_url, org_id, history):
    other = history["other_org"]
    async with caught_up(pool, database_url):
        assert await queries.get_item(pool, other, history["filters"]) is None
        assert await queries.get_item(pool, org_id, history["other_item"]) is None
        assert await queries.item_with_stock(pool, other, history["filters"]) is None
        assert await queries.item_transactions(pool, other, history["filters"]) == ([], 0)
        assert await queries.get_location(pool, other, history["main"]) is None
        assert await queries.get_location(pool, org_id, history["other_location"]) is None
        assert await queries.job_view(pool, other, 7) is None
        theirs, total = await queries.list_items(pool, other)
        assert [i.part_name for i in theirs] == ["Their filter"] and total == 1
        assert await queries.low_stock(pool, other) == ([theirs[0]], 1)
        locations, _ = await queries.list_locations(pool, other)
        assert [loc.location_name for loc in locations] == ["Globex Warehouse"]
