"""The event store: load the slice a command needs, decide, append, all or nothing.

A command normally costs two round trips: one statement loads its slice of the write
model, one call (`append_events`) records its events together with the new stream heads
and write-model rows. That append is optimistic: the versions it writes are the ones the
slice was at, and the unique (stream, version) key refuses it if another command got
there first. The loser then retries once more under row locks on the streams it writes,
so a hot item never starves a writer.
"""

from __future__ import annotations

import contextlib
import dataclasses
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime

import asyncpg
import msgspec

from ledger import errors, statements
from ledger.commands import AnyCommand, CreateItem, CreateLocation, TransferStock
from ledger.decide import apply, decide
from ledger.footprint import Footprint, footprint, merged
from ledger.hashing import GENESIS, event_hash
from ledger.records import envelopes
from ledger.state import Hold, ItemState, LocationState, Snapshot, StockLevel
from ledger.stream_queues import StreamQueues
from schemas import (
    EventEnvelope,
    EventMetadata,
    ItemAttributes,
    ItemCreated,
    ItemDeleted,
    ItemUpdated,
    LedgerEvent,
    LocationAttributes,
    LocationCreated,
    LocationUpdated,
    stream_of,
)

_ATTEMPTS = 4  # one optimistic, then under locks (a retry is only needed if a stream appeared)
# A bound on the events of one command (the API bounds lines per command well below it);
# replaying a recorded command looks its events up by the ids derived up to this count.
MAX_EVENTS_PER_COMMAND = 512
_encode = msgspec.json.encode


class CommandResult(msgspec.Struct, frozen=True, kw_only=True):
    events: list[EventEnvelope]
    position: int  # of the last event; for a command that changed nothing, its stream's latest
    snapshot: Snapshot  # the slice as the command left it
    replayed: bool = False  # the command had been recorded before; nothing new was written


@dataclasses.dataclass(frozen=True)
class LineResult:
    """One command of a batch: recorded (`result`) or refused (`error`)."""

    index: int
    result: CommandResult | None = None
    error: errors.LedgerError | None = None


# --- rows of the loaded slice ---------------------------------------------------------


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


class _StreamRaced(Exception):
    """Another command appended to one of our streams between our load and our append."""


class EventStore:
    def __init__(self, pool: asyncpg.Pool | asyncpg.Connection):
        self._pool = pool
        self._queues = StreamQueues()
        self.lost_races = 0  # first attempts another writer beat to a stream (then retried under locks)

    # --- commands ----------------------------------------------------------------------

    async def create_item(
        self,
        org_id: int,
        attributes: ItemAttributes,
        *,
        initial_quantity: int = 0,
        location_id: int | None = None,
        **options,
    ) -> CommandResult:
        item_id = await self._pool.fetchval(statements.NEXT_ITEM_ID)
        command = CreateItem(
            item_id=item_id, attributes=attributes, initial_quantity=initial_quantity, location_id=location_id
        )
        return await self.execute(org_id, command, **options)

    async def create_location(self, org_id: int, attributes: LocationAttributes, **options) -> CommandResult:
        location_id = await self._pool.fetchval(statements.NEXT_LOCATION_ID)
        return await self.execute(
            org_id, CreateLocation(location_id=location_id, attributes=attributes), **options
        )

    async def execute(
        self,
        org_id: int,
        command: AnyCommand,
        *,
        metadata: EventMetadata | None = None,
        command_id: uuid.UUID | None = None,
        expected_version: int | None = None,
    ) -> CommandResult:
        """Decide `command` on the current state and record its events atomically.

        `command_id` makes the append idempotent in the database: the events' ids derive
        from it, so recording the same command twice finds the first recording instead.
        `expected_version` is an `If-Match`: the command's stream must be at exactly it.
        """
        command = _with_transfer_id(command, command_id)
        reads = footprint(command)
        if expected_version is not None and reads.target_stream is None:
            raise errors.ValidationFailed("If-Match applies only to commands on a single item or location")
        metadata = metadata or EventMetadata()
        if command_id is not None:
            # Recorded already? Then that recording is the answer, whatever the state
            # says now (deciding again could refuse, or find nothing left to do).
            if (recorded := await self._recorded(org_id, command_id, reads)) is not None:
                return recorded
        # One optimistic attempt; after a lost race, attempts under the streams' row locks.
        async with self._queues.turn(org_id, _queue_keys(reads)):
            for attempt in range(_ATTEMPTS):
                try:
                    if attempt == 0:
                        async with self._connection() as conn:
                            return await self._attempt(
                                conn, org_id, command, reads, metadata, command_id, expected_version
                            )
                    async with self._connection() as conn, conn.transaction():
                        locked = await self._lock(conn, org_id, reads)
                        return await self._attempt(
                            conn, org_id, command, reads, metadata, command_id, expected_version, locked
                        )
                except _StreamRaced:
                    self.lost_races += 1
                    if expected_version is not None:
                        raise errors.VersionConflict(
                            f"{reads.target_stream} changed while the command was being decided"
                        ) from None
                except errors.DuplicateEvent:  # recorded by a concurrent retry of the same command
                    if (recorded := await self._recorded(org_id, command_id, reads)) is not None:
                        return recorded
                    raise
            raise errors.Conflict("the command kept racing other writers; try again")

    async def execute_batch(
        self,
        org_id: int,
        commands: Sequence[AnyCommand | errors.LedgerError],
        *,
        atomic: bool = True,
        metadata: EventMetadata | None = None,
        command_id: uuid.UUID | None = None,
    ) -> list[LineResult]:
        """Decide `commands` in order, each on the state the ones before it leave, and
        record them in one transaction: all of them or none (`atomic`), or each accepted
        one while a refused one changes nothing (not `atomic`). One result per command.
        A `LedgerError` in place of a command is a line refused before any deciding (an
        unknown part number): it counts as refused like any other.

        An atomic batch with a refused command records nothing: every result is returned,
        and the caller reports the refusals. `command_id` covers the whole batch: each
        command's own id derives from it and its index, and its events' ids from that, so
        a batch recorded before is found again instead of recorded twice.
        """
        line_ids = [uuid.uuid5(command_id, f"line-{n}") if command_id else None for n in range(len(commands))]
        commands = [_with_transfer_id(c, line_id) for c, line_id in zip(commands, line_ids, strict=True)]
        reads = merged([footprint(c) for c in commands if not isinstance(c, errors.LedgerError)])
        metadata = metadata or EventMetadata()
        if command_id is not None and (recorded := await self._recorded_batch(org_id, line_ids, reads, atomic)):
            return recorded
        async with self._queues.turn(org_id, _queue_keys(reads)):
            for attempt in range(_ATTEMPTS):
                try:
                    if attempt == 0:
                        async with self._connection() as conn:
                            return await self._attempt_batch(conn, org_id, commands, reads, metadata, line_ids, atomic)
                    async with self._connection() as conn, conn.transaction():
                        locked = await self._lock(conn, org_id, reads)
                        return await self._attempt_batch(
                            conn, org_id, commands, reads, metadata, line_ids, atomic, locked
                        )
                except _StreamRaced:
                    self.lost_races += 1
                except errors.DuplicateEvent:  # recorded by a concurrent retry of the same batch
                    if command_id is not None and (recorded := await self._recorded_batch(org_id, line_ids, reads, atomic)):
                        return recorded
                    raise
            raise errors.Conflict("the batch kept racing other writers; try again")

    async def _attempt_batch(
        self,
        conn,
        org_id: int,
        commands: Sequence[AnyCommand | errors.LedgerError],
        reads: Footprint,
        metadata: EventMetadata,
        line_ids: Sequence[uuid.UUID | None],
        atomic: bool,
        locked: set[str] | None = None,
    ) -> list[LineResult]:
        snapshot, heads = (Snapshot(), {}) if reads.empty else await load_snapshot(conn, org_id, reads)
        running = snapshot
        decided: list[tuple[int, list[LedgerEvent], Snapshot]] = []  # index, events, slice after
        refused: dict[int, errors.LedgerError] = {}
        for n, command in enumerate(commands):
            if isinstance(command, errors.LedgerError):
                refused[n] = command
                continue
            try:
                events = decide(running, command)
            except errors.LedgerError as refusal:
                refused[n] = refusal
                continue
            if len(events) > MAX_EVENTS_PER_COMMAND:
                refused[n] = errors.ValidationFailed(f"a command may record at most {MAX_EVENTS_PER_COMMAND} events")
                continue
            for event in events:
                running = apply(running, event)
            decided.append((n, events, running))
        all_events = [e for _, events, _ in decided for e in events]
        if (refused or not all_events) and line_ids and line_ids[0] is not None:
            # A refusal (or nothing to do) may come from this very batch: a call with the
            # same command id may have recorded it since our first look, and we decided on
            # the state it left. Its recording is then the answer; deciding again would
            # refuse it, or, line by line, record on top the lines it refused. (If it
            # commits after our load, we decided on the state it did, and our append
            # collides with its events, unless a third writer moved that state in between.)
            if (recorded := await self._recorded_batch(org_id, line_ids, reads, atomic, conn)) is not None:
                return recorded
        if (atomic and refused) or not all_events:
            if atomic and refused:  # nothing is recorded: every line leaves the slice as it was
                decided = [(n, [], snapshot) for n, _, _ in decided]
            return _line_results(refused, [(n, [], after) for n, _, after in decided])
        if locked is not None and not {stream_of(e) for e in all_events} <= locked:
            raise _StreamRaced()  # a job took a hold on another item since we looked: lock again
        event_ids = [i for n, events, _ in decided for i in _event_ids(line_ids[n], len(events))]
        appended = await self._append(conn, org_id, snapshot, heads, all_events, metadata, event_ids)
        lines, at = [], 0
        for n, events, after in decided:
            lines.append((n, appended.events[at:at + len(events)], after))
            at += len(events)
        return _line_results(refused, lines)

    async def _recorded_batch(
        self, org_id: int, line_ids: Sequence[uuid.UUID | None], reads: Footprint, atomic: bool, conn=None
    ) -> list[LineResult] | None:
        """The results of a batch recorded earlier under the same command id, if it was.

        A batch is recorded in one transaction, so one event of any of its commands means
        all of it. The events of each command are found by their derived ids, the first
        of every command at once, then the next of those that had one, and so on (a
        handful of rounds, not a probe of every id a command could have). A command that
        recorded nothing was a refusal (line by line) or changed nothing (atomic: a
        recorded atomic batch refused nothing).
        """
        events: dict[int, list[EventEnvelope]] = {n: [] for n in range(len(line_ids))}
        # On the attempt's own connection when it has one: a second from the pool while
        # holding the first could wait forever on an exhausted pool.
        async with self._connection() if conn is None else contextlib.nullcontext(conn) as conn:
            pending, k = list(events), 0
            while pending and k < MAX_EVENTS_PER_COMMAND:
                found = {e.event_id: e for e in envelopes(
                    await conn.fetch(statements.READ_EVENTS_BY_ID, [_event_id(line_ids[n], k) for n in pending]))}
                if any(e.org_id != org_id for e in found.values()):
                    raise errors.Conflict("this command id was already used by another organization")
                still = []
                for n in pending:
                    if (event := found.get(_event_id(line_ids[n], k))) is not None:
                        events[n].append(event)
                        still.append(n)
                pending, k = still, k + 1
            if not any(events.values()):
                return None
            snapshot = Snapshot() if reads.empty else (await load_snapshot(conn, org_id, reads))[0]
        refused = {} if atomic else {n: errors.BadRequest("this line recorded nothing when the batch was first "
                                                          "carried out", code="not_recorded")
                                     for n, recorded in events.items() if not recorded}
        lines = [(n, recorded, snapshot) for n, recorded in events.items() if n not in refused]
        return _line_results(refused, lines, replayed=True)

    @contextlib.asynccontextmanager
    async def _connection(self):
        """One connection for the whole command (a store made on a connection uses it)."""
        if isinstance(self._pool, asyncpg.Pool):
            async with self._pool.acquire() as conn:
                yield conn
        else:
            yield self._pool

    async def _lock(self, conn, org_id: int, reads: Footprint) -> set[str]:
        """Lock every stream the command may write, in one sorted statement.

        A job's holds may be on items the command does not name; they are found first.
        """
        streams = {f"item-{i}" for i in reads.items} or {f"location-{loc}" for loc in reads.locations}
        if reads.job_ids:
            snapshot, _ = await load_snapshot(conn, org_id, reads)
            streams |= {f"item-{i}" for i in snapshot.items}
        await conn.execute(statements.LOCK_STREAMS, org_id, sorted(streams))
        return streams

    async def _attempt(
        self,
        conn,
        org_id: int,
        command: AnyCommand,
        reads: Footprint,
        metadata: EventMetadata,
        command_id: uuid.UUID | None,
        expected_version: int | None,
        locked: set[str] | None = None,
    ) -> CommandResult:
        snapshot, heads = (Snapshot(), {}) if reads.empty else await load_snapshot(conn, org_id, reads)
        if expected_version is not None:
            current = heads.get(reads.target_stream, (0, GENESIS))[0]
            if current != expected_version:
                raise errors.VersionConflict(
                    f"{reads.target_stream} is at version {current}, not {expected_version}",
                    current_version=current,
                )
        events = decide(snapshot, command)
        if locked is not None and not {stream_of(e) for e in events} <= locked:
            raise _StreamRaced()  # a job took a hold on another item since we looked: lock again
        if len(events) > MAX_EVENTS_PER_COMMAND:
            raise errors.ValidationFailed(f"a command may record at most {MAX_EVENTS_PER_COMMAND} events")
        if not events:
            position = 0
            if reads.target_stream:
                position = await conn.fetchval(statements.READ_STREAM_POSITION, org_id, reads.target_stream)
            return CommandResult(events=[], position=position, snapshot=snapshot)
        return await self._append(conn, org_id, snapshot, heads, events, metadata, _event_ids(command_id, len(events)))

    async def _recorded(self, org_id: int, command_id: uuid.UUID, reads: Footprint) -> CommandResult | None:
        """The events a command recorded earlier under the same command id, if it did.

        The snapshot is the slice as it is now (the one right after the first recording
        is not kept): a replay can say what was recorded, not what followed it then.
        """
        ids = [_event_id(command_id, n) for n in range(MAX_EVENTS_PER_COMMAND)]
        async with self._connection() as conn:
            recorded = envelopes(await conn.fetch(statements.READ_EVENTS_BY_ID, ids))
            if not recorded:
                return None
            if recorded[0].org_id != org_id:
                raise errors.Conflict("this command id was already used by another organization")
            snapshot = Snapshot() if reads.empty else (await load_snapshot(conn, org_id, reads))[0]
        return CommandResult(events=recorded, position=recorded[-1].position, snapshot=snapshot, replayed=True)

    # --- small reads the API needs around commands ----------------------------------

    async def item_ids(self, org_id: int, part_numbers: list[str]) -> dict[str, int]:
        """The ids of the (not archived) items with these part numbers."""
        rows = await self._pool.fetch(statements.FIND_ITEMS_BY_PART_NUMBER, org_id, part_numbers)
        return {row["part_number"]: row["item_id"] for row in rows}

    async def default_location(self, org_id: int) -> int | None:
        return await self._pool.fetchval(statements.READ_DEFAULT_LOCATION, org_id)

    async def created_at(self, org_id: int, stream: str) -> datetime | None:
        return await self._pool.fetchval(statements.READ_STREAM_CREATED_AT, org_id, stream)

    # --- append ------------------------------------------------------------------------

    async def _append(
        self,
        conn,
        org_id: int,
        before: Snapshot,
        heads: dict[str, tuple[int, str]],
        events: Sequence[LedgerEvent],
        metadata: EventMetadata,
        event_ids: Sequence[uuid.UUID],
    ) -> CommandResult:
        """Record `events` (ids `event_ids`) after the slice `before` at `heads`, in one call."""
        recorded_at = datetime.now(UTC)
        heads = dict(heads)
        after = before
        rows: list[EventEnvelope] = []
        for n, event in enumerate(events):
            stream = stream_of(event)
            version, prev_hash = heads.get(stream, (0, GENESIS))
            event_id = event_ids[n]
            version += 1
            hash_ = event_hash(
                prev_hash, event_id=event_id, org_id=org_id, stream=stream, version=version,
                type=event.__struct_config__.tag, data=event, metadata=metadata, recorded_at=recorded_at,
            )
            heads[stream] = (version, hash_)
            after = apply(after, event)
            rows.append(
                EventEnvelope(
                    event_id=event_id, position=0, org_id=org_id, stream=stream, version=version,
                    type=event.__struct_config__.tag, data=event, metadata=metadata,
                    recorded_at=recorded_at, prev_hash=prev_hash, hash=hash_,
                )
            )
        written = {e.stream for e in rows}
        stock, holds = _stock_changes(before, after)
        items = [after.items[e.data.item_id] for e in rows if isinstance(e.data, ItemCreated | ItemUpdated | ItemDeleted)]
        locations = [after.locations[e.data.location_id] for e in rows if isinstance(e.data, LocationCreated | LocationUpdated)]
        encoded_metadata = _encode(metadata)
        try:
            positions = await conn.fetchval(
                statements.APPEND_EVENTS,
                org_id,
                [e.event_id for e in rows],
                [e.stream for e in rows],
                [e.version for e in rows],
                [e.type for e in rows],
                [_encode(e.data) for e in rows],
                [encoded_metadata] * len(rows),
                [recorded_at] * len(rows),
                [e.prev_hash for e in rows],
                [e.hash for e in rows],
                sorted(written),
                [heads[s][0] for s in sorted(written)],
                [heads[s][1] for s in sorted(written)],
                *_columns(stock, 4),
                *_columns(holds, 5),
                *_columns([(i.item_id, i.attributes.part_number, _encode(i.attributes), i.deleted) for i in _last_by_id(items, "item_id")], 4),
                *_columns([(loc.location_id, _encode(loc.attributes)) for loc in _last_by_id(locations, "location_id")], 2),
            )
        except asyncpg.UniqueViolationError as exc:
            raise _conflict(exc) from None
        except asyncpg.DeadlockDetectedError:
            raise _StreamRaced() from None  # not expected (heads lock in order); retried anyway
        except asyncpg.CheckViolationError as exc:
            raise errors.InvariantViolated(f"the database refused the write: {exc.constraint_name}") from exc
        recorded = [msgspec.structs.replace(e, position=p) for e, p in zip(rows, positions, strict=True)]
        return CommandResult(events=recorded, position=positions[-1], snapshot=after)


def _with_transfer_id(command, command_id: uuid.UUID | None):
    """A transfer's two halves share an id: derived from the command id, or random."""
    if isinstance(command, TransferStock) and not command.transfer_id:
        transfer_id = uuid.uuid5(command_id, "transfer") if command_id else uuid.uuid4()
        return msgspec.structs.replace(command, transfer_id=str(transfer_id))
    return command


def _line_results(
    refused: dict[int, errors.LedgerError], lines: list[tuple[int, list[EventEnvelope], Snapshot]],
    *, replayed: bool = False,
) -> list[LineResult]:
    results: list[LineResult] = [LineResult(index=n, error=error) for n, error in refused.items()]
    for n, events, after in lines:
        position = events[-1].position if events else 0
        results.append(LineResult(index=n, result=CommandResult(
            events=list(events), position=position, snapshot=after, replayed=replayed)))
    return sorted(results, key=lambda r: r.index)


def _queue_keys(reads: Footprint) -> list[str]:
    """What a command waits its turn on in this process: the items it touches (or its
    location), and its job."""
    keys = [f"item-{i}" for i in reads.items] or [f"location-{loc}" for loc in reads.locations]
    keys.extend(f"job-{job_id}" for job_id in reads.job_ids)
    return keys


async def load_snapshot(
    conn: asyncpg.Connection | asyncpg.Pool, org_id: int, reads: Footprint
) -> tuple[Snapshot, dict[str, tuple[int, str]]]:
    """The slice of the write model `reads` names, and the (version, last hash) of its streams."""
    arrays = (
        reads.items, reads.locations, [item for item, _ in reads.places],
        [location for _, location in reads.places], reads.job_ids, reads.whole_items,
    )
    lengths = tuple(len(a) for a in arrays)
    if sum(lengths) <= statements.MAX_SPELLED_OUT:
        row = await conn.fetchrow(statements.load_snapshot_spelled_out(lengths), org_id, *(x for a in arrays for x in a))
    else:
        row = await conn.fetchrow(statements.LOAD_SNAPSHOT, org_id, *map(list, arrays))
    heads: dict[str, tuple[int, str]] = {}
    stock: dict[int, dict[int, StockLevel]] = {}
    for s in _decode_stock(row["stock"]):
        holds = {h.job_id: Hold(quantity=h.quantity, expires_at=h.expires_at) for h in s.holds}
        stock.setdefault(s.item_id, {})[s.location_id] = StockLevel(
            quantity=s.quantity, reserved=s.reserved, holds=holds, recorded=True
        )
    items = {}
    for i in _decode_items(row["items"]):
        heads[f"item-{i.item_id}"] = (i.version, i.last_hash)
        items[i.item_id] = ItemState(
            item_id=i.item_id, version=i.version, attributes=i.attributes, deleted=i.deleted,
            stock=stock.get(i.item_id, {}), quantity_on_hand=i.quantity_on_hand,
        )
    locations = {}
    for loc in _decode_locations(row["locations"]):
        heads[f"location-{loc.location_id}"] = (loc.version, loc.last_hash)
        locations[loc.location_id] = LocationState(
            location_id=loc.location_id, version=loc.version, attributes=loc.attributes
        )
    return Snapshot(items=items, locations=locations), heads


def _event_ids(command_id: uuid.UUID | None, count: int) -> list[uuid.UUID]:
    return [_event_id(command_id, n) for n in range(count)]


def _event_id(command_id: uuid.UUID | None, n: int) -> uuid.UUID:
    # Derived ids make a re-append of the same command collide with the first in the
    # database (event_id is unique forever), not merely within some time window.
    return uuid.uuid5(command_id, str(n)) if command_id else uuid.uuid4()


def _conflict(exc: asyncpg.UniqueViolationError) -> Exception:
    """The one place a unique violation is given its meaning."""
    match exc.constraint_name:
        case "events_stream_version_key":
            return _StreamRaced()
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


def _columns(rows: list[tuple], width: int) -> list[list]:
    return [list(column) for column in zip(*rows, strict=True)] if rows else [[] for _ in range(width)]


def _last_by_id(states: list, field: str) -> list:
    return list({getattr(s, field): s for s in states}.values())
