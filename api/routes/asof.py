"""Stock as it was: `?as_of=<ISO timestamp>` or `?at_position=N` on an item's stock.

Folded from the ledger with `evolve` (ledger/asof.py), not read from a read model, so it
needs no projector and waits for none. Location names are the current ones, as in every
other stock entry.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

import asyncpg
from litestar import Request
from litestar.params import QueryParameter

from ledger import errors
from ledger.asof import location_names, stock_at
from projections.models import StockEntry
from schemas import MAX_QUANTITY

AsOf = Annotated[
    str | None, QueryParameter(max_length=40, description="Stock as it was at this moment (ISO 8601 with a time zone)")
]
AtPosition = Annotated[
    int | None, QueryParameter(ge=0, le=MAX_QUANTITY, description="Stock as it was right after this ledger position")
]


def parse_as_of(text: str) -> datetime:
    try:
        moment = datetime.fromisoformat(text.strip().replace(" ", "+"))  # a '+' left unescaped reads as a space
    except ValueError:
        raise errors.ValidationFailed("as_of must be an ISO 8601 timestamp, e.g. 2026-11-01T08:00:00Z") from None
    if moment.tzinfo is None:
        raise errors.ValidationFailed("as_of needs a time zone (e.g. 2026-11-01T08:00:00Z)")
    return moment


async def past_stock(
    request: Request, pool: asyncpg.Pool, item_id: int, as_of: str | None, at_position: int | None
) -> list[StockEntry]:
    """The item's stock entries as they were; raises NotFound for an item not of the caller's organization."""
    if as_of is not None and at_position is not None:
        raise errors.ValidationFailed("give as_of or at_position, not both")
    moment = parse_as_of(as_of) if as_of is not None else None
    org_id = request.user.org_id
    async with pool.acquire() as conn:
        levels = await stock_at(conn, org_id, item_id, at_position=at_position, as_of=moment)
        if levels is None:
            raise errors.NotFound(f"item {item_id} does not exist")
        names = await location_names(conn, org_id, [level.location_id for level in levels])
    entries = []
    for level in levels:
        name, kind = names.get(level.location_id, (None, None))
        entries.append(StockEntry(
            location_id=level.location_id, location_name=name, location_type=kind, quantity=level.quantity,
            reserved_quantity=level.reserved, available=level.quantity - level.reserved, last_updated=level.last_updated,
        ))
    return entries
