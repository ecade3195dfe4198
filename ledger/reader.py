"""The never-skip reader: the ledger in position order, for projectors, the relay, feeds.

Positions are drawn from a sequence inside each append, so a transaction may commit a
position below one that is already visible. A reader that moved past a gap would never
see the late event. This reader reads only up to a *horizon*: the highest position that
was visible at some poll, once every append in flight at that poll has finished (see
`read_horizon.sql` for why that is enough). Under load the horizon trails the head
by one poll; nothing is ever skipped, and a gap left by a rolled-back append is passed
as soon as its transaction is over.
"""

from __future__ import annotations

import asyncpg

from ledger import statements
from ledger.records import envelopes
from schemas import EventEnvelope


class Horizon:
    """Tracks the safe read horizon across polls."""

    def __init__(self, position: int = 0):
        self.position = position
        self._pending: tuple[int, list[str]] | None = None  # (visible max, appends in flight then)

    @property
    def held_back(self) -> bool:
        """Whether appends in flight hold the horizon below what is already visible."""
        return self._pending is not None and self._pending[0] > self.position

    async def advance(self, conn: asyncpg.Connection | asyncpg.Pool) -> int:
        previous = self._pending
        row = await conn.fetchrow(statements.READ_HORIZON, ",".join(previous[1]) if previous else "")
        visible_max, in_progress = row["visible_max"], row["in_flight"]
        if previous and row["previous_finished"]:
            self.position = max(self.position, previous[0])
            previous = None
        if not in_progress:  # no append in flight: all that is visible is final
            self.position = max(self.position, visible_max)
            self._pending = None
        elif previous is None:
            self._pending = (visible_max, in_progress)
        return self.position


class LedgerReader:
    def __init__(self, pool: asyncpg.Pool, *, after: int = 0, batch_size: int = 1000):
        self._pool = pool
        self.position = after  # the last position handed out
        self.batch_size = batch_size
        self._horizon = Horizon(after)

    @property
    def held_back(self) -> bool:
        """Events are visible past the horizon but an append in flight keeps them unsafe."""
        return self._horizon.held_back

    async def poll(self) -> list[EventEnvelope]:
        """The next events after `position`, in order; empty when none is safe to read yet."""
        return envelopes(await self.poll_rows())

    async def poll_rows(self) -> list[asyncpg.Record]:
        """As `poll`, undecoded: for readers that want the stored JSON as it is."""
        async with self._pool.acquire() as conn:
            horizon = await self._horizon.advance(conn)
            if horizon <= self.position:
                return []
            rows = await conn.fetch(statements.READ_EVENTS, self.position, horizon, self.batch_size)
        if rows:
            self.position = rows[-1]["position"]
        return rows
