"""Verifying a stream: its hash chain, and its re-fold against the write model (the
ledger's half of `ledger verify` and all of `GET /audit/verify`).

A stream is sound when every event chains to the one before it (versions from 1 with no
gap, each `prev_hash` the previous `hash`, each `hash` recomputed from the stored event,
positions rising with versions), its head names its last event, and folding its events
with `evolve` gives exactly the state the write model holds for it.

Verification reads in one REPEATABLE READ transaction, so a command committing meanwhile
cannot show up as a difference between the events and the write model. The transaction
is read only and takes no transaction id, so it never holds the ledger's readers back.
"""

from __future__ import annotations

from collections.abc import Sequence

import asyncpg
import msgspec
from msgspec.structs import replace

from ledger import statements
from ledger.decide import evolve
from ledger.footprint import Footprint
from ledger.hashing import GENESIS, event_hash
from ledger.records import decode_event
from ledger.snapshots import load_snapshot
from ledger.state import ItemState, LocationState, StockLevel
from schemas import parse_stream

_decode_any = msgspec.json.decode
_PAGE = 5000


class StreamReport(msgspec.Struct, kw_only=True):
    org_id: int
    stream: str
    events: int
    problems: list[str]

    @property
    def ok(self) -> bool:
        return not self.problems


def chain_problems(rows: Sequence[asyncpg.Record]) -> list[str]:
    """What is wrong with the hash chain of one stream's rows (in version order)."""
    problems = []
    prev_hash, prev_position = GENESIS, 0
    for expected_version, row in enumerate(rows, start=1):
        where = f"{row['stream']} v{row['version']} (position {row['position']})"
        if row["version"] != expected_version:
            problems.append(f"{where}: expected version {expected_version}; an event is missing")
        if row["prev_hash"] != prev_hash:
            problems.append(f"{where}: prev_hash does not match the hash of the event before it")
        recomputed = event_hash(
            row["prev_hash"], event_id=row["event_id"], org_id=row["org_id"], stream=row["stream"],
            version=row["version"], type=row["type"], data=_decode_any(row["data"]),
            metadata=_decode_any(row["metadata"]), recorded_at=row["recorded_at"],
        )
        if recomputed != row["hash"]:
            problems.append(f"{where}: stored hash does not match the event; it was edited")
        if row["position"] <= prev_position:
            problems.append(f"{where}: position does not rise with version")
        prev_hash, prev_position = row["hash"], row["position"]
    return problems


def fold(stream: str, rows: Sequence[asyncpg.Record]) -> ItemState | LocationState:
    kind, stream_id = parse_stream(stream)
    state: ItemState | LocationState = (
        ItemState(item_id=stream_id) if kind == "item" else LocationState(location_id=stream_id)
    )
    for row in rows:
        state = evolve(state, decode_event(row["data"]))
    return state


async def read_whole_stream(conn, org_id: int, stream: str) -> list[asyncpg.Record]:
    rows: list[asyncpg.Record] = []
    while True:
        page = await conn.fetch(statements.READ_STREAM, org_id, stream, len(rows), _PAGE)
        rows.extend(page)
        if len(page) < _PAGE:
            return rows


async def write_model_state(conn, org_id: int, stream: str) -> ItemState | LocationState:
    kind, stream_id = parse_stream(stream)
    if kind == "item":
        snapshot, _ = await load_snapshot(conn, org_id, Footprint(items=(stream_id,), whole_items=(stream_id,)))
        return snapshot.item(stream_id)
    snapshot, _ = await load_snapshot(conn, org_id, Footprint(locations=(stream_id,)))
    return snapshot.location(stream_id)


def head_problems(stream: str, rows: Sequence[asyncpg.Record], head: asyncpg.Record | None) -> list[str]:
    """Whether the stream's head (its version and last hash) names its last event."""
    last_version, last_hash = (rows[-1]["version"], rows[-1]["hash"]) if rows else (0, GENESIS)
    if head is None:
        return [f"{stream}: it has {len(rows)} events but no stream head"] if rows else []
    if head["version"] > last_version:
        return [f"{stream}: its head is at version {head['version']} but its events end at version "
                f"{last_version}; events are missing at the end"]
    if head["version"] < last_version:
        return [f"{stream}: its head is at version {head['version']}, behind its last event (version {last_version})"]
    if head["last_hash"] != last_hash:
        return [f"{stream}: its head's hash is not the hash of its last event"]
    return []


def state_problems(stream: str, folded: ItemState | LocationState, stored: ItemState | LocationState) -> list[str]:
    """How the write model differs from the re-fold, field by field (versions: see the head)."""
    folded, stored = replace(folded, version=0), replace(stored, version=0)
    if folded == stored:
        return []
    says = "the write model has {stored}; the ledger's events fold to {folded}"
    problems = []
    if folded.attributes != stored.attributes:
        problems.append(f"{stream}: attributes differ: " + says.format(stored=stored.attributes, folded=folded.attributes))
    if isinstance(folded, ItemState) and isinstance(stored, ItemState):  # both, or neither: one stream
        if folded.deleted != stored.deleted:
            problems.append(f"{stream}: deleted differs: " + says.format(stored=stored.deleted, folded=folded.deleted))
        for location_id in sorted(folded.stock.keys() | stored.stock.keys()):
            a, b = folded.level(location_id), stored.level(location_id)
            if a != b:
                problems.append(f"{stream} at location {location_id}: " + says.format(stored=_level(b), folded=_level(a)))
        if folded.quantity_on_hand != stored.quantity_on_hand:
            problems.append(f"{stream}: quantity on hand differs: "
                            + says.format(stored=stored.quantity_on_hand, folded=folded.quantity_on_hand))
    return problems or [f"{stream}: the write model differs from the re-fold of its events"]


def _level(level: StockLevel) -> str:
    if not level.recorded:
        return "no stock record"
    holds = ", ".join(f"job {job} holds {hold.quantity}" for job, hold in sorted(level.holds.items()))
    return f"quantity {level.quantity}, reserved {level.reserved}" + (f" ({holds})" if holds else "")


async def verify_stream(conn, org_id: int, stream: str) -> StreamReport:
    """Verify one stream on `conn` (inside a transaction the caller holds, for a consistent answer)."""
    rows = await read_whole_stream(conn, org_id, stream)
    head = await conn.fetchrow(statements.READ_STREAM_HEAD, org_id, stream)
    problems = chain_problems(rows) + head_problems(stream, rows, head)
    problems += state_problems(stream, fold(stream, rows), await write_model_state(conn, org_id, stream))
    return StreamReport(org_id=org_id, stream=stream, events=len(rows), problems=problems)


async def verify_one(pool: asyncpg.Pool, org_id: int, stream: str) -> StreamReport | None:
    """One stream of one organization in its own transaction; None if the organization has no such stream."""
    async with pool.acquire() as conn, conn.transaction(isolation="repeatable_read", readonly=True):
        report = await verify_stream(conn, org_id, stream)
    return None if report.events == 0 and not report.problems else report


async def verify_all(db: asyncpg.Pool | asyncpg.Connection, org_id: int | None = None) -> list[StreamReport]:
    """Every stream (of one organization, or all), including any with events but no head."""
    if isinstance(db, asyncpg.Pool):
        async with db.acquire() as conn:
            return await verify_all(conn, org_id)
    conn = db
    async with conn.transaction(isolation="repeatable_read", readonly=True):
        heads = await conn.fetch(statements.READ_STREAMS, org_id)
        headless = await conn.fetch(statements.READ_HEADLESS_STREAMS, org_id)
        return [await verify_stream(conn, s["org_id"], s["stream"]) for s in [*heads, *headless]]
