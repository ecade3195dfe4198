"""Reading the ledger once, as an API page, an export or an as-of fold does.

A projector polls the never-skip reader again and again; a one-shot reader needs one
horizon now, and not one below what was already visible when it began (a caller who has
just written must see that write). `settled_horizon` polls the same `Horizon` until the
appends in flight at its first poll have finished: usually one more poll, a millisecond
later. Every page is then read up to that horizon, so it never shows a position that a
later commit could still precede.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Sequence

import asyncpg

from ledger import errors, statements
from ledger.reader import Horizon

_POLL = 0.002  # appends last about a millisecond: the second poll rarely waits longer


async def settled_horizon(conn: asyncpg.Connection | asyncpg.Pool, *, timeout: float = 2.0) -> int:
    """The highest position that no later commit can precede, at least everything visible now."""
    horizon = Horizon()
    position = await horizon.advance(conn)
    deadline = time.monotonic() + timeout
    # A horizon that moved at all has reached the first poll's visible maximum.
    while horizon.held_back and position == 0:
        if time.monotonic() > deadline:
            # Appends stayed in flight for the whole wait (a long transaction holds them).
            raise errors.NotCaughtUp("The ledger's horizon did not settle in time; retry shortly")
        await asyncio.sleep(_POLL)
        position = await horizon.advance(conn)
    return position


async def stream_exists(conn, org_id: int, stream: str) -> bool:
    return await conn.fetchrow(statements.READ_STREAM_HEAD, org_id, stream) is not None


async def read_page(
    conn,
    org_id: int,
    *,
    after: int,
    horizon: int,
    limit: int,
    types: Sequence[str] | None = None,
    stream: str | None = None,
) -> list[asyncpg.Record]:
    """Up to `limit` of the organization's events after `after`, up to `horizon`, in order."""
    types = list(types) if types else None
    if stream is None:
        return await conn.fetch(statements.READ_FEED, org_id, after, horizon, limit, types)
    return await conn.fetch(statements.READ_STREAM_FEED, org_id, after, horizon, limit, types, stream)


async def read_through(
    conn, horizon: int, *, org_id: int | None = None, after: int = 0, page: int = 5000
) -> AsyncIterator[list[asyncpg.Record]]:
    """Every event after `after` up to `horizon` (of one organization, or all), page by page."""
    while after < horizon:
        if org_id is None:
            rows = await conn.fetch(statements.READ_EVENTS, after, horizon, page)
        else:
            rows = await read_page(conn, org_id, after=after, horizon=horizon, limit=page)
        if not rows:
            return
        yield rows
        after = rows[-1]["position"]
