"""In-process queueing of the commands of one process that touch the same streams.

The database alone decides who wins a race (the unique stream version, then a retry
under `FOR UPDATE`), so this is not needed for correctness. It is there for hot items:
without it, every command on an item that sixteen requests of the same process are
changing at once reads the same head, all but one lose the race, and each loser pays a
second, locked attempt of five round trips. Queued here, they take turns in memory and
nearly every command succeeds on its first, two-round-trip attempt; only commands of
other processes still race.
"""

from __future__ import annotations

import asyncio
import contextlib
import weakref
from collections.abc import AsyncIterator, Iterable


class StreamQueues:
    def __init__(self) -> None:
        # A lock lives while a holder or a waiter references it, then it is dropped.
        self._locks: weakref.WeakValueDictionary[tuple[int, str], asyncio.Lock] = weakref.WeakValueDictionary()

    @contextlib.asynccontextmanager
    async def turn(self, org_id: int, keys: Iterable[str]) -> AsyncIterator[None]:
        """Wait until no other command of this process holds any of `keys`, then hold them.

        Keys are taken in sorted order, so two commands never wait on each other.
        """
        locks = []
        for key in sorted(set(keys)):
            lock = self._locks.get((org_id, key))
            if lock is None:
                lock = self._locks[(org_id, key)] = asyncio.Lock()
            locks.append(lock)
        async with contextlib.AsyncExitStack() as stack:
            for lock in locks:
                await stack.enter_async_context(lock)
            yield
