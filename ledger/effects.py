"""What each stock event does to stock, defined once.

`RULES` says, for every stock event type, how it changes the numbers at its (item,
location): the quantity on hand, the quantity reserved, and the hold of the event's job
there (reserved is the sum of the holds, so a change of reserved is always a change of
the job's hold), plus what a job consumed and released in all, and whether it renews the
hold's expiry. Each number is one event field with a sign, so the same rules are read
here, by Python, and turned into the SQL of the set-based rebuild
(`projections/stage_sql.py`).

Everything that folds stock goes through them: `decide`'s `evolve` and the write model
(`evolve_level`), the live projections (`effect`), verify's re-fold, as-of reads, the
webhooks' item levels (`Effect.total`), the transaction history (`Effect.shown`) and the
rebuild. `tests/test_fold_everywhere.py` sends every event type through all of them.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from operator import attrgetter
from typing import NamedTuple, TypeGuard, overload

import msgspec

from ledger.state import Hold, StockLevel
from schemas import (
    JobCompleted,
    LedgerEvent,
    StockAdded,
    StockAdjusted,
    StockEvent,
    StockReleased,
    StockRemoved,
    StockReserved,
    TransferredIn,
    TransferredOut,
)


class Term(NamedTuple):
    """A number an event carries, with a sign: `sign * event.<field>`."""

    field: str
    sign: int


def plus(field: str) -> Term:
    return Term(field, 1)


def minus(field: str) -> Term:
    return Term(field, -1)


class Rule(msgspec.Struct, frozen=True, kw_only=True):
    """How one event type changes stock at its place. None: it leaves that number alone."""

    quantity: Term | None = None  # the quantity on hand
    reserved: Term | None = None  # the quantity reserved, and with it the event's job's hold
    consumed: Term | None = None  # what the job used, in all
    released: Term | None = None  # what the job gave back, in all
    renews: bool = False  # the job's hold here takes the event's `expires_at`
    # Half of a move between two places of the item (the other half is recorded with it):
    # the item's total does not change, and a follower that counts totals skips both halves.
    between_places: bool = False

    @property
    def shown(self) -> Term | None:
        """The transaction history's signed quantity: the change of stock on hand, or, for
        an event that moves none, the change of available (a reservation shows -n)."""
        if self.quantity is not None:
            return self.quantity
        if self.reserved is not None:
            return Term(self.reserved.field, -self.reserved.sign)
        return None


RULES: dict[type, Rule] = {
    StockAdded: Rule(quantity=plus("quantity")),
    StockRemoved: Rule(quantity=minus("quantity")),
    StockAdjusted: Rule(quantity=plus("quantity")),  # signed
    TransferredOut: Rule(quantity=minus("quantity"), between_places=True),
    TransferredIn: Rule(quantity=plus("quantity"), between_places=True),
    StockReserved: Rule(reserved=plus("quantity"), renews=True),
    StockReleased: Rule(reserved=minus("quantity"), released=plus("quantity")),
    JobCompleted: Rule(quantity=minus("quantity"), reserved=minus("from_reserved"), consumed=plus("quantity")),
}
RULES_BY_TAG: dict[str, Rule] = {cls.__struct_config__.tag: rule for cls, rule in RULES.items()}  # type: ignore[attr-defined]  # RULES' keys are event classes


class Effect(NamedTuple):
    """What one stock event does at its (item, location)."""

    quantity: int  # change of the quantity on hand there
    reserved: int  # change of the quantity reserved there, which is the change of the job's hold
    job_id: int | None  # the job the event is about (its hold), if any
    consumed: int
    released: int
    renews: bool
    expires_at: datetime | None  # the hold's expiry from now on, when `renews`
    total: int  # change of the item's total as a follower of totals sees it (transfers: 0)
    shown: int  # the transaction history's signed quantity


def is_stock_event(event: LedgerEvent) -> TypeGuard[StockEvent]:
    return type(event) in RULES


@overload
def effect(event: StockEvent) -> Effect: ...
@overload
def effect(event: LedgerEvent) -> Effect | None: ...
def effect(event: LedgerEvent) -> Effect | None:
    """The event's effect on stock at its place; None for an event that is not a stock event."""
    compute = _COMPILED.get(type(event))
    return None if compute is None else compute(event)


# Every projection asks for every event's effect, so each rule is turned once into a
# function that reads the event's fields directly (under half the time of interpreting it).
_new_effect = tuple.__new__


def _zero(event: LedgerEvent) -> int:
    return 0


def _reader(term: Term | None) -> Callable[[LedgerEvent], int]:
    if term is None:
        return _zero
    read = attrgetter(term.field)
    return read if term.sign > 0 else (lambda event: -read(event))


def _compiled(rule: Rule) -> Callable[[LedgerEvent], Effect]:
    quantity_of, reserved_of, consumed_of, released_of, shown_of = map(
        _reader, (rule.quantity, rule.reserved, rule.consumed, rule.released, rule.shown))
    renews, between_places = rule.renews, rule.between_places

    def compute(event: LedgerEvent) -> Effect:
        quantity = quantity_of(event)
        return _new_effect(Effect, (
            quantity, reserved_of(event), getattr(event, "job_id", None), consumed_of(event), released_of(event),
            renews, getattr(event, "expires_at", None) if renews else None, 0 if between_places else quantity,
            shown_of(event),
        ))

    return compute


_COMPILED = {cls: _compiled(rule) for cls, rule in RULES.items()}


def evolve_level(level: StockLevel, event: StockEvent) -> StockLevel:
    """The level at the event's place after a stock event (a stock record exists there now)."""
    e = effect(event)
    holds = level.holds
    if e.reserved or e.renews:
        holds = _hold_changed(holds, e)
    return StockLevel(quantity=level.quantity + e.quantity, reserved=level.reserved + e.reserved,
                      holds=holds, recorded=True)


def _hold_changed(holds: dict[int, Hold], e: Effect) -> dict[int, Hold]:
    """The holds with the event's job's changed; a hold that comes to 0 is gone. Reserving
    more where a job already holds renews the hold's expiry with the new one."""
    before = holds.get(e.job_id)  # type: ignore[arg-type]  # a hold-changing event has a job
    quantity = (before.quantity if before else 0) + e.reserved
    changed = dict(holds)
    if quantity:
        changed[e.job_id] = Hold(quantity=quantity, expires_at=e.expires_at if e.renews else before.expires_at)  # type: ignore[index, union-attr]  # a hold-changing event has a job
    else:
        del changed[e.job_id]  # type: ignore[arg-type]  # a hold-changing event has a job
    return changed
