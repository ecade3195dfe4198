"""The appender: a command's (or a group's) events, recorded in one call of append_events.

It chains each event to its stream's last hash, works out the write-model rows the events
change (stock levels, holds, items, locations) and passes everything to `append_events`
(ledger/migrations/002_append_events.sql) in one round trip, one transaction. The
database's keys are the last guard: a stream that moved since the snapshot was loaded is a
`StreamRaced`, an event id recorded before a `DuplicateEvent`.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime

import asyncpg
import msgspec

from ledger import errors, statements
from ledger.columns import named_columns
from ledger.hashing import GENESIS, event_hash
from ledger.state import Snapshot
from schemas import (
    EventEnvelope,
    EventMetadata,
    ItemCreated,
    ItemDeleted,
    ItemUpdated,
    LedgerEvent,
    LocationCreated,
    LocationUpdated,
    stream_of,
)

_encode = msgspec.json.encode


class StreamRaced(Exception):
    """Another command appended to one of our streams between our load and our append."""

    def __init__(self, streams: Iterable[str] = frozenset()):
        super().__init__()
        self.streams = set(streams)  # what the attempt was going to write: the next one locks them


class AppendRows(msgspec.Struct, frozen=True, kw_only=True):
    """append_events' parameters by name, in the order ledger/sql/append_events.sql binds them."""

    org_id: int
    event_ids: list[uuid.UUID]
    streams: list[str]
    versions: list[int]
    types: list[str]
    data: list[bytes]
    metadata: list[bytes]
    recorded_at: list[datetime]
    prev_hashes: list[str]
    hashes: list[str]
    head_streams: list[str]
    head_versions: list[int]
    head_hashes: list[str]
    stock_items: list[int]
    stock_locations: list[int]
    stock_quantities: list[int]
    stock_reserved: list[int]
    hold_items: list[int]
    hold_locations: list[int]
    hold_jobs: list[int]
    hold_quantities: list[int]  # 0: the hold is gone
    hold_expires_at: list[datetime | None]
    item_ids: list[int]
    item_part_numbers: list[str]
    item_attributes: list[bytes]
    item_deleted: list[bool]
    location_ids: list[int]
    location_attributes: list[bytes]

    def parameters(self) -> tuple:
        return msgspec.structs.astuple(self)


async def append(
    conn,
    org_id: int,
    before: Snapshot,
    after: Snapshot,
    heads: dict[str, tuple[int, str]],
    events: Sequence[LedgerEvent],
    metadata: Sequence[EventMetadata],
    event_ids: Sequence[uuid.UUID],
) -> list[EventEnvelope]:
    """Record `events` (ids `event_ids`, each with its caller's `metadata`) that take the
    snapshot from `before` (its streams at `heads`) to `after`, in one call; the events as
    recorded."""
    recorded_at = datetime.now(UTC)
    heads = dict(heads)
    rows: list[EventEnvelope] = []
    for n, event in enumerate(events):
        stream = stream_of(event)
        version, prev_hash = heads.get(stream, (0, GENESIS))
        event_id = event_ids[n]
        version += 1
        hash_ = event_hash(
            prev_hash, event_id=event_id, org_id=org_id, stream=stream, version=version,
            type=event.__struct_config__.tag, data=event, metadata=metadata[n], recorded_at=recorded_at,  # type: ignore[arg-type]  # every event class's tag is a str
        )
        heads[stream] = (version, hash_)
        rows.append(
            EventEnvelope(
                event_id=event_id, position=0, org_id=org_id, stream=stream, version=version,
                type=event.__struct_config__.tag, data=event, metadata=metadata[n],  # type: ignore[arg-type]  # every event class's tag is a str
                recorded_at=recorded_at, prev_hash=prev_hash, hash=hash_,
            )
        )
    written = {e.stream for e in rows}
    stock, holds = _stock_changes(before, after)
    items = [after.items[e.data.item_id] for e in rows if isinstance(e.data, ItemCreated | ItemUpdated | ItemDeleted)]
    locations = [after.locations[e.data.location_id] for e in rows if isinstance(e.data, LocationCreated | LocationUpdated)]
    encoded: dict[int, bytes] = {}  # a group's events share a handful of metadata objects
    for m in metadata:
        if id(m) not in encoded:
            encoded[id(m)] = _encode(m)
    try:
        positions = await conn.fetchval(statements.APPEND_EVENTS, *AppendRows(
            org_id=org_id,
            event_ids=[e.event_id for e in rows], streams=[e.stream for e in rows],
            versions=[e.version for e in rows], types=[e.type for e in rows],
            data=[_encode(e.data) for e in rows], metadata=[encoded[id(m)] for m in metadata],
            recorded_at=[recorded_at] * len(rows), prev_hashes=[e.prev_hash for e in rows],
            hashes=[e.hash for e in rows],
            head_streams=sorted(written), head_versions=[heads[s][0] for s in sorted(written)],
            head_hashes=[heads[s][1] for s in sorted(written)],
            **named_columns(("stock_items", "stock_locations", "stock_quantities", "stock_reserved"), stock),
            **named_columns(("hold_items", "hold_locations", "hold_jobs", "hold_quantities", "hold_expires_at"), holds),
            **named_columns(("item_ids", "item_part_numbers", "item_attributes", "item_deleted"),
                            [(i.item_id, i.attributes.part_number, _encode(i.attributes), i.deleted)
                             for i in _last_by_id(items, "item_id")]),
            **named_columns(("location_ids", "location_attributes"),
                            [(loc.location_id, _encode(loc.attributes)) for loc in _last_by_id(locations, "location_id")]),
        ).parameters())
    except asyncpg.UniqueViolationError as exc:
        raise _conflict(exc, written) from None
    except asyncpg.DeadlockDetectedError:
        raise StreamRaced(written) from None  # not expected (heads lock in order); retried anyway
    except asyncpg.CheckViolationError as exc:
        raise errors.InvariantViolated(f"the database refused the write: {exc.constraint_name}") from exc
    return [msgspec.structs.replace(e, position=p) for e, p in zip(rows, positions, strict=True)]


def event_ids(command_id: uuid.UUID | None, count: int) -> list[uuid.UUID]:
    return [event_id(command_id, n) for n in range(count)]


def event_id(command_id: uuid.UUID | None, n: int) -> uuid.UUID:
    # Derived ids make a re-append of the same command collide with the first in the
    # database (event_id is unique forever), not merely within some time window.
    return uuid.uuid5(command_id, str(n)) if command_id else uuid.uuid4()


def _conflict(exc: asyncpg.UniqueViolationError, written: set[str]) -> Exception:
    """The one place a unique violation is given its meaning."""
    match exc.constraint_name:
        case "events_stream_version_key":
            return StreamRaced(written)  # the caller locks the streams it writes before trying again
        case "events_event_id_key":
            return errors.DuplicateEvent()
        case "item_state_part_number_key":
            return errors.DuplicatePartNumber()
    return errors.InvariantViolated(f"unexpected unique violation: {exc.constraint_name}")


def _stock_changes(before: Snapshot, after: Snapshot) -> tuple[list[tuple], list[tuple]]:
    """The stock rows and job holds that differ between two snapshots.

    A hold written with quantity 0 is deleted by the append.
    """
    stock, holds = [], []
    for item_id, item in after.items.items():
        old_item = before.item(item_id)
        for location_id, level in item.stock.items():
            old = old_item.level(location_id)
            if level == old:
                continue
            stock.append((item_id, location_id, level.quantity, level.reserved))
            for job_id in sorted(old.holds.keys() | level.holds.keys()):
                hold = level.holds.get(job_id)
                if hold != old.holds.get(job_id):
                    holds.append(
                        (item_id, location_id, job_id, hold.quantity if hold else 0, hold.expires_at if hold else None)
                    )
    return stock, holds


def _last_by_id(states: list, field: str) -> list:
    return list({getattr(s, field): s for s in states}.values())
