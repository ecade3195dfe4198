"""Group commit: the commands of one process, appended together while an append is in flight.

Every command a process executes joins a queue. When no append is running, the first
command starts one at once (no timer: a quiet service adds no latency); commands that
arrive while it runs wait and go together in the next one. The store decides each of
them alone, in arrival order, on the state the ones before it leave, and records the
accepted ones in one transaction; each caller gets its own result or refusal.

Groups are per organization (an append writes one organization's streams), and one
group runs at a time per organization: that also means commands of one process never
race each other in the database, only other processes' commands do.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from typing import Generic, TypeVar

Unit = TypeVar("Unit")
Result = TypeVar("Result")

MAX_GROUP = 1000  # units in one append; more wait for the next (bounds the append's size)


class GroupCommit(Generic[Unit, Result]):
    def __init__(self, run: Callable[[int, Sequence[Unit]], Awaitable[Sequence[Result | BaseException]]]):
        """`run(org_id, units)` records a group and returns one result (or the exception
        to raise to that unit's caller) per unit, in order."""
        self._run = run
        self._waiting: dict[int, list[tuple[Unit, asyncio.Future]]] = {}
        self._running: set[int] = set()
        self.groups = 0  # appends made, for metrics and tests
        self.units = 0

    async def submit(self, org_id: int, unit: Unit) -> Result:
        future = asyncio.get_running_loop().create_future()
        self._waiting.setdefault(org_id, []).append((unit, future))
        if org_id not in self._running:
            self._running.add(org_id)
            asyncio.get_running_loop().create_task(self._drain(org_id), name=f"group commit {org_id}")
        return await future

    async def _drain(self, org_id: int) -> None:
        try:
            while waiting := self._waiting.get(org_id):
                group, self._waiting[org_id] = waiting[:MAX_GROUP], waiting[MAX_GROUP:]
                live = [(unit, future) for unit, future in group if not future.cancelled()]
                if not live:
                    continue
                try:
                    results = await self._run(org_id, [unit for unit, _ in live])
                except BaseException as exc:  # noqa: BLE001 - every caller of the group learns it
                    results = [exc] * len(live)
                self.groups += 1
                self.units += len(live)
                for (_, future), result in zip(live, results, strict=True):
                    if future.done():
                        continue
                    if isinstance(result, BaseException):
                        future.set_exception(result)
                    else:
                        future.set_result(result)
        finally:
            self._running.discard(org_id)
            if not self._waiting.get(org_id):
                self._waiting.pop(org_id, None)
            elif org_id not in self._running:  # a unit arrived as we were leaving
                self._running.add(org_id)
                asyncio.get_running_loop().create_task(self._drain(org_id), name=f"group commit {org_id}")
