"""Every event type through every fold of stock: the same numbers everywhere.

What a stock event does to stock is defined once (`ledger/effects.py`), but applied by
several implementations: `evolve` (and through it the write model), the live projections
(Python batches merged by `apply_*.sql`), the replay's set-based SQL
(`stage_rebuild_events.sql` filled in from the rules, then `rebuild_*.sql`), verify's
re-fold and the webhooks' item levels. A scripted ledger holding every event type of the
union in `schemas/events.py` goes through each of them, event by event where they can
stop between events and all at once, and each must end where the numbers were worked out
by hand. A new event type fails here until the script records it.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import NamedTuple

import pytest

from consumers.webhooks.fanout import plan
from ledger.commands import (
    AddStock,
    AdjustStock,
    CompleteJob,
    DeleteItem,
    Line,
    ReleaseStock,
    RemoveStock,
    ReserveStock,
    SetCountedQuantity,
    TransferStock,
    UpdateItem,
    UpdateLocation,
)
from ledger.db import connect
from ledger.decide import evolve
from ledger.effects import RULES, effect
from ledger.records import envelope
from ledger.state import ItemState
from projections import Projector, read_models, wait_for_position
from projections.rebuild import Rebuild
from projections.refold import Refold, transaction_row
from projections.replay import rebuild_read_models
from projections.verify import verify_read_models
from schemas import EVENT_TYPES, EventEnvelope, ItemAttributes, StockEvent
from tests.support.read_models import fresh_tables
from tests.support.world import make_item, make_location

T1, T2, T3 = (datetime(2031, month, 1, tzinfo=UTC) for month in (1, 2, 3))


class Ids(NamedTuple):
    warehouse: int
    van: int
    item: int  # stocked, reserved, consumed; kept
    archived: int  # stocked, emptied, deleted


class View(NamedTuple):
    """What an implementation says about stock, keyed without the (single) organization."""

    levels: dict[tuple[int, int], tuple[int, int]]  # (item, location) -> (quantity, reserved)
    totals: dict[int, int]  # item -> quantity on hand over every location
    holdings: dict[tuple[int, int, int], tuple]  # (job, item, location) -> (reserved, consumed, released, expiry)
    history: dict[int, int]  # position -> the transaction history's signed quantity


def holds_now(view: View) -> dict[tuple[int, int, int], tuple]:
    """(job, item, location) -> (quantity, expiry) of every hold there is now."""
    return {k: (v[0], v[3]) for k, v in view.holdings.items() if v[0]}


# --- the ledger, and its numbers worked out by hand -------------------------------------------------


async def script(store, org: int) -> Ids:
    async def run(command) -> None:
        await store.execute(org, command)

    warehouse, van = await make_location(store, org, "Warehouse"), await make_location(store, org, "Van")
    await run(UpdateLocation(location_id=van, changes={"location_name": "Van 7", "location_type": "vehicle"}))
    created = await store.create_item(org, ItemAttributes(part_number="A-1", part_name="Filter", min_stock_level=5),
                                      initial_quantity=50, location_id=warehouse)
    item, archived = created.events[0].data.item_id, await make_item(store, org, part_number="B-1")
    await run(AddStock(item_id=archived, location_id=warehouse, quantity=10))
    await run(RemoveStock(item_id=item, location_id=warehouse, quantity=3))
    await run(AdjustStock(item_id=item, location_id=warehouse, quantity=4, reason="found"))
    await run(AdjustStock(item_id=item, location_id=warehouse, quantity=-2, reason="damaged"))
    await run(SetCountedQuantity(item_id=item, location_id=van, quantity=7))  # an Adjust of +7
    await run(TransferStock(item_id=item, from_location_id=warehouse, to_location_id=van, quantity=10,
                            transfer_id=str(uuid.uuid4())))
    await run(ReserveStock(job_id=100, lines=[Line(item_id=item, location_id=warehouse, quantity=5),
                                              Line(item_id=item, location_id=van, quantity=2)], expires_at=T1))
    await run(ReserveStock(job_id=100, lines=[Line(item_id=item, location_id=warehouse, quantity=3)],
                           expires_at=T2))  # more where it holds: renews the expiry
    await run(ReserveStock(job_id=200, lines=[Line(item_id=item, location_id=warehouse, quantity=4)]))
    await run(ReleaseStock(job_id=200, lines=[Line(item_id=item, location_id=warehouse, quantity=1)]))
    # Uses 10 where it holds 8 (2 more from available); its hold in the van goes back.
    await run(CompleteJob(job_id=100, lines=[Line(item_id=item, location_id=warehouse, quantity=10)]))
    await run(CompleteJob(job_id=200))  # uses exactly what it holds: 3
    await run(ReserveStock(job_id=300, lines=[Line(item_id=item, location_id=van, quantity=5)], expires_at=T3))
    await run(ReleaseStock(job_id=300, lines=[Line(item_id=item, location_id=van, quantity=1)], reason="expired"))
    await run(UpdateItem(item_id=item, changes={"min_stock_level": 30}))
    await run(RemoveStock(item_id=archived, location_id=warehouse, quantity=10))
    await run(DeleteItem(item_id=archived))
    return Ids(warehouse, van, item, archived)


def worked_out(ids: Ids) -> View:
    """The end of the script, by hand (history aside: it is one row per event)."""
    w, v, a, b = ids
    return View(
        levels={(a, w): (50 - 3 + 4 - 2 - 10 - 10 - 3, 0), (a, v): (7 + 10, 5 - 1), (b, w): (10 - 10, 0)},
        totals={a: 26 + 17, b: 0},
        holdings={
            (100, a, w): (0, 10, 0, T2),
            (100, a, v): (0, 0, 2, T1),
            (200, a, w): (0, 3, 1, None),
            (300, a, v): (4, 0, 1, T3),
        },
        history={},
    )


# The history's signed quantities, in order: on-hand changes, and for Reserve and Release
# the change of available.
HISTORY = [
    ("Add", 50), ("Add", 10), ("Remove", -3), ("Adjust", 4), ("Adjust", -2), ("Adjust", 7),
    ("Transfer_out", -10), ("Transfer_in", 10), ("Reserve", -5), ("Reserve", -2), ("Reserve", -3),
    ("Reserve", -4), ("Release", 1), ("Job_complete", -10), ("Release", 2), ("Job_complete", -3),
    ("Reserve", -5), ("Release", 1), ("Remove", -10),
]


@pytest.fixture
async def ledger(store, pool, org_id) -> tuple[Ids, list[EventEnvelope]]:
    ids = await script(store, org_id)
    return ids, [envelope(r) for r in await pool.fetch("SELECT * FROM events ORDER BY position")]


def without_history(view: View) -> View:
    return view._replace(history={})


# --- each implementation's view ----------------------------------------------------------------------


def refold_view(fold: Refold, history: dict[int, int]) -> View:
    return View(
        levels={(i, loc): (r["quantity"], r["reserved"]) for (_, i, loc), r in fold.rows("stock").items()},
        totals={i: r["quantity_on_hand"] for (_, i), r in fold.rows("items").items()},
        holdings={(j, i, loc): (r["reserved"], r["consumed"], r["released"], r["expires_at"])
                  for (_, j, i, loc), r in fold.rows("job_holdings").items()},
        history=dict(history),
    )


async def tables_view(conn, schema: str) -> View:
    return View(
        levels={(r[0], r[1]): (r[2], r[3]) for r in
                await conn.fetch(f"SELECT item_id, location_id, quantity, reserved FROM {schema}.stock")},
        totals=dict(await conn.fetch(f"SELECT item_id, quantity_on_hand FROM {schema}.items")),
        holdings={(r[0], r[1], r[2]): tuple(r[3:]) for r in await conn.fetch(
            f"SELECT job_id, item_id, location_id, reserved, consumed, released, expires_at FROM {schema}.job_holdings")},
        history=dict(await conn.fetch(f"SELECT position, quantity FROM {schema}.transactions")),
    )


def folded(events: list[EventEnvelope]):
    """(event, the re-fold's view after it) for every event: the reference of every step."""
    fold, history = Refold(), {}
    for e in events:
        fold.evolve(e)
        if (row := transaction_row(e)) is not None:
            history[e.position] = row["quantity"]
        yield e, refold_view(fold, history)


# --- the tests -----------------------------------------------------------------------------------------


def test_every_stock_event_type_of_the_union_has_its_effect_defined():
    assert set(RULES) == set(StockEvent.__args__)


async def test_the_script_records_every_event_type_of_the_union(ledger):
    _, events = ledger
    assert {e.type for e in events} == set(EVENT_TYPES)


async def test_evolve_the_refold_and_the_write_model_end_where_worked_out_by_hand(ledger, pool):
    ids, events = ledger
    want = worked_out(ids)
    *_, (_, refolded) = folded(events)
    assert without_history(refolded) == want
    assert [(e.type, refolded.history[e.position]) for e in events if e.position in refolded.history] == HISTORY

    states: dict[int, ItemState] = {}
    for e in events:
        if e.stream.startswith("item-"):
            states[e.data.item_id] = evolve(states.get(e.data.item_id) or ItemState(item_id=e.data.item_id), e.data)
    assert {(i, loc): (lv.quantity, lv.reserved) for i, s in states.items() for loc, lv in s.stock.items()} == want.levels
    assert {i: s.quantity_on_hand for i, s in states.items()} == want.totals
    assert {(job, i, loc): (h.quantity, h.expires_at) for i, s in states.items() for loc, lv in s.stock.items()
            for job, h in lv.holds.items()} == holds_now(want)

    # The write model the store kept while deciding.
    assert {(r[0], r[1]): (r[2], r[3]) for r in
            await pool.fetch("SELECT item_id, location_id, quantity, reserved FROM stock_state")} == want.levels
    assert {(r[0], r[1], r[2]): (r[3], r[4]) for r in await pool.fetch(
        "SELECT job_id, item_id, location_id, quantity, expires_at FROM reservation_state")} == holds_now(want)


async def test_the_live_projections_agree_with_the_fold_after_every_event_and_in_one_batch(ledger, pool):
    ids, events = ledger
    async with pool.acquire() as conn:
        await fresh_tables(conn, "fold_step")
        await fresh_tables(conn, "fold_once")
        step = read_models("fold_step")
        for e, want in folded(events):
            async with conn.transaction():
                for model in step:
                    await model.apply(conn, [e])
            assert await tables_view(conn, "fold_step") == want, f"after {e.type} at position {e.position}"
        async with conn.transaction():
            for model in read_models("fold_once"):
                await model.apply(conn, events)
        assert await tables_view(conn, "fold_once") == want
    assert without_history(want) == worked_out(ids)


async def test_the_replay_sql_agrees_with_the_fold_after_every_event_and_in_one_chunk(ledger, database_url):
    ids, events = ledger
    conns = [await connect(database_url) for _ in range(2)]  # two lanes, as `ledger replay` runs
    conn = conns[0]
    try:
        stepwise = Rebuild(conns, "fold_step", read_models("fold_step"))
        await stepwise.prepare()
        after = 0
        for e, want in folded(events):
            after = await stepwise.run(after, e.position)
            assert await tables_view(conn, "fold_step") == want, f"after {e.type} at position {e.position}"
        await stepwise.finish()

        once = Rebuild(conns, "fold_once", read_models("fold_once"))
        await once.prepare()
        await once.run(0, events[-1].position)
        await once.finish()
        assert await tables_view(conn, "fold_once") == want
        assert once.events == stepwise.events == len(events)
    finally:
        for c in conns:
            await c.close()
    assert without_history(want) == worked_out(ids)


async def test_the_projector_and_ledger_replay_leave_tables_that_verify_passes(ledger, pool, database_url):
    ids, events = ledger
    *_, (_, want) = folded(events)
    projector = Projector(pool, database_url, read_models(), batch_size=7)  # batches cut mid-command
    projector.start()
    try:
        assert await wait_for_position(pool, events[-1].position, timeout=20)
    finally:
        await projector.stop()
    async with pool.acquire() as conn:
        assert await tables_view(conn, "projections") == want
        assert (await verify_read_models(conn)).problems == []

    report = await rebuild_read_models(database_url, chunk=5)
    assert report.events == len(events)
    async with pool.acquire() as conn:
        assert await tables_view(conn, "projections") == want
        assert (await verify_read_models(conn)).problems == []
    assert without_history(want) == worked_out(ids)


async def test_the_webhook_level_tracker_keeps_the_folds_totals_between_commands(ledger):
    ids, events = ledger
    levels, moving = {}, {}  # moving: what an item's transfers have moved out and not yet in
    for e, want in folded(events):
        _, changed = plan([e], {}, levels)
        levels.update(changed)
        moved = effect(e.data)
        if moved is not None and RULES[type(e.data)].between_places:
            moving[e.data.item_id] = moving.get(e.data.item_id, 0) + moved.quantity
        # The tracker counts a transfer as the move it is (nothing), never its halves.
        tracked = {item: level.quantity_on_hand for (_, item), level in levels.items()}
        expected = {item: total - moving.get(item, 0) for item, total in want.totals.items()}
        assert tracked == expected, f"after {e.type} at position {e.position}"
    assert tracked == worked_out(ids).totals
    assert levels[(events[0].org_id, ids.item)].min_stock_level == 30 and not levels[(events[0].org_id, ids.item)].low
