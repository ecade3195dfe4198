"""An item's stock as it was at a ledger position or at a moment, folded with `evolve`.

`at_position=N` folds the item's events at positions up to N; `as_of=T` folds its events
up to the first one recorded after T. That is a prefix of the stream on purpose: a fold
of a prefix is always a state the item really was in (one filtered by time could skip an
event and keep a later one if clocks ever disagreed). Either way the fold stops at the
settled horizon, so an answer about the past never changes once given; a position or a
moment beyond the horizon reads as the ledger stands now.
"""

from __future__ import annotations

from datetime import datetime

import msgspec

from ledger import statements
from ledger.decide import evolve
from ledger.feed import settled_horizon, stream_exists
from ledger.records import decode_event
from ledger.state import ItemState
from schemas import StockEvent, item_stream

_PAGE = 5000


class PastLevel(msgspec.Struct, frozen=True, kw_only=True):
    location_id: int
    quantity: int
    reserved: int
    last_updated: datetime  # recorded_at of the last movement here, up to then


async def item_state_at(
    conn, org_id: int, item_id: int, *, at_position: int | None = None, as_of: datetime | None = None
) -> tuple[ItemState, dict[int, datetime]] | None:
    """The item's state then, and when stock last moved at each place; None if it is not the org's."""
    stream = item_stream(item_id)
    if not await stream_exists(conn, org_id, stream):
        return None
    bound = await settled_horizon(conn)
    if at_position is not None:
        bound = min(bound, at_position)
    moved: dict[int, datetime] = {}
    state, version = ItemState(item_id=item_id), 0
    while True:
        rows = await conn.fetch(statements.READ_STREAM_UNTIL, org_id, stream, bound, version, _PAGE)
        for row in rows:
            if as_of is not None and row["recorded_at"] > as_of:
                return state, moved
            event = decode_event(row["data"])
            state = evolve(state, event)
            if isinstance(event, StockEvent):
                moved[event.location_id] = row["recorded_at"]
        if len(rows) < _PAGE:
            return state, moved
        version = rows[-1]["version"]


async def stock_at(
    conn, org_id: int, item_id: int, *, at_position: int | None = None, as_of: datetime | None = None
) -> list[PastLevel] | None:
    """The item's stock levels then, one per place that had seen a movement, by location id."""
    found = await item_state_at(conn, org_id, item_id, at_position=at_position, as_of=as_of)
    if found is None:
        return None
    state, moved = found
    return [
        PastLevel(location_id=location_id, quantity=level.quantity, reserved=level.reserved,
                  last_updated=moved[location_id])
        for location_id, level in sorted(state.stock.items())
        if level.recorded
    ]


async def location_names(conn, org_id: int, location_ids: list[int]) -> dict[int, tuple[str, str]]:
    """The current (name, type) of the organization's locations among `location_ids`."""
    rows = await conn.fetch(statements.READ_LOCATION_NAMES, org_id, location_ids)
    return {r["location_id"]: (r["location_name"], r["location_type"]) for r in rows}
