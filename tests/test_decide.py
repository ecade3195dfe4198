"""Domain tests of the pure decision logic: given some events, when a command, then events.

No database, no servers: a `Snapshot` is built by folding events through `evolve_snapshot` from an
empty one, `decide` is asked what a command does, and the events it returns are folded
again to check the state they leave. The rules are those of DESIGN.md section 5 (the
ledger and its transaction types) and the seed 004 error tables (Adjust stock,
Transfer stock, item create/update).

Run alone with:
    .venv/bin/python -m pytest tests/test_decide.py -q -p no:cacheprovider --noconftest
"""

from __future__ import annotations

import copy
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import given as for_all
from hypothesis import strategies as st

from ledger import errors
from ledger.commands import (
    AddStock,
    AdjustStock,
    CompleteJob,
    CreateItem,
    CreateLocation,
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
from ledger.decide import decide, evolve, evolve_snapshot
from ledger.state import Hold, ItemState, LocationState, Snapshot, StockLevel
from schemas import (
    MAX_QUANTITY,
    ItemAttributes,
    ItemCreated,
    ItemDeleted,
    ItemUpdated,
    JobCompleted,
    LocationAttributes,
    LocationCreated,
    LocationUpdated,
    StockAdded,
    StockAdjusted,
    StockReleased,
    StockRemoved,
    StockReserved,
    TransferredIn,
    TransferredOut,
)

# --- the world the tests talk about ----------------------------------------------------

WIDGET = 1  # the item most tests move
GADGET = 2  # a second item, for jobs spanning items
UNKNOWN_ITEM = 404

WAREHOUSE = 10
VAN = 20
CLOSED = 30  # created inactive
NOWHERE = 99  # never created

JOB = 7
OTHER_JOB = 8

TRANSFER_ID = "5f0c6a3e-8d7b-4a39-9b2f-0f6a1f2a9c11"
SOON = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
LATER = SOON + timedelta(hours=4)


def part(number: str = "W-100", name: str = "Widget", **more) -> ItemAttributes:
    return ItemAttributes(part_number=number, part_name=name, **more)


def place(name: str = "Main Warehouse", *, active: bool = True, **more) -> LocationAttributes:
    return LocationAttributes(location_name=name, is_active=active, **more)


def given(
    *events,
    items: tuple[int, ...] = (WIDGET, GADGET),
    locations: tuple[int, ...] = (WAREHOUSE, VAN),
    inactive: tuple[int, ...] = (CLOSED,),
) -> Snapshot:
    """A snapshot in which `items` and `locations` exist, then `events` happened."""
    history = [
        *(ItemCreated(item_id=i, attributes=part(f"P-{i}", f"Part {i}")) for i in items),
        *(LocationCreated(location_id=loc, attributes=place(f"Place {loc}")) for loc in locations),
        *(LocationCreated(location_id=loc, attributes=place(f"Place {loc}", active=False)) for loc in inactive),
        *events,
    ]
    snapshot = Snapshot()
    for event in history:
        snapshot = evolve_snapshot(snapshot, event)
    return snapshot


def added(quantity: int, at: int = WAREHOUSE, item: int = WIDGET) -> StockAdded:
    return StockAdded(item_id=item, location_id=at, quantity=quantity)


def held(job: int, quantity: int, at: int = WAREHOUSE, item: int = WIDGET, expires_at=None) -> StockReserved:
    return StockReserved(item_id=item, location_id=at, job_id=job, quantity=quantity, expires_at=expires_at)


def deactivated(location: int) -> LocationUpdated:
    return LocationUpdated(
        location_id=location, attributes=place(f"Place {location}", active=False), changed=["is_active"]
    )


def fold(snapshot: Snapshot, events) -> Snapshot:
    for event in events:
        snapshot = evolve_snapshot(snapshot, event)
    return snapshot


def level(snapshot: Snapshot, at: int = WAREHOUSE, item: int = WIDGET) -> StockLevel:
    return snapshot.item(item).level(at)


def refused(snapshot: Snapshot, command, code: str, status: int = 400) -> errors.LedgerError:
    """Assert `command` is refused with `code` (and `status`) and leaves the snapshot as it was."""
    before = copy.deepcopy(snapshot)
    with pytest.raises(errors.LedgerError) as caught:
        decide(snapshot, command)
    assert caught.value.code == code, repr(caught.value)
    assert caught.value.status == status, repr(caught.value)
    assert snapshot == before
    return caught.value


def transfer(quantity: int, source: int = WAREHOUSE, target: int = VAN, item: int = WIDGET, **more) -> TransferStock:
    return TransferStock(
        item_id=item, from_location_id=source, to_location_id=target, quantity=quantity,
        transfer_id=TRANSFER_ID, **more,
    )


def reserve(job: int, *lines: tuple[int, int, int], expires_at=None) -> ReserveStock:
    """lines: (item, location, quantity)."""
    return ReserveStock(job_id=job, lines=[Line(item_id=i, location_id=loc, quantity=q) for i, loc, q in lines],
                        expires_at=expires_at)


def lines(*triples: tuple[int, int, int]) -> list[Line]:
    return [Line(item_id=i, location_id=loc, quantity=q) for i, loc, q in triples]


BAD_QUANTITIES = [0, -1, -5, MAX_QUANTITY + 1, 2**64]


# --- Add --------------------------------------------------------------------------------


def test_adding_stock_records_one_add_event_and_raises_the_quantity():
    snapshot = given(added(5))
    events = decide(snapshot, AddStock(item_id=WIDGET, location_id=WAREHOUSE, quantity=3, notes="delivery"))
    assert events == [StockAdded(item_id=WIDGET, location_id=WAREHOUSE, quantity=3, notes="delivery")]
    after = level(fold(snapshot, events))
    assert (after.quantity, after.reserved, after.available) == (8, 0, 8)


def test_adding_stock_at_a_never_used_place_creates_its_stock_record():
    snapshot = given()
    assert not level(snapshot, VAN).recorded
    after = level(fold(snapshot, decide(snapshot, AddStock(item_id=WIDGET, location_id=VAN, quantity=2))), VAN)
    assert after.recorded and after.quantity == 2


@pytest.mark.parametrize("quantity", BAD_QUANTITIES)
def test_adding_a_quantity_that_is_not_a_positive_64_bit_integer_is_invalid(quantity):
    refused(given(), AddStock(item_id=WIDGET, location_id=WAREHOUSE, quantity=quantity), "invalid_quantity")


def test_adding_up_to_the_64_bit_limit_is_allowed_but_one_more_overflows():
    snapshot = given()
    full = fold(snapshot, decide(snapshot, AddStock(item_id=WIDGET, location_id=WAREHOUSE, quantity=MAX_QUANTITY)))
    assert level(full).quantity == MAX_QUANTITY
    refused(full, AddStock(item_id=WIDGET, location_id=WAREHOUSE, quantity=1), "invalid_quantity")


def test_adding_stock_of_an_unknown_item_is_not_found():
    refused(given(), AddStock(item_id=UNKNOWN_ITEM, location_id=WAREHOUSE, quantity=1), "not_found", 404)


def test_adding_stock_of_a_deleted_item_is_not_found():
    snapshot = given(ItemDeleted(item_id=WIDGET))
    refused(snapshot, AddStock(item_id=WIDGET, location_id=WAREHOUSE, quantity=1), "not_found", 404)


def test_adding_stock_at_an_unknown_location_is_location_not_found():
    refused(given(), AddStock(item_id=WIDGET, location_id=NOWHERE, quantity=1), "location_not_found")


def test_adding_stock_into_an_inactive_location_is_refused():
    refused(given(), AddStock(item_id=WIDGET, location_id=CLOSED, quantity=1), "location_inactive")


# --- Remove -----------------------------------------------------------------------------


def test_removing_stock_records_one_remove_event_and_lowers_the_quantity():
    snapshot = given(added(10))
    events = decide(snapshot, RemoveStock(item_id=WIDGET, location_id=WAREHOUSE, quantity=4, notes="scrap"))
    assert events == [StockRemoved(item_id=WIDGET, location_id=WAREHOUSE, quantity=4, notes="scrap")]
    assert level(fold(snapshot, events)).quantity == 6


def test_removing_all_available_stock_is_allowed_but_reserved_stock_stays():
    snapshot = given(added(10), held(JOB, 4))
    after = level(fold(snapshot, decide(snapshot, RemoveStock(item_id=WIDGET, location_id=WAREHOUSE, quantity=6))))
    assert (after.quantity, after.reserved, after.available) == (4, 4, 0)


def test_removing_more_than_is_available_is_insufficient_stock_with_the_available_quantity():
    snapshot = given(added(10), held(JOB, 4))
    error = refused(snapshot, RemoveStock(item_id=WIDGET, location_id=WAREHOUSE, quantity=7), "insufficient_stock")
    assert error.extra["available_quantity"] == 6
    assert (error.extra["item_id"], error.extra["location_id"]) == (WIDGET, WAREHOUSE)


def test_removing_from_a_place_never_stocked_is_insufficient_stock_of_zero():
    error = refused(given(), RemoveStock(item_id=WIDGET, location_id=VAN, quantity=1), "insufficient_stock")
    assert error.extra["available_quantity"] == 0


@pytest.mark.parametrize("quantity", BAD_QUANTITIES)
def test_removing_a_quantity_that_is_not_a_positive_64_bit_integer_is_invalid(quantity):
    refused(given(added(10)), RemoveStock(item_id=WIDGET, location_id=WAREHOUSE, quantity=quantity), "invalid_quantity")


def test_removing_stock_from_an_inactive_location_is_allowed():
    snapshot = given(added(5), deactivated(WAREHOUSE))
    events = decide(snapshot, RemoveStock(item_id=WIDGET, location_id=WAREHOUSE, quantity=5))
    assert level(fold(snapshot, events)).quantity == 0


def test_removing_stock_at_an_unknown_location_is_location_not_found():
    refused(given(), RemoveStock(item_id=WIDGET, location_id=NOWHERE, quantity=1), "location_not_found")


def test_removing_stock_of_an_unknown_item_is_not_found():
    refused(given(), RemoveStock(item_id=UNKNOWN_ITEM, location_id=WAREHOUSE, quantity=1), "not_found", 404)


# --- Adjust -----------------------------------------------------------------------------


def test_a_positive_adjustment_records_a_signed_adjust_event_with_its_reason():
    snapshot = given(added(100))
    events = decide(snapshot, AdjustStock(item_id=WIDGET, location_id=WAREHOUSE, quantity=25, reason="Shipment"))
    assert events == [StockAdjusted(item_id=WIDGET, location_id=WAREHOUSE, quantity=25, reason="Shipment")]
    assert events[0].counted_quantity is None
    assert level(fold(snapshot, events)).quantity == 125


def test_a_negative_adjustment_lowers_the_quantity():
    snapshot = given(added(125))
    events = decide(snapshot, AdjustStock(item_id=WIDGET, location_id=WAREHOUSE, quantity=-5, reason="Damaged"))
    assert events == [StockAdjusted(item_id=WIDGET, location_id=WAREHOUSE, quantity=-5, reason="Damaged")]
    assert level(fold(snapshot, events)).quantity == 120


@pytest.mark.parametrize("quantity", [0, MAX_QUANTITY + 1, -(MAX_QUANTITY + 1), 2**64, -(2**64)])
def test_an_adjustment_of_zero_or_beyond_64_bits_is_invalid(quantity):
    refused(given(added(5)), AdjustStock(item_id=WIDGET, location_id=WAREHOUSE, quantity=quantity), "invalid_quantity")


def test_an_adjustment_whose_result_overflows_64_bits_is_invalid():
    snapshot = given(added(1))
    refused(snapshot, AdjustStock(item_id=WIDGET, location_id=WAREHOUSE, quantity=MAX_QUANTITY), "invalid_quantity")
    events = decide(snapshot, AdjustStock(item_id=WIDGET, location_id=WAREHOUSE, quantity=MAX_QUANTITY - 1))
    assert level(fold(snapshot, events)).quantity == MAX_QUANTITY


def test_a_negative_adjustment_below_zero_is_insufficient_stock():
    error = refused(given(added(3)), AdjustStock(item_id=WIDGET, location_id=WAREHOUSE, quantity=-4), "insufficient_stock")
    assert error.extra["available_quantity"] == 3


def test_a_negative_adjustment_below_the_reserved_quantity_is_insufficient_stock():
    snapshot = given(added(10), held(JOB, 6))
    error = refused(snapshot, AdjustStock(item_id=WIDGET, location_id=WAREHOUSE, quantity=-5), "insufficient_stock")
    assert error.extra["available_quantity"] == 4
    after = level(fold(snapshot, decide(snapshot, AdjustStock(item_id=WIDGET, location_id=WAREHOUSE, quantity=-4))))
    assert (after.quantity, after.reserved, after.available) == (6, 6, 0)


def test_a_positive_adjustment_into_an_inactive_location_is_refused():
    refused(given(), AdjustStock(item_id=WIDGET, location_id=CLOSED, quantity=1), "location_inactive")


def test_a_negative_adjustment_at_an_inactive_location_is_allowed():
    snapshot = given(added(5), deactivated(WAREHOUSE))
    events = decide(snapshot, AdjustStock(item_id=WIDGET, location_id=WAREHOUSE, quantity=-2))
    assert level(fold(snapshot, events)).quantity == 3


def test_adjusting_an_unknown_item_is_not_found():
    refused(given(), AdjustStock(item_id=UNKNOWN_ITEM, location_id=WAREHOUSE, quantity=1), "not_found", 404)


@pytest.mark.parametrize("quantity", [1, -1])
def test_adjusting_at_an_unknown_location_is_location_not_found(quantity):
    refused(given(), AdjustStock(item_id=WIDGET, location_id=NOWHERE, quantity=quantity), "location_not_found")


# --- SetCountedQuantity -----------------------------------------------------------------


def test_a_count_that_differs_becomes_an_adjustment_by_the_difference():
    snapshot = given(added(10))
    events = decide(snapshot, SetCountedQuantity(item_id=WIDGET, location_id=WAREHOUSE, quantity=7, reason="count"))
    assert events == [
        StockAdjusted(item_id=WIDGET, location_id=WAREHOUSE, quantity=-3, reason="count", counted_quantity=7)
    ]
    assert level(fold(snapshot, events)).quantity == 7


def test_a_count_above_the_recorded_quantity_adjusts_upwards():
    snapshot = given(added(10))
    events = decide(snapshot, SetCountedQuantity(item_id=WIDGET, location_id=WAREHOUSE, quantity=12))
    assert [(e.quantity, e.counted_quantity) for e in events] == [(2, 12)]


def test_a_count_that_matches_the_ledger_emits_nothing():
    assert decide(given(added(10)), SetCountedQuantity(item_id=WIDGET, location_id=WAREHOUSE, quantity=10)) == []


def test_a_count_is_refused_when_the_quantity_moved_since_the_count_began():
    snapshot = given(added(10))
    command = SetCountedQuantity(item_id=WIDGET, location_id=WAREHOUSE, quantity=8, expected_quantity=9)
    error = refused(snapshot, command, "count_mismatch")
    assert error.extra["current_quantity"] == 10


def test_a_count_with_the_right_expected_quantity_goes_through():
    command = SetCountedQuantity(item_id=WIDGET, location_id=WAREHOUSE, quantity=8, expected_quantity=10)
    assert [e.quantity for e in decide(given(added(10)), command)] == [-2]


def test_a_count_below_the_reserved_quantity_is_insufficient_stock():
    snapshot = given(added(10), held(JOB, 6))
    error = refused(snapshot, SetCountedQuantity(item_id=WIDGET, location_id=WAREHOUSE, quantity=5), "insufficient_stock")
    assert error.extra["available_quantity"] == 4


@pytest.mark.parametrize("counted", [-1, MAX_QUANTITY + 1])
def test_a_negative_or_oversized_count_is_invalid(counted):
    refused(given(added(1)), SetCountedQuantity(item_id=WIDGET, location_id=WAREHOUSE, quantity=counted), "invalid_quantity")


def test_a_count_at_an_unknown_location_is_location_not_found():
    refused(given(), SetCountedQuantity(item_id=WIDGET, location_id=NOWHERE, quantity=3), "location_not_found")


# --- Transfer ---------------------------------------------------------------------------


def test_a_transfer_writes_transfer_out_at_the_source_and_transfer_in_at_the_destination():
    snapshot = given(added(100), added(50, at=VAN))
    events = decide(snapshot, transfer(10, notes="Restocking van"))
    out, into = events
    assert out == TransferredOut(
        item_id=WIDGET, location_id=WAREHOUSE, to_location_id=VAN, quantity=10,
        transfer_id=uuid.UUID(TRANSFER_ID), notes="Restocking van",
    )
    assert into == TransferredIn(
        item_id=WIDGET, location_id=VAN, from_location_id=WAREHOUSE, quantity=10,
        transfer_id=uuid.UUID(TRANSFER_ID), notes="Restocking van",
    )
    assert out.transfer_id == into.transfer_id
    after = fold(snapshot, events)
    assert (level(after).quantity, level(after, VAN).quantity) == (90, 60)


def test_a_transfer_to_a_never_used_place_creates_its_stock_record():
    snapshot = given(added(5))
    after = fold(snapshot, decide(snapshot, transfer(5)))
    assert level(after, VAN).recorded and level(after, VAN).quantity == 5
    assert level(after).recorded and level(after).quantity == 0


def test_a_transfer_may_move_everything_available_but_not_reserved_stock():
    # Seed 004: 100 units at a location, 20 reserved: you can transfer up to 80.
    snapshot = given(added(100), held(JOB, 20))
    error = refused(snapshot, transfer(81), "insufficient_stock")
    assert error.extra["available_quantity"] == 80
    after = fold(snapshot, decide(snapshot, transfer(80)))
    assert (level(after).quantity, level(after).reserved, level(after, VAN).quantity) == (20, 20, 80)


def test_transfer_is_refused_when_only_reserved_stock_remains():
    error = refused(given(added(5), held(JOB, 5)), transfer(1), "insufficient_stock")
    assert error.extra["available_quantity"] == 0


def test_transfer_from_a_place_never_stocked_is_no_stock():
    refused(given(), transfer(1), "no_stock")


def test_transfer_from_a_place_stocked_once_but_now_empty_is_insufficient_stock_not_no_stock():
    snapshot = given(added(2), StockRemoved(item_id=WIDGET, location_id=WAREHOUSE, quantity=2))
    error = refused(snapshot, transfer(1), "insufficient_stock")
    assert error.extra["available_quantity"] == 0


def test_transfer_to_the_same_location_is_refused():
    refused(given(added(5)), transfer(1, target=WAREHOUSE), "same_location")


def test_transfer_of_an_unknown_item_is_item_not_found():
    refused(given(), transfer(1, item=UNKNOWN_ITEM), "item_not_found", 404)


def test_transfer_from_an_unknown_location_is_from_location_not_found():
    refused(given(), transfer(1, source=NOWHERE), "from_location_not_found")


def test_transfer_to_an_unknown_location_is_to_location_not_found():
    refused(given(added(5)), transfer(1, target=NOWHERE), "to_location_not_found")


def test_transfer_into_an_inactive_location_is_refused():
    refused(given(added(5)), transfer(1, target=CLOSED), "location_inactive")


def test_transfer_out_of_an_inactive_location_is_allowed():
    snapshot = given(added(5), deactivated(WAREHOUSE))
    after = fold(snapshot, decide(snapshot, transfer(5)))
    assert (level(after).quantity, level(after, VAN).quantity) == (0, 5)


@pytest.mark.parametrize("quantity", BAD_QUANTITIES)
def test_transfer_of_a_quantity_that_is_not_a_positive_64_bit_integer_is_invalid(quantity):
    refused(given(added(5)), transfer(quantity), "invalid_quantity")


def test_transfer_whose_destination_would_overflow_64_bits_is_invalid():
    refused(given(added(5), added(MAX_QUANTITY, at=VAN)), transfer(1), "invalid_quantity")


def test_decide_is_deterministic_for_a_transfer():
    snapshot = given(added(5))
    assert decide(snapshot, transfer(2)) == decide(snapshot, transfer(2))


# --- Reserve ----------------------------------------------------------------------------


def test_reserving_holds_stock_for_the_job_and_lowers_what_is_available():
    snapshot = given(added(10))
    events = decide(snapshot, reserve(JOB, (WIDGET, WAREHOUSE, 4), expires_at=SOON))
    assert events == [
        StockReserved(item_id=WIDGET, location_id=WAREHOUSE, job_id=JOB, quantity=4, expires_at=SOON)
    ]
    after = level(fold(snapshot, events))
    assert (after.quantity, after.reserved, after.available) == (10, 4, 6)
    assert after.holds == {JOB: Hold(quantity=4, expires_at=SOON)}


def test_two_jobs_hold_separately_at_one_place():
    snapshot = given(added(10), held(JOB, 4))
    after = level(fold(snapshot, decide(snapshot, reserve(OTHER_JOB, (WIDGET, WAREHOUSE, 5)))))
    assert after.reserved == 9 and after.available == 1
    assert {job: h.quantity for job, h in after.holds.items()} == {JOB: 4, OTHER_JOB: 5}


def test_reserving_again_adds_to_the_hold_and_renews_its_expiry():
    snapshot = given(added(10), held(JOB, 4, expires_at=SOON))
    after = level(fold(snapshot, decide(snapshot, reserve(JOB, (WIDGET, WAREHOUSE, 3), expires_at=LATER))))
    assert after.holds == {JOB: Hold(quantity=7, expires_at=LATER)}
    assert after.reserved == 7


def test_a_reservation_of_lines_at_two_places_writes_one_reserve_event_per_line():
    snapshot = given(added(5), added(5, at=VAN), added(5, item=GADGET))
    events = decide(snapshot, reserve(JOB, (WIDGET, WAREHOUSE, 2), (WIDGET, VAN, 3), (GADGET, WAREHOUSE, 1)))
    assert [(e.item_id, e.location_id, e.quantity, e.job_id) for e in events] == [
        (WIDGET, WAREHOUSE, 2, JOB), (WIDGET, VAN, 3, JOB), (GADGET, WAREHOUSE, 1, JOB),
    ]
    after = fold(snapshot, events)
    assert after.job_holdings(JOB) == [(WIDGET, WAREHOUSE, 2), (WIDGET, VAN, 3), (GADGET, WAREHOUSE, 1)]


def test_reserving_more_than_is_available_is_insufficient_stock_with_the_available_quantity():
    snapshot = given(added(10), held(OTHER_JOB, 7))
    error = refused(snapshot, reserve(JOB, (WIDGET, WAREHOUSE, 4)), "insufficient_stock")
    assert error.extra["available_quantity"] == 3


def test_two_lines_on_one_place_are_checked_on_their_sum_and_nothing_is_emitted():
    snapshot = given(added(5))
    assert len(decide(snapshot, reserve(JOB, (WIDGET, WAREHOUSE, 3)))) == 1  # each line fits alone
    error = refused(snapshot, reserve(JOB, (WIDGET, WAREHOUSE, 3), (WIDGET, WAREHOUSE, 3)), "insufficient_stock")
    assert error.extra["available_quantity"] == 2  # what the first line left


def test_two_lines_on_one_place_that_fit_together_add_up_in_one_hold():
    snapshot = given(added(6))
    after = level(fold(snapshot, decide(snapshot, reserve(JOB, (WIDGET, WAREHOUSE, 3), (WIDGET, WAREHOUSE, 3)))))
    assert after.holds[JOB].quantity == 6 and after.available == 0


def test_a_later_bad_line_refuses_the_whole_reservation():
    refused(given(added(5)), reserve(JOB, (WIDGET, WAREHOUSE, 1), (WIDGET, VAN, 1)), "insufficient_stock")


def test_a_reservation_without_lines_is_a_validation_failure():
    refused(given(added(5)), ReserveStock(job_id=JOB, lines=[]), "validation_failed")


@pytest.mark.parametrize("quantity", BAD_QUANTITIES)
def test_reserving_a_quantity_that_is_not_a_positive_64_bit_integer_is_invalid(quantity):
    refused(given(added(5)), reserve(JOB, (WIDGET, WAREHOUSE, quantity)), "invalid_quantity")


def test_reserving_at_an_inactive_location_is_refused():
    refused(given(added(5), deactivated(WAREHOUSE)), reserve(JOB, (WIDGET, WAREHOUSE, 1)), "location_inactive")


def test_reserving_at_an_unknown_location_is_location_not_found():
    refused(given(), reserve(JOB, (WIDGET, NOWHERE, 1)), "location_not_found")


def test_reserving_an_unknown_item_is_not_found():
    refused(given(), reserve(JOB, (UNKNOWN_ITEM, WAREHOUSE, 1)), "not_found", 404)


# --- Release ----------------------------------------------------------------------------


def test_releasing_part_of_a_hold_keeps_the_rest_and_its_expiry():
    snapshot = given(added(10), held(JOB, 6, expires_at=SOON))
    events = decide(snapshot, ReleaseStock(job_id=JOB, lines=lines((WIDGET, WAREHOUSE, 2))))
    assert events == [StockReleased(item_id=WIDGET, location_id=WAREHOUSE, job_id=JOB, quantity=2, reason="requested")]
    after = level(fold(snapshot, events))
    assert after.holds == {JOB: Hold(quantity=4, expires_at=SOON)}
    assert (after.quantity, after.reserved, after.available) == (10, 4, 6)


def test_releasing_a_whole_hold_removes_it():
    snapshot = given(added(10), held(JOB, 6), held(OTHER_JOB, 1))
    after = level(fold(snapshot, decide(snapshot, ReleaseStock(job_id=JOB, lines=lines((WIDGET, WAREHOUSE, 6))))))
    assert JOB not in after.holds and after.holds[OTHER_JOB].quantity == 1
    assert after.reserved == 1


def test_releasing_more_than_the_job_holds_is_insufficient_reservation():
    snapshot = given(added(10), held(JOB, 2), held(OTHER_JOB, 5))
    error = refused(snapshot, ReleaseStock(job_id=JOB, lines=lines((WIDGET, WAREHOUSE, 3))), "insufficient_reservation")
    assert error.extra["reserved_quantity"] == 2


def test_releasing_where_the_job_holds_nothing_is_insufficient_reservation():
    snapshot = given(added(10), held(OTHER_JOB, 5))
    error = refused(snapshot, ReleaseStock(job_id=JOB, lines=lines((WIDGET, WAREHOUSE, 1))), "insufficient_reservation")
    assert error.extra["reserved_quantity"] == 0


def test_two_release_lines_on_one_place_are_checked_on_their_sum():
    snapshot = given(added(10), held(JOB, 3))
    command = ReleaseStock(job_id=JOB, lines=lines((WIDGET, WAREHOUSE, 2), (WIDGET, WAREHOUSE, 2)))
    error = refused(snapshot, command, "insufficient_reservation")
    assert error.extra["reserved_quantity"] == 1


def test_releasing_without_lines_gives_back_every_hold_of_the_job():
    snapshot = given(
        added(10), added(10, at=VAN), added(10, item=GADGET),
        held(JOB, 2), held(JOB, 3, at=VAN), held(JOB, 4, item=GADGET), held(OTHER_JOB, 5),
    )
    events = decide(snapshot, ReleaseStock(job_id=JOB, reason="expired"))
    assert sorted((e.item_id, e.location_id, e.quantity) for e in events) == [
        (WIDGET, WAREHOUSE, 2), (WIDGET, VAN, 3), (GADGET, WAREHOUSE, 4),
    ]
    assert all(isinstance(e, StockReleased) and e.reason == "expired" and e.job_id == JOB for e in events)
    after = fold(snapshot, events)
    assert after.job_holdings(JOB) == []
    assert after.job_holdings(OTHER_JOB) == [(WIDGET, WAREHOUSE, 5)]
    assert level(after).reserved == 5


def test_releasing_for_a_job_that_holds_nothing_is_not_found():
    refused(given(added(10), held(OTHER_JOB, 5)), ReleaseStock(job_id=JOB), "not_found", 404)


def test_releasing_at_an_inactive_location_is_allowed():
    snapshot = given(added(5), held(JOB, 5), deactivated(WAREHOUSE))
    after = level(fold(snapshot, decide(snapshot, ReleaseStock(job_id=JOB, lines=lines((WIDGET, WAREHOUSE, 5))))))
    assert after.reserved == 0 and after.holds == {}


@pytest.mark.parametrize("quantity", BAD_QUANTITIES)
def test_releasing_a_quantity_that_is_not_a_positive_64_bit_integer_is_invalid(quantity):
    snapshot = given(added(5), held(JOB, 5))
    refused(snapshot, ReleaseStock(job_id=JOB, lines=lines((WIDGET, WAREHOUSE, quantity))), "invalid_quantity")


def test_a_release_with_empty_lines_is_a_validation_failure():
    refused(given(added(5), held(JOB, 5)), ReleaseStock(job_id=JOB, lines=[]), "validation_failed")


# --- CompleteJob ------------------------------------------------------------------------


def test_completing_a_job_without_lines_consumes_exactly_what_it_holds():
    snapshot = given(added(10), added(8, at=VAN), held(JOB, 4), held(JOB, 3, at=VAN), held(OTHER_JOB, 2))
    events = decide(snapshot, CompleteJob(job_id=JOB, notes="done"))
    assert sorted(events, key=lambda e: e.location_id) == [
        JobCompleted(item_id=WIDGET, location_id=WAREHOUSE, job_id=JOB, quantity=4, from_reserved=4, notes="done"),
        JobCompleted(item_id=WIDGET, location_id=VAN, job_id=JOB, quantity=3, from_reserved=3, notes="done"),
    ]
    after = fold(snapshot, events)
    assert (level(after).quantity, level(after).reserved) == (6, 2)
    assert (level(after, VAN).quantity, level(after, VAN).reserved) == (5, 0)
    assert after.job_holdings(JOB) == []
    assert after.job_holdings(OTHER_JOB) == [(WIDGET, WAREHOUSE, 2)]


def test_completing_a_job_that_used_less_than_it_held_releases_the_rest_as_completed():
    snapshot = given(added(10), held(JOB, 5))
    events = decide(snapshot, CompleteJob(job_id=JOB, lines=lines((WIDGET, WAREHOUSE, 3))))
    assert events == [
        JobCompleted(item_id=WIDGET, location_id=WAREHOUSE, job_id=JOB, quantity=3, from_reserved=3),
        StockReleased(item_id=WIDGET, location_id=WAREHOUSE, job_id=JOB, quantity=2, reason="completed"),
    ]
    after = level(fold(snapshot, events))
    assert (after.quantity, after.reserved, after.available, after.holds) == (7, 0, 7, {})


def test_completing_a_job_that_used_more_than_it_held_takes_the_excess_from_available_stock():
    snapshot = given(added(10), held(JOB, 3), held(OTHER_JOB, 2))
    events = decide(snapshot, CompleteJob(job_id=JOB, lines=lines((WIDGET, WAREHOUSE, 8))))
    assert events == [JobCompleted(item_id=WIDGET, location_id=WAREHOUSE, job_id=JOB, quantity=8, from_reserved=3)]
    after = level(fold(snapshot, events))
    assert (after.quantity, after.reserved, after.available) == (2, 2, 0)
    assert after.holds == {OTHER_JOB: Hold(quantity=2)}


def test_completing_a_job_whose_excess_is_not_available_is_insufficient_stock():
    snapshot = given(added(10), held(JOB, 3), held(OTHER_JOB, 2))
    error = refused(snapshot, CompleteJob(job_id=JOB, lines=lines((WIDGET, WAREHOUSE, 9))), "insufficient_stock")
    assert error.extra["available_quantity"] == 5


def test_completing_a_job_releases_its_holds_at_places_it_did_not_use():
    snapshot = given(
        added(10), added(10, at=VAN), added(10, item=GADGET),
        held(JOB, 2), held(JOB, 3, at=VAN), held(JOB, 4, item=GADGET), held(OTHER_JOB, 1, at=VAN),
    )
    events = decide(snapshot, CompleteJob(job_id=JOB, lines=lines((WIDGET, WAREHOUSE, 2))))
    assert events[0] == JobCompleted(item_id=WIDGET, location_id=WAREHOUSE, job_id=JOB, quantity=2, from_reserved=2)
    released = events[1:]
    assert all(isinstance(e, StockReleased) and e.reason == "completed" and e.job_id == JOB for e in released)
    assert sorted((e.item_id, e.location_id, e.quantity) for e in released) == [(WIDGET, VAN, 3), (GADGET, WAREHOUSE, 4)]
    after = fold(snapshot, events)
    assert after.job_holdings(JOB) == []
    assert after.job_holdings(OTHER_JOB) == [(WIDGET, VAN, 1)]
    assert (level(after, VAN).quantity, level(after, item=GADGET).quantity) == (10, 10)


def test_completing_a_job_with_lines_where_it_held_nothing_consumes_available_stock():
    snapshot = given(added(10))
    events = decide(snapshot, CompleteJob(job_id=JOB, lines=lines((WIDGET, WAREHOUSE, 4))))
    assert events == [JobCompleted(item_id=WIDGET, location_id=WAREHOUSE, job_id=JOB, quantity=4, from_reserved=0)]


def test_two_completion_lines_on_one_place_use_the_hold_once():
    snapshot = given(added(10), held(JOB, 5))
    events = decide(snapshot, CompleteJob(job_id=JOB, lines=lines((WIDGET, WAREHOUSE, 3), (WIDGET, WAREHOUSE, 3))))
    assert [(e.quantity, e.from_reserved) for e in events] == [(3, 3), (3, 2)]
    after = level(fold(snapshot, events))
    assert (after.quantity, after.reserved) == (4, 0)


def test_completing_a_job_that_holds_nothing_is_not_found():
    refused(given(added(10), held(OTHER_JOB, 2)), CompleteJob(job_id=JOB), "not_found", 404)


def test_completing_a_job_at_an_inactive_location_is_allowed():
    snapshot = given(added(5), held(JOB, 5), deactivated(WAREHOUSE))
    after = level(fold(snapshot, decide(snapshot, CompleteJob(job_id=JOB))))
    assert (after.quantity, after.reserved) == (0, 0)


@pytest.mark.parametrize("quantity", BAD_QUANTITIES)
def test_completing_with_a_quantity_that_is_not_a_positive_64_bit_integer_is_invalid(quantity):
    snapshot = given(added(5), held(JOB, 5))
    refused(snapshot, CompleteJob(job_id=JOB, lines=lines((WIDGET, WAREHOUSE, quantity))), "invalid_quantity")


def test_completing_with_a_line_at_an_unknown_location_is_location_not_found():
    snapshot = given(added(5), held(JOB, 5))
    refused(snapshot, CompleteJob(job_id=JOB, lines=lines((WIDGET, NOWHERE, 1))), "location_not_found")


# --- items ------------------------------------------------------------------------------


def test_creating_an_item_records_its_attributes():
    snapshot = given(items=())
    events = decide(snapshot, CreateItem(item_id=WIDGET, attributes=part()))
    assert events == [ItemCreated(item_id=WIDGET, attributes=part())]
    item = fold(snapshot, events).item(WIDGET)
    assert item.exists and item.version == 1 and item.attributes == part()


@pytest.mark.parametrize(
    ("attributes", "code"),
    [
        (part(number=""), "missing_part_number"),
        (part(number="   "), "missing_part_number"),
        (part(name=""), "missing_part_name"),
        (part(name=" \t"), "missing_part_name"),
    ],
)
def test_an_item_without_part_number_or_part_name_is_refused(attributes, code):
    refused(given(items=()), CreateItem(item_id=WIDGET, attributes=attributes), code)
    refused(given(), UpdateItem(item_id=WIDGET, attributes=attributes), code)


def test_creating_an_item_whose_id_exists_is_a_conflict():
    refused(given(), CreateItem(item_id=WIDGET, attributes=part()), "conflict", 409)


def test_updating_an_item_with_no_change_emits_nothing():
    snapshot = given()
    same = snapshot.item(WIDGET).attributes
    assert decide(snapshot, UpdateItem(item_id=WIDGET, attributes=same)) == []


def test_updating_an_item_lists_the_changed_fields():
    snapshot = given()
    new = part("P-1", "Part 1 (blue)", min_stock_level=5)
    events = decide(snapshot, UpdateItem(item_id=WIDGET, attributes=new))
    assert events == [ItemUpdated(item_id=WIDGET, attributes=new, changed=["part_name", "min_stock_level"])]
    assert fold(snapshot, events).item(WIDGET).attributes == new


def test_updating_an_unknown_item_is_not_found():
    refused(given(), UpdateItem(item_id=UNKNOWN_ITEM, attributes=part()), "not_found", 404)


def test_deleting_an_item_without_stock_removes_it():
    snapshot = given(added(3), StockRemoved(item_id=WIDGET, location_id=WAREHOUSE, quantity=3))
    events = decide(snapshot, DeleteItem(item_id=WIDGET))
    assert events == [ItemDeleted(item_id=WIDGET)]
    after = fold(snapshot, events)
    assert not after.item(WIDGET).exists
    refused(after, DeleteItem(item_id=WIDGET), "not_found", 404)
    refused(after, UpdateItem(item_id=WIDGET, attributes=part()), "not_found", 404)


def test_deleting_an_item_with_stock_is_refused():
    refused(given(added(1, at=VAN)), DeleteItem(item_id=WIDGET), "stock_remains", 409)


def test_deleting_an_item_with_reservations_is_refused():
    refused(given(added(2), held(JOB, 2)), DeleteItem(item_id=WIDGET), "stock_remains", 409)


# --- locations --------------------------------------------------------------------------


def test_creating_a_location_records_it_active():
    snapshot = given(locations=(), inactive=())
    events = decide(snapshot, CreateLocation(location_id=WAREHOUSE, attributes=place()))
    assert events == [LocationCreated(location_id=WAREHOUSE, attributes=place())]
    location = fold(snapshot, events).location(WAREHOUSE)
    assert location.exists and location.active and location.version == 1


def test_creating_a_location_without_a_name_is_a_validation_failure():
    refused(given(), CreateLocation(location_id=NOWHERE, attributes=place("  ")), "validation_failed")


def test_creating_a_location_whose_id_exists_is_a_conflict():
    refused(given(), CreateLocation(location_id=WAREHOUSE, attributes=place()), "conflict", 409)


def test_updating_a_location_with_no_change_emits_nothing():
    snapshot = given()
    same = snapshot.location(WAREHOUSE).attributes
    assert decide(snapshot, UpdateLocation(location_id=WAREHOUSE, attributes=same)) == []


def test_deactivating_a_location_is_an_update_of_is_active():
    snapshot = given(added(5))
    inactive = place(f"Place {WAREHOUSE}", active=False)
    events = decide(snapshot, UpdateLocation(location_id=WAREHOUSE, attributes=inactive))
    assert events == [LocationUpdated(location_id=WAREHOUSE, attributes=inactive, changed=["is_active"])]
    after = fold(snapshot, events)
    assert after.location(WAREHOUSE).exists and not after.location(WAREHOUSE).active
    assert after.location(WAREHOUSE).version == 2
    refused(after, AddStock(item_id=WIDGET, location_id=WAREHOUSE, quantity=1), "location_inactive")
    assert len(decide(after, RemoveStock(item_id=WIDGET, location_id=WAREHOUSE, quantity=5))) == 1


def test_updating_a_location_lists_every_changed_field():
    snapshot = given()
    new = place("Van #1", location_type="vehicle", city="Springfield")
    events = decide(snapshot, UpdateLocation(location_id=WAREHOUSE, attributes=new))
    assert events[0].changed == ["location_name", "location_type", "city"]


def test_updating_an_unknown_location_is_not_found():
    refused(given(), UpdateLocation(location_id=NOWHERE, attributes=place()), "not_found", 404)


def test_renaming_a_location_to_blank_is_a_validation_failure():
    refused(given(), UpdateLocation(location_id=WAREHOUSE, attributes=place("")), "validation_failed")


# --- evolve -----------------------------------------------------------------------------


def test_evolve_leaves_the_state_it_was_given_unchanged():
    state = given(added(10), held(JOB, 4, expires_at=SOON), added(3, at=VAN)).item(WIDGET)
    before = copy.deepcopy(state)
    for event in [
        added(1), StockRemoved(item_id=WIDGET, location_id=WAREHOUSE, quantity=1),
        held(JOB, 1), held(OTHER_JOB, 2),
        StockReleased(item_id=WIDGET, location_id=WAREHOUSE, job_id=JOB, quantity=4),
        JobCompleted(item_id=WIDGET, location_id=WAREHOUSE, job_id=JOB, quantity=5, from_reserved=4),
        StockAdjusted(item_id=WIDGET, location_id=VAN, quantity=-1),
        TransferredOut(item_id=WIDGET, location_id=VAN, to_location_id=WAREHOUSE, quantity=1,
                       transfer_id=uuid.UUID(TRANSFER_ID)),
        ItemUpdated(item_id=WIDGET, attributes=part(), changed=["part_number"]),
        ItemDeleted(item_id=WIDGET),
    ]:
        evolve(state, event)
        assert state == before
    location = given().location(WAREHOUSE)
    location_before = copy.deepcopy(location)
    evolve(location, deactivated(WAREHOUSE))
    assert location == location_before


def test_every_event_moves_its_stream_version_by_one():
    item = ItemState(item_id=WIDGET)
    history = [
        ItemCreated(item_id=WIDGET, attributes=part()),
        added(10), held(JOB, 3), StockReleased(item_id=WIDGET, location_id=WAREHOUSE, job_id=JOB, quantity=1),
        JobCompleted(item_id=WIDGET, location_id=WAREHOUSE, job_id=JOB, quantity=2, from_reserved=2),
        StockAdjusted(item_id=WIDGET, location_id=WAREHOUSE, quantity=2),
        TransferredOut(item_id=WIDGET, location_id=WAREHOUSE, to_location_id=VAN, quantity=1,
                       transfer_id=uuid.UUID(TRANSFER_ID)),
        TransferredIn(item_id=WIDGET, location_id=VAN, from_location_id=WAREHOUSE, quantity=1,
                      transfer_id=uuid.UUID(TRANSFER_ID)),
        StockRemoved(item_id=WIDGET, location_id=VAN, quantity=1),
        ItemUpdated(item_id=WIDGET, attributes=part(name="Renamed"), changed=["part_name"]),
        ItemDeleted(item_id=WIDGET),
    ]
    for version, event in enumerate(history, start=1):
        item = evolve(item, event)
        assert item.version == version
    location = LocationState(location_id=WAREHOUSE)
    location = evolve(location, LocationCreated(location_id=WAREHOUSE, attributes=place()))
    location = evolve(location, deactivated(WAREHOUSE))
    assert location.version == 2


def test_evolve_refuses_an_event_of_another_stream_kind():
    with pytest.raises(TypeError):
        evolve(LocationState(location_id=WAREHOUSE), added(1))
    with pytest.raises(TypeError):
        evolve(ItemState(item_id=WIDGET), LocationCreated(location_id=WAREHOUSE, attributes=place()))


# --- the invariants, for any sequence of commands ---------------------------------------

A, B = WAREHOUSE, VAN
jobs = st.integers(1, 3)
places = st.sampled_from([A, B])
amounts = st.integers(-1, 5)  # mostly valid, sometimes 0 or negative (refused)
stock_lines = st.lists(
    st.builds(Line, item_id=st.just(WIDGET), location_id=places, quantity=st.integers(0, 4)), min_size=1, max_size=2
)
adding = st.builds(AddStock, item_id=st.just(WIDGET), location_id=places, quantity=st.integers(-1, 20))
reserving = st.builds(ReserveStock, job_id=jobs, lines=stock_lines, expires_at=st.sampled_from([None, SOON, LATER]))

commands = st.one_of(
    adding,
    adding,  # weighted: stock has to come in before much else can happen
    st.builds(RemoveStock, item_id=st.just(WIDGET), location_id=places, quantity=amounts),
    st.builds(AdjustStock, item_id=st.just(WIDGET), location_id=places, quantity=st.integers(-8, 8)),
    st.builds(SetCountedQuantity, item_id=st.just(WIDGET), location_id=places, quantity=st.integers(-1, 12)),
    st.builds(
        TransferStock, item_id=st.just(WIDGET), from_location_id=places, to_location_id=places,
        quantity=amounts, transfer_id=st.uuids().map(str),
    ),
    reserving,
    reserving,
    st.builds(ReleaseStock, job_id=jobs, lines=st.none() | stock_lines),
    st.builds(CompleteJob, job_id=jobs, lines=st.none() | stock_lines),
    st.builds(UpdateLocation, location_id=st.just(B),
              attributes=st.builds(place, st.just(f"Place {B}"), active=st.booleans())),
)

# Every sequence starts with stock at both places and holds for every job, so releases and
# completions have something to work on; the warm-up goes through decide like the rest.
WARM_UP = [
    AddStock(item_id=WIDGET, location_id=A, quantity=20),
    AddStock(item_id=WIDGET, location_id=B, quantity=20),
    ReserveStock(job_id=1, lines=[Line(item_id=WIDGET, location_id=A, quantity=3)], expires_at=SOON),
    ReserveStock(job_id=2, lines=[Line(item_id=WIDGET, location_id=B, quantity=2)]),
    ReserveStock(job_id=3, lines=[Line(item_id=WIDGET, location_id=A, quantity=1),
                                  Line(item_id=WIDGET, location_id=B, quantity=1)]),
]

SIGN = {StockAdded: 1, StockAdjusted: 1, TransferredIn: 1, StockRemoved: -1, TransferredOut: -1, JobCompleted: -1}


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@for_all(st.lists(commands, max_size=30))
def test_any_sequence_of_commands_keeps_the_stock_invariants(sequence):
    snapshot = given(items=(WIDGET,), locations=(A, B), inactive=())
    moved = 0
    item_events = 1  # ItemCreated
    for command in [*WARM_UP, *sequence]:
        before = copy.deepcopy(snapshot)
        try:
            events = decide(snapshot, command)
        except errors.LedgerError:
            assert snapshot == before  # a refused command changes nothing
            continue
        assert snapshot == before  # deciding never changes the snapshot it reads
        if isinstance(command, TransferStock):
            out, into = events
            assert (type(out), type(into)) == (TransferredOut, TransferredIn)
            assert out.transfer_id == into.transfer_id
            assert (out.location_id, into.location_id) == (command.from_location_id, command.to_location_id)
        snapshot = fold(snapshot, events)
        item_events += sum(1 for e in events if not isinstance(e, LocationUpdated))
        moved += sum(SIGN.get(type(e), 0) * e.quantity for e in events if not isinstance(e, LocationUpdated))

        item = snapshot.item(WIDGET)
        assert item.version == item_events
        for location in (A, B):
            here = item.level(location)
            assert 0 <= here.reserved <= here.quantity <= MAX_QUANTITY
            assert here.available == here.quantity - here.reserved
            assert here.reserved == sum(h.quantity for h in here.holds.values())
            assert all(h.quantity > 0 for h in here.holds.values())
        assert sum(item.level(location).quantity for location in (A, B)) == moved
