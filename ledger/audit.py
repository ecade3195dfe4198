"""Auditing a stream: its hash chain, and its re-fold against the write model.

A stream is sound when every event chains to the one before it (versions from 1 with no
gap, each `prev_hash` the previous `hash`, each `hash` recomputed from the stored event,
positions rising with versions), and folding its events with `evolve` gives exactly the
state the write model holds for it.
"""

from __future__ import annotations

from collections.abc import Sequence

import asyncpg
import msgspec

from ledger import statements
from ledger.decide import evolve
from ledger.footprint import Footprint
from ledger.hashing import GENESIS, event_hash
from ledger.state import ItemState, LocationState
from ledger.store import load_snapshot
from schemas import LedgerEvent

_decode_event = msgspec.json.Decoder(LedgerEvent).decode
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
    kind, _, stream_id = stream.partition("-")
    state: ItemState | LocationState = (
        ItemState(item_id=int(stream_id)) if kind == "item" else LocationState(location_id=int(stream_id))
    )
    for row in rows:
        state = evolve(state, _decode_event(row["data"]))
    return state


async def read_whole_stream(conn, org_id: int, stream: str) -> list[asyncpg.Record]:
    rows: list[asyncpg.Record] = []
    while True:
        page = await conn.fetch(statements.READ_STREAM, org_id, stream, len(rows), _PAGE)
        rows.extend(page)
        if len(page) < _PAGE:
            return rows


async def write_model_state(conn, org_id: int, stream: str) -> ItemState | LocationState:
    kind, _, stream_id = stream.partition("-")
    if kind == "item":
        item_id = int(stream_id)
        snapshot, _ = await load_snapshot(conn, org_id, Footprint(items=(item_id,), whole_items=(item_id,)))
        return snapshot.item(item_id)
    location_id = int(stream_id)
    snapshot, _ = await load_snapshot(conn, org_id, Footprint(locations=(location_id,)))
    return snapshot.location(location_id)


async def audit_stream(conn, org_id: int, stream: str) -> StreamReport:
    rows = await read_whole_stream(conn, org_id, stream)
    problems = chain_problems(rows)
    folded = fold(stream, rows)
    stored = await write_model_state(conn, org_id, stream)
    if folded != stored:
        problems.append(f"{stream}: the write model differs from the re-fold of its events: "
                        f"ledger says {folded!r}, write model says {stored!r}")
    return StreamReport(org_id=org_id, stream=stream, events=len(rows), problems=problems)


async def audit_all(conn, org_id: int | None = None) -> list[StreamReport]:
    heads = await conn.fetch(statements.READ_STREAMS, org_id)
    return [await audit_stream(conn, head["org_id"], head["stream"]) for head in heads]
