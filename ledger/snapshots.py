"""The snapshot loader: the part of the write model a command decides on, in one statement.

`load_snapshot` reads the items, locations, stock levels and job holds a footprint names
(ledger/footprint.py), with the (version, last hash) of their streams, and builds the
pure `Snapshot` that `decide` works on.
"""

from __future__ import annotations

import functools
from datetime import datetime

import asyncpg
import msgspec

from ledger import statements
from ledger.footprint import Footprint
from ledger.state import Hold, ItemState, LocationState, Snapshot, StockLevel
from schemas import ItemAttributes, LocationAttributes, item_stream, location_stream

# Array elements in all up to which they are spelled out as scalar parameters.
MAX_SPELLED_OUT = 16
# load_snapshot.sql's arrays, in the order they are bound after $1 (the organization).
ARRAYS = ("item_ids", "location_ids", "place_items", "place_locations", "job_ids", "whole_items")


@functools.lru_cache(maxsize=256)
def load_snapshot_sql(lengths: tuple[int, ...] | None) -> str:
    """load_snapshot.sql with its arrays filled in: each element a scalar parameter
    (`ARRAY[$2::bigint, $3::bigint]`) for arrays of these `lengths`, or each array one
    parameter (`$2::bigint[]`) for `None`; numbered in the order of ARRAYS after $1.

    Prepared with array parameters, PostgreSQL plans the statement anew on every call:
    it keeps preferring custom plans (about 0.5 ms of server CPU per command, more than
    executing it). With scalar parameters it settles on one generic plan per connection,
    as it does for the pgbench scripts (tests/bench/pgbench/) that spell them out so.
    """
    body = "\n".join(line for line in statements.LOAD_SNAPSHOT.splitlines() if not line.lstrip().startswith("--"))
    filled, n = {}, 2
    for k, name in enumerate(ARRAYS):
        if lengths is None:
            filled[name], n = f"${n}::bigint[]", n + 1
            continue
        elements = [f"${n + i}::bigint" for i in range(lengths[k])]
        filled[name] = f"ARRAY[{', '.join(elements)}]" if elements else "'{}'::bigint[]"
        n += lengths[k]
    return body.format_map(filled)


class _ItemRow(msgspec.Struct):
    item_id: int
    version: int
    last_hash: str
    attributes: ItemAttributes
    deleted: bool
    quantity_on_hand: int


class _LocationRow(msgspec.Struct):
    location_id: int
    version: int
    last_hash: str
    attributes: LocationAttributes


class _HoldRow(msgspec.Struct):
    job_id: int
    quantity: int
    expires_at: datetime | None


class _StockRow(msgspec.Struct):
    item_id: int
    location_id: int
    quantity: int
    reserved: int
    holds: list[_HoldRow]


_decode_items = msgspec.json.Decoder(list[_ItemRow]).decode
_decode_locations = msgspec.json.Decoder(list[_LocationRow]).decode
_decode_stock = msgspec.json.Decoder(list[_StockRow]).decode


async def load_snapshot(
    conn: asyncpg.Connection | asyncpg.Pool, org_id: int, reads: Footprint
) -> tuple[Snapshot, dict[str, tuple[int, str]]]:
    """The snapshot of the write model `reads` names, and the (version, last hash) of its streams."""
    arrays = (
        reads.items, reads.locations, [item for item, _ in reads.places],
        [location for _, location in reads.places], reads.job_ids, reads.whole_items,
    )
    values: list  # the ids spelled out, or one array per kind
    if sum(len(a) for a in arrays) <= MAX_SPELLED_OUT:
        statement, values = load_snapshot_sql(tuple(len(a) for a in arrays)), [x for a in arrays for x in a]
    else:
        statement, values = load_snapshot_sql(None), [list(a) for a in arrays]
    row = await conn.fetchrow(statement, org_id, *values)
    heads: dict[str, tuple[int, str]] = {}
    stock: dict[int, dict[int, StockLevel]] = {}
    for s in _decode_stock(row["stock"]):
        holds = {h.job_id: Hold(quantity=h.quantity, expires_at=h.expires_at) for h in s.holds}
        stock.setdefault(s.item_id, {})[s.location_id] = StockLevel(
            quantity=s.quantity, reserved=s.reserved, holds=holds, recorded=True
        )
    items = {}
    for i in _decode_items(row["items"]):
        heads[item_stream(i.item_id)] = (i.version, i.last_hash)
        items[i.item_id] = ItemState(
            item_id=i.item_id, version=i.version, attributes=i.attributes, deleted=i.deleted,
            stock=stock.get(i.item_id, {}), quantity_on_hand=i.quantity_on_hand,
        )
    locations = {}
    for loc in _decode_locations(row["locations"]):
        heads[location_stream(loc.location_id)] = (loc.version, loc.last_hash)
        locations[loc.location_id] = LocationState(
            location_id=loc.location_id, version=loc.version, attributes=loc.attributes
        )
    return Snapshot(items=items, locations=locations), heads
