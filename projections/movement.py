"""What one stock event does to the numbers at its (item, location), in one place.

`change` is the effect on (quantity, reserved), the same arithmetic as `ledger.decide`'s
evolve. `signed_quantity` is the transaction history's `quantity`:

- every movement of stock on hand shows its change of on-hand quantity: Add +n,
  Remove -n, Adjust as signed, Transfer_out -n, Transfer_in +n, Job_complete -n (all it
  consumed, whether or not it came out of the job's reservation);
- Reserve and Release move no stock, so they show the change of *available* quantity
  instead: Reserve -n, Release +n. A history therefore sums to the on-hand quantity
  over every type except Reserve and Release.
"""

from __future__ import annotations

from schemas import (
    JobCompleted,
    LedgerEvent,
    StockAdded,
    StockAdjusted,
    StockReleased,
    StockRemoved,
    StockReserved,
    TransferredIn,
    TransferredOut,
)


def change(event: LedgerEvent) -> tuple[int, int]:
    """(quantity change, reserved change) at the event's place; (0, 0) for lifecycle events."""
    match event:
        case StockAdded(quantity=n) | TransferredIn(quantity=n) | StockAdjusted(quantity=n):
            return n, 0
        case StockRemoved(quantity=n) | TransferredOut(quantity=n):
            return -n, 0
        case StockReserved(quantity=n):
            return 0, n
        case StockReleased(quantity=n):
            return 0, -n
        case JobCompleted(quantity=n, from_reserved=r):
            return -n, -r
    return 0, 0


def signed_quantity(event: LedgerEvent) -> int:
    quantity, reserved = change(event)
    if isinstance(event, StockReserved | StockReleased):
        return quantity - reserved  # the change of available
    return quantity
