"""The transaction history's signed `quantity`, as `ledger.effects` defines it (`Effect.shown`):

- every movement of stock on hand shows its change of on-hand quantity: Add +n,
  Remove -n, Adjust as signed, Transfer_out -n, Transfer_in +n, Job_complete -n (all it
  consumed, whether or not it came out of the job's hold);
- Reserve and Release move no stock, so they show the change of *available* quantity
  instead: Reserve -n, Release +n. A history therefore sums to the on-hand quantity
  over every type except Reserve and Release.
"""

from __future__ import annotations

from ledger.effects import effect
from schemas import LedgerEvent


def signed_quantity(event: LedgerEvent) -> int:
    return effect(event).shown  # type: ignore[union-attr]  # called for stock events only
