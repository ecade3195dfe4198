"""The running state of a group being decided: the loaded snapshot as the commands decided
so far leave it.

A group may hold thousands of lines over thousands of items. Evolving one immutable
`Snapshot` of all of them copied its item map for every event (quadratic in the group's
size: a group of 32 batches of 1,000 lines on distinct items copied half a billion map
entries). Here the group's state is one map changed in place, and each command is
decided on a `Snapshot` of just what it reads (its footprint), which it evolves alone;
its result keeps that small snapshot, so an answer shows the state its own command left
even when later commands of the group change the same item. An atomic unit's changes
are undone from a log when it is refused.
"""

from __future__ import annotations

from collections.abc import Iterable

from ledger.decide import evolve_snapshot
from ledger.footprint import Footprint
from ledger.state import ItemState, Snapshot
from schemas import LedgerEvent


class RunningState:
    def __init__(self, loaded: Snapshot):
        self._items = dict(loaded.items)
        self._locations = dict(loaded.locations)
        self._undo: list[tuple[dict, int, object]] | None = None  # (map, key, state before) while a unit runs
        # job -> the items holding stock for it, or having held some during this group (a
        # superset is harmless: a view with an item more reads nothing the job lacks).
        self._held_by: dict[int, set[int]] = {}
        for item in loaded.items.values():
            self._index_holds(item)

    def view(self, reads: Footprint) -> Snapshot:
        """What a command with this footprint may read, as a snapshot of its own. A command
        on a job also reads every item the job holds stock of, at the places it holds it
        (found through the index, not by copying the group's whole state per command)."""
        items: Iterable[int] = reads.items  # most commands: no job, nothing to add
        locations: Iterable[int] = reads.locations
        if reads.job_ids:
            items, locations = self._with_holds(reads)
        return Snapshot(
            items={i: self._items[i] for i in items if i in self._items},
            locations={loc: self._locations[loc] for loc in locations if loc in self._locations},
        )

    def _with_holds(self, reads: Footprint) -> tuple[dict[int, None], dict[int, None]]:
        """The footprint's items and locations, and those where its jobs hold stock."""
        items, locations = dict.fromkeys(reads.items), dict.fromkeys(reads.locations)
        for job_id in reads.job_ids:
            for item_id in self._held_by.get(job_id, ()):
                if (item := self._items.get(item_id)) is None:  # made by a unit undone since
                    continue
                items[item_id] = None
                locations.update((loc, None) for loc, level in item.stock.items() if job_id in level.holds)
        return items, locations

    def apply(self, view: Snapshot, events: list[LedgerEvent]) -> Snapshot:
        """Evolve a command's view by its events and keep what changed; the evolved view."""
        after = view
        for event in events:
            after = evolve_snapshot(after, event)
        self._keep(self._items, view.items, after.items)
        self._keep(self._locations, view.locations, after.locations)
        return after

    def begin_unit(self) -> None:
        self._undo = []

    def undo_unit(self) -> None:
        """Forget every change since `begin_unit` (an atomic unit was refused)."""
        for states, key, before in reversed(self._undo or []):
            if before is None:
                states.pop(key, None)
            else:
                states[key] = before
        self._undo = None

    def end_unit(self) -> None:
        self._undo = None

    def snapshot(self) -> Snapshot:
        """The whole group's state now (for the append to find the rows that changed)."""
        return Snapshot(items=dict(self._items), locations=dict(self._locations))

    def _keep(self, states: dict, before: dict, after: dict) -> None:
        if after is before:
            return
        for key, state in after.items():
            if before.get(key) is not state:
                if self._undo is not None:
                    self._undo.append((states, key, states.get(key)))
                states[key] = state
                if states is self._items:
                    self._index_holds(state)

    def _index_holds(self, item: ItemState) -> None:
        for level in item.stock.values():
            for job_id in level.holds:
                self._held_by.setdefault(job_id, set()).add(item.item_id)
