"""The event store against a real PostgreSQL: atomic appends, versions, ids, hashes."""

from __future__ import annotations

import asyncio
import uuid

import pytest

from ledger import errors
from ledger.commands import AddStock, AdjustStock, RemoveStock, TransferStock
from ledger.hashing import GENESIS
from ledger.verify import verify_stream
from schemas import MAX_QUANTITY, EventMetadata, ItemAttributes
from tests.support.world import make_item, make_location, stocked


async def test_a_command_records_its_events_with_gapless_versions_and_a_hash_chain(store, org_id, pool):
    warehouse = await make_location(store, org_id)
    van = await make_location(store, org_id, "Van 1", location_type="vehicle")
    item = await make_item(store, org_id)
    await stocked(store, org_id, item, warehouse, 100)
    result = await store.execute(
        org_id,
        TransferStock(item_id=item, from_location_id=warehouse, to_location_id=van, quantity=10,
                      transfer_id=str(uuid.uuid4())),
        metadata=EventMetadata(request_id="req-1", user_name="API"),
    )
    assert [e.type for e in result.events] == ["Transfer_out", "Transfer_in"]
    assert [e.version for e in result.events] == [3, 4]
    assert result.events[0].position < result.events[1].position == result.position
    assert result.events[1].prev_hash == result.events[0].hash
    rows = await pool.fetch("SELECT version, prev_hash, hash FROM events WHERE stream = $1 ORDER BY version", f"item-{item}")
    assert rows[0]["prev_hash"] == GENESIS
    assert all(b["prev_hash"] == a["hash"] for a, b in zip(rows, rows[1:], strict=False))
    assert (await verify_stream(pool, org_id, f"item-{item}")).ok
    levels = {r["location_id"]: r["quantity"] for r in await pool.fetch("SELECT * FROM stock_state WHERE item_id = $1", item)}
    assert levels == {warehouse: 90, van: 10}


async def test_an_edited_event_is_detected_by_the_hash_chain(store, org_id, pool):
    warehouse = await make_location(store, org_id)
    item = await make_item(store, org_id)
    await stocked(store, org_id, item, warehouse, 5)
    await stocked(store, org_id, item, warehouse, 7)
    assert (await verify_stream(pool, org_id, f"item-{item}")).ok
    async with pool.acquire() as conn:
        # The ledger refuses edits; an attacker with superuser rights disables the guard.
        with pytest.raises(Exception, match="append-only"):
            await conn.execute("UPDATE events SET data = data WHERE stream = $1", f"item-{item}")
        await conn.execute("ALTER TABLE events DISABLE TRIGGER events_append_only")
        await conn.execute(
            "UPDATE events SET data = jsonb_set(data, '{quantity}', '700') WHERE stream = $1 AND version = 3",
            f"item-{item}",
        )
        await conn.execute("ALTER TABLE events ENABLE TRIGGER events_append_only")
    report = await verify_stream(pool, org_id, f"item-{item}")
    assert any("was edited" in p for p in report.problems)
    assert any("write model" in p and "fold" in p for p in report.problems)  # the re-fold disagrees too


async def test_a_deleted_event_is_detected_as_a_gap(store, org_id, pool):
    warehouse = await make_location(store, org_id)
    item = await make_item(store, org_id)
    for n in (1, 2, 3):
        await stocked(store, org_id, item, warehouse, n)
    async with pool.acquire() as conn:
        await conn.execute("ALTER TABLE events DISABLE TRIGGER events_append_only")
        await conn.execute("DELETE FROM events WHERE stream = $1 AND version = 2", f"item-{item}")
        await conn.execute("ALTER TABLE events ENABLE TRIGGER events_append_only")
    report = await verify_stream(pool, org_id, f"item-{item}")
    assert any("an event is missing" in p for p in report.problems)


async def test_the_same_command_recorded_twice_is_found_not_written_again(store, org_id, pool):
    warehouse = await make_location(store, org_id)
    item = await make_item(store, org_id)
    command_id = uuid.uuid4()
    first = await store.execute(org_id, AddStock(item_id=item, location_id=warehouse, quantity=4), command_id=command_id)
    again = await store.execute(org_id, AddStock(item_id=item, location_id=warehouse, quantity=4), command_id=command_id)
    assert again.replayed and not first.replayed
    assert [e.event_id for e in again.events] == [e.event_id for e in first.events]
    assert again.position == first.position
    assert await pool.fetchval("SELECT count(*) FROM events WHERE stream = $1", f"item-{item}") == 2
    assert await pool.fetchval("SELECT quantity FROM stock_state WHERE item_id = $1", item) == 4


async def test_a_command_id_is_recognised_even_after_the_stream_moved_on(store, org_id, pool):
    warehouse = await make_location(store, org_id)
    item = await make_item(store, org_id)
    command_id = uuid.uuid4()
    first = await store.execute(org_id, AddStock(item_id=item, location_id=warehouse, quantity=4), command_id=command_id)
    await stocked(store, org_id, item, warehouse, 1)
    again = await store.execute(org_id, AddStock(item_id=item, location_id=warehouse, quantity=4), command_id=command_id)
    assert again.replayed and again.position == first.position
    assert await pool.fetchval("SELECT quantity FROM stock_state WHERE item_id = $1", item) == 5


async def test_expected_version_mismatch_is_a_version_conflict_and_writes_nothing(store, org_id, pool):
    warehouse = await make_location(store, org_id)
    item = await make_item(store, org_id)
    await store.execute(org_id, AddStock(item_id=item, location_id=warehouse, quantity=3), expected_version=1)
    with pytest.raises(errors.VersionConflict) as refused:
        await store.execute(org_id, AddStock(item_id=item, location_id=warehouse, quantity=3), expected_version=1)
    assert refused.value.status == 412 and refused.value.extra["current_version"] == 2
    assert await pool.fetchval("SELECT count(*) FROM events WHERE stream = $1", f"item-{item}") == 2


async def test_concurrent_commands_with_the_same_expected_version_let_exactly_one_win(store, org_id, pool):
    warehouse = await make_location(store, org_id)
    item = await make_item(store, org_id)
    outcomes = await asyncio.gather(
        *(store.execute(org_id, AddStock(item_id=item, location_id=warehouse, quantity=1), expected_version=1)
          for _ in range(10)),
        return_exceptions=True,
    )
    assert sum(not isinstance(o, Exception) for o in outcomes) == 1
    assert all(isinstance(o, errors.VersionConflict) for o in outcomes if isinstance(o, Exception))
    assert await pool.fetchval("SELECT quantity FROM stock_state WHERE item_id = $1", item) == 1


async def test_quantities_beyond_64_bits_are_refused_cleanly(store, org_id, pool):
    warehouse = await make_location(store, org_id)
    item = await make_item(store, org_id)
    await stocked(store, org_id, item, warehouse, MAX_QUANTITY)
    for command in (
        AddStock(item_id=item, location_id=warehouse, quantity=1),
        AddStock(item_id=item, location_id=warehouse, quantity=2**63),
        AdjustStock(item_id=item, location_id=warehouse, quantity=1),
        RemoveStock(item_id=item, location_id=warehouse, quantity=2**64),
    ):
        with pytest.raises(errors.InvalidQuantity) as refused:
            await store.execute(org_id, command)
        assert refused.value.status == 400
    assert await pool.fetchval("SELECT quantity FROM stock_state WHERE item_id = $1", item) == MAX_QUANTITY


async def test_a_duplicate_part_number_is_refused_even_when_created_concurrently(store, org_id, pool):
    attributes = ItemAttributes(part_number="FLT-001", part_name="Filter")
    outcomes = await asyncio.gather(*(store.create_item(org_id, attributes) for _ in range(8)), return_exceptions=True)
    assert sum(not isinstance(o, Exception) for o in outcomes) == 1
    assert all(isinstance(o, errors.DuplicatePartNumber) for o in outcomes if isinstance(o, Exception))
    assert await pool.fetchval("SELECT count(*) FROM item_state WHERE part_number = 'FLT-001'") == 1
    assert await pool.fetchval("SELECT count(*) FROM events WHERE type = 'ItemCreated'") == 1


async def test_the_first_movements_at_a_new_place_race_safely(store, org_id, pool):
    warehouse = await make_location(store, org_id)
    item = await make_item(store, org_id)
    await asyncio.gather(*(stocked(store, org_id, item, warehouse, 1) for _ in range(20)))
    assert await pool.fetchval("SELECT quantity FROM stock_state WHERE item_id = $1", item) == 20
    assert (await verify_stream(pool, org_id, f"item-{item}")).ok


async def test_another_organizations_item_is_not_found(store, org_id, pool):
    from ledger.keys import ensure_organization

    other = await ensure_organization(pool, "globex")
    warehouse = await make_location(store, org_id)
    item = await make_item(store, org_id)
    with pytest.raises(errors.NotFound):
        await store.execute(other, AddStock(item_id=item, location_id=warehouse, quantity=1))


async def test_an_items_total_beyond_64_bits_is_refused_even_when_each_location_fits(store, org_id, pool):
    first, second = await make_location(store, org_id), await make_location(store, org_id, "Second")
    item = await make_item(store, org_id)
    await stocked(store, org_id, item, first, MAX_QUANTITY)
    with pytest.raises(errors.InvalidQuantity):
        await store.execute(org_id, AddStock(item_id=item, location_id=second, quantity=1))
    assert (await verify_stream(pool, org_id, f"item-{item}")).ok


async def test_the_snapshot_is_the_same_with_elements_spelled_out_or_arrays_bound(store, org_id, pool, monkeypatch):
    from ledger import snapshots
    from ledger.commands import Line, ReserveStock
    from ledger.footprint import Footprint
    from ledger.snapshots import load_snapshot

    a, b = await make_location(store, org_id, "A"), await make_location(store, org_id, "B")
    items = [await make_item(store, org_id) for _ in range(3)]
    for item in items:
        await stocked(store, org_id, item, a, 10)
        await stocked(store, org_id, item, b, 5)
    await store.execute(org_id, ReserveStock(job_id=7, lines=[Line(item_id=i, location_id=a, quantity=2) for i in items]))
    shapes = [
        Footprint(items=(items[0],), locations=(a,), places=((items[0], a),)),
        Footprint(items=(items[0],), locations=(a, b), places=((items[0], a), (items[0], b))),
        Footprint(items=(items[1],), places=((items[1], b),), job_ids=(7,)),
        Footprint(items=tuple(items), whole_items=tuple(items)),
        Footprint(locations=(b,)),
    ]
    spelled = [await load_snapshot(pool, org_id, f) for f in shapes]
    monkeypatch.setattr(snapshots, "MAX_SPELLED_OUT", -1)  # every command binds whole arrays
    bound = [await load_snapshot(pool, org_id, f) for f in shapes]
    assert spelled == bound
    assert spelled[2][0].items[items[1]].stock[b].quantity == 5  # and the snapshots hold what they should
    assert {i for i, s in spelled[2][0].items.items() if any(lv.holds for lv in s.stock.values())} == set(items)
