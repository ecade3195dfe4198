"""A group's running state (ledger/running.py), pure: what each command gets to read.

A command on a job reads the items the job holds stock of, found through an index kept
as the group runs, not a copy of the group's whole state: a group of thousands of job
lines stays linear. The store's property test (tests/test_store_batches.py) shows the
decisions are the ones made one by one; here, what a view holds.
"""

from __future__ import annotations

from ledger.commands import CompleteJob, CreateItem, Line, ReleaseStock, ReserveStock
from ledger.decide import decide
from ledger.footprint import footprint
from ledger.running import RunningState
from ledger.state import Hold, ItemState, LocationState, Snapshot, StockLevel
from schemas import ItemAttributes, LocationAttributes


def _world(items: int, *, held: dict[int, int] | None = None) -> Snapshot:
    """`items` items with 10 units at locations 1 and 2; `held`: item -> job holding 2 at location 1."""
    held = held or {}
    return Snapshot(
        items={i: ItemState(item_id=i, version=1, attributes=ItemAttributes(part_number=f"P-{i}", part_name="x"),
                            quantity_on_hand=20,
                            stock={1: StockLevel(quantity=10, reserved=2 if i in held else 0, recorded=True,
                                                 holds={held[i]: Hold(quantity=2)} if i in held else {}),
                                   2: StockLevel(quantity=10, recorded=True)})
               for i in range(1, items + 1)},
        locations={loc: LocationState(location_id=loc, version=1, attributes=LocationAttributes(location_name=f"L{loc}"))
                   for loc in (1, 2)},
    )


def _run(running: RunningState, command) -> list:
    view = running.view(footprint(command))
    events = decide(view, command)
    running.apply(view, events)
    return events


def test_a_job_command_reads_the_jobs_items_not_the_whole_group():
    running = RunningState(_world(500, held={7: 41, 300: 41, 12: 99}))
    view = running.view(footprint(ReleaseStock(job_id=41)))
    assert set(view.items) == {7, 300} and set(view.locations) == {1}
    complete = CompleteJob(job_id=41, lines=[Line(item_id=5, location_id=2, quantity=1)])
    view = running.view(footprint(complete))  # its own lines' places, and the job's holds
    assert set(view.items) == {5, 7, 300} and set(view.locations) == {1, 2}


def test_a_hold_made_earlier_in_the_group_is_found_by_a_later_job_command():
    running = RunningState(_world(50))
    _run(running, ReserveStock(job_id=8, lines=[Line(item_id=3, location_id=2, quantity=4)]))
    _run(running, ReserveStock(job_id=8, lines=[Line(item_id=9, location_id=1, quantity=1)]))
    released = _run(running, ReleaseStock(job_id=8))
    assert sorted((e.item_id, e.location_id, e.quantity) for e in released) == [(3, 2, 4), (9, 1, 1)]
    assert running.view(footprint(ReleaseStock(job_id=8))).job_holdings(8) == []  # nothing held any more


def test_a_job_completed_in_the_group_consumes_what_it_reserved_there():
    running = RunningState(_world(20, held={2: 5}))
    _run(running, ReserveStock(job_id=5, lines=[Line(item_id=4, location_id=1, quantity=3)]))
    completed = _run(running, CompleteJob(job_id=5))
    assert sorted((type(e).__name__, e.item_id, e.quantity) for e in completed) == [
        ("JobCompleted", 2, 2), ("JobCompleted", 4, 3)]
    assert running.snapshot().item(4).level(1).quantity == 7



def test_an_item_made_by_an_atomic_unit_undone_since_is_not_in_a_later_view():
    running = RunningState(_world(3))
    running.begin_unit()
    attributes = ItemAttributes(part_number="P-77", part_name="x")
    _run(running, CreateItem(item_id=77, attributes=attributes, initial_quantity=5, location_id=1))
    _run(running, ReserveStock(job_id=4, lines=[Line(item_id=77, location_id=1, quantity=5)]))
    running.undo_unit()  # a later line of the unit was refused
    assert running.view(footprint(ReleaseStock(job_id=4))).items == {}
