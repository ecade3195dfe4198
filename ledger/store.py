"""The event store's command loop: decide on the current state, record, all or nothing.

`execute` (one command) and `execute_batch` (many, atomic or line by line) hand a unit
of work to the process's group commit (ledger/group_commit.py), which records the units
that arrived while the previous append was in flight together. A group costs two round
trips: one statement loads the snapshot of the write model it needs (ledger/snapshots.py),
one call records its events with the new stream heads and write-model rows
(ledger/appender.py). That append is optimistic: the versions it writes are the ones the
snapshot was at, and the unique (stream, version) key refuses it if another process got
there first. The group is then decided again under row locks on the streams it writes,
so a hot item never starves a writer.
"""

from __future__ import annotations

import contextlib
import dataclasses
import time
import uuid
from collections.abc import Sequence
from datetime import datetime

import asyncpg
import msgspec

from ledger import errors, statements
from ledger.appender import StreamRaced, append, event_id, event_ids
from ledger.commands import AnyCommand, CreateItem, CreateLocation, TransferStock
from ledger.decide import decide
from ledger.footprint import Footprint, footprint, merged
from ledger.group_commit import GroupCommit
from ledger.hashing import GENESIS
from ledger.records import envelopes
from ledger.running import RunningState
from ledger.snapshots import load_snapshot
from ledger.state import Snapshot
from schemas import EventEnvelope, EventMetadata, ItemAttributes, LedgerEvent, LocationAttributes, item_stream, stream_of

# A stream that lost a race to another process is decided under its row lock this long.
HOT_SECONDS = 2.0
_MAX_HOT = 10_000
_ATTEMPTS = 4  # one optimistic, then under locks (a retry is only needed if a stream appeared)
# A bound on the events of one command (the API bounds lines per command well below it);
# replaying a recorded command looks its events up by the ids derived up to this count.
MAX_EVENTS_PER_COMMAND = 512
_encode = msgspec.json.encode


class CommandResult(msgspec.Struct, frozen=True, kw_only=True):
    events: list[EventEnvelope]
    position: int  # of the last event; for a command that changed nothing, its stream's latest
    snapshot: Snapshot  # the snapshot as the command left it
    replayed: bool = False  # the command had been recorded before; nothing new was written


@dataclasses.dataclass(frozen=True)
class LineResult:
    """One command of a batch: recorded (`result`) or refused (`error`)."""

    index: int
    result: CommandResult | None = None
    error: errors.LedgerError | None = None


@dataclasses.dataclass(frozen=True)
class _Unit:
    """What one caller asked for: a command (`execute`), or a batch of them, atomic or
    line by line (`execute_batch`). A group commit records several units at once."""

    commands: Sequence[AnyCommand | errors.LedgerError]
    line_ids: Sequence[uuid.UUID | None]  # each command's id: its events' ids derive from it
    metadata: EventMetadata
    atomic: bool
    reads: Footprint  # of all its commands together
    line_reads: Sequence[Footprint | None]  # each command's own (None: a line refused before deciding)
    command_id: uuid.UUID | None  # the unit's own, to find its recording
    expected_version: int | None = None  # If-Match, of a single command


def _version_refusal(unit: _Unit, heads: dict[str, tuple[int, str]], written: dict[str, int]) -> errors.LedgerError | None:
    """A single command's If-Match against its stream as the commands before it leave it."""
    stream = unit.reads.target_stream
    if unit.expected_version is None or stream is None:  # execute() refuses If-Match without one stream
        return None
    current = heads.get(stream, (0, GENESIS))[0] + written.get(stream, 0)
    if current == unit.expected_version:
        return None
    return errors.VersionConflict(f"{stream} is at version {current}, not {unit.expected_version}",
                                  current_version=current)


class EventStore:
    def __init__(self, pool: asyncpg.Pool | asyncpg.Connection):
        self._pool = pool
        self._groups: GroupCommit[_Unit, list[LineResult]] = GroupCommit(self._record_group)
        self.lost_races = 0  # first attempts another writer beat to a stream (then retried under locks)
        self._hot: dict[tuple[int, str], float] = {}  # (org, stream) -> until when it is decided under its lock

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
        unit = _Unit(commands=[command], line_ids=[command_id], metadata=metadata or EventMetadata(), atomic=True,
                     reads=reads, line_reads=[reads], command_id=command_id, expected_version=expected_version)
        [line] = await self._run(org_id, unit)
        if line.result is None:  # a line is recorded (its result) or refused (its error)
            raise line.error or errors.LedgerError()
        return line.result

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
        line_reads = [None if isinstance(c, errors.LedgerError) else footprint(c) for c in commands]
        reads = merged([r for r in line_reads if r is not None])
        unit = _Unit(commands=commands, line_ids=line_ids, metadata=metadata or EventMetadata(), atomic=atomic,
                     reads=reads, line_reads=line_reads, command_id=command_id)
        return await self._run(org_id, unit)

    async def _run(self, org_id: int, unit: _Unit) -> list[LineResult]:
        # A unit recorded before under its command id is not looked for up front (a round
        # trip per keyed command): deciding it again either appends events whose derived
        # ids collide with the recording's (DuplicateEvent: `_record_distinct` then answers
        # with the recording) or refuses / finds nothing to do, which `_recorded_meanwhile`
        # checks against the ledger before answering.
        return await self._groups.submit(org_id, unit)

    async def _record_group(self, org_id: int, units: Sequence[_Unit]) -> list[list[LineResult] | Exception]:
        """Record a group; a unit whose command id an earlier unit of the group carries
        (the same request sent twice at once) is answered with that unit's recording."""
        first: dict[uuid.UUID, int] = {}
        same = {i: first.setdefault(u.command_id, i) for i, u in enumerate(units) if u.command_id is not None}
        distinct = [u for i, u in enumerate(units) if same.get(i, i) == i]
        answers = iter(await self._record_distinct(org_id, distinct))
        results: list[list[LineResult] | Exception] = []
        for i in range(len(units)):
            results.append(next(answers) if same.get(i, i) == i else _as_replayed(results[same[i]]))
        return results

    async def _record_distinct(self, org_id: int, units: Sequence[_Unit]) -> Sequence[list[LineResult] | Exception]:
        """Record a group of units (group_commit.py): one optimistic attempt; after a lost
        race, attempts under the row locks of the streams it writes. When the append itself
        is refused (a duplicate part number, a command recorded meanwhile by another
        process), each unit is recorded alone, so the refusal reaches only its own caller."""
        reads = merged([u.reads for u in units])
        streams: set[str] = set()
        first = 1 if self._hot_now(org_id, reads) else 0  # a hot stream: lock at once, lose no race
        for attempt in range(first, first + _ATTEMPTS):
            try:
                async with self._connection() as conn:
                    if attempt == 0:
                        return await self._decide_and_append(conn, org_id, units, reads)
                    async with conn.transaction():
                        locked = await self._lock(conn, org_id, reads, streams)
                        return await self._decide_and_append(conn, org_id, units, reads, locked)
            except StreamRaced as raced:
                self.lost_races += 1
                streams |= raced.streams
                self._heat(org_id, raced.streams)
            except errors.LedgerError as refused:
                if len(units) > 1:
                    return [(await self._record_distinct(org_id, [unit]))[0] for unit in units]
                unit = units[0]
                if (
                    isinstance(refused, errors.DuplicateEvent)
                    and unit.command_id is not None
                    and (recorded := await self._recorded(org_id, unit)) is not None
                ):
                    return [recorded]
                return [refused]
        return [errors.Conflict("the command kept racing other writers; try again")] * len(units)

    def _hot_now(self, org_id: int, reads: Footprint) -> bool:
        if not self._hot:
            return False
        now = time.monotonic()
        return any(self._hot.get((org_id, item_stream(item)), 0.0) > now for item in reads.items)

    def _heat(self, org_id: int, streams: set[str]) -> None:
        """Streams that just lost a race to another process are decided under their row
        locks for a while: a waiting lock costs less than a decision thrown away."""
        now = time.monotonic()
        if len(self._hot) > _MAX_HOT:
            self._hot = {k: until for k, until in self._hot.items() if until > now}
        for stream in streams:
            self._hot[(org_id, stream)] = now + HOT_SECONDS

    async def _decide_and_append(
        self, conn, org_id: int, units: Sequence[_Unit], reads: Footprint, locked: set[str] | None = None
    ) -> list[list[LineResult]]:
        """Decide every unit's commands in order on the running snapshot, and append what was
        accepted in one call. An atomic unit with a refused command contributes nothing."""
        snapshot, heads = (Snapshot(), {}) if reads.empty else await load_snapshot(conn, org_id, reads)
        running = RunningState(snapshot)
        written: dict[str, int] = {}  # events per stream decided so far (If-Match counts them)
        plans: list[tuple[dict[int, errors.LedgerError], list[tuple[int, list[LedgerEvent], Snapshot]]]] = []
        events, ids, metadata = [], [], []
        for unit in units:
            refused, decided = {}, []
            running.begin_unit()
            for n, command in enumerate(unit.commands):
                if isinstance(command, errors.LedgerError):  # refused before any deciding
                    refused[n] = command
                    continue
                view = running.view(unit.line_reads[n] or Footprint())  # None only for a refused line
                refusal = _version_refusal(unit, heads, written)
                if refusal is None:
                    try:
                        decided_events = decide(view, command)
                        if len(decided_events) > MAX_EVENTS_PER_COMMAND:
                            raise errors.ValidationFailed(f"a command may record at most {MAX_EVENTS_PER_COMMAND} events")
                    except errors.LedgerError as exc:
                        refusal = exc
                if refusal is not None:
                    refused[n] = refusal
                    continue
                decided.append((n, decided_events, running.apply(view, decided_events)))
            if unit.atomic and refused:  # records nothing: every command leaves the state as it was
                running.undo_unit()
                decided = [(n, [], running.view(unit.line_reads[n] or Footprint())) for n, _, _ in decided]
            else:
                running.end_unit()
            for n, unit_events, _ in decided:
                events.extend(unit_events)
                ids.extend(event_ids(unit.line_ids[n], len(unit_events)))
                metadata.extend([unit.metadata] * len(unit_events))
                for event in unit_events:
                    written[stream_of(event)] = written.get(stream_of(event), 0) + 1
            plans.append((refused, decided))
        if found := await self._recorded_meanwhile(conn, org_id, units, plans):
            # Their recordings answer them; the others were decided on a state that had
            # them twice: decide those again without them.
            rest = [u for i, u in enumerate(units) if i not in found]
            again = iter(await self._decide_and_append(conn, org_id, rest, reads, locked) if rest else [])
            return [found[i] if i in found else next(again) for i in range(len(units))]
        if locked is not None and not (writes := {stream_of(e) for e in events}) <= locked:
            raise StreamRaced(writes)  # a job took a hold on another item since we looked: lock again
        appended = await append(conn, org_id, snapshot, running.snapshot(), heads, events, metadata, ids) if events else []
        results, at = [], 0
        for unit, (refused, decided) in zip(units, plans, strict=True):
            lines = []
            for n, unit_events, after in decided:
                lines.append((n, appended[at:at + len(unit_events)], after))
                at += len(unit_events)
            results.append(_line_results(refused, lines))
            if unit.line_ids == [unit.command_id] and not refused and not lines[0][1] and unit.reads.target_stream:
                # A single command that changed nothing answers with its stream's position.
                position = await conn.fetchval(statements.READ_STREAM_POSITION, org_id, unit.reads.target_stream)
                line = results[-1][0]
                if line.result is not None:
                    results[-1] = [dataclasses.replace(line, result=msgspec.structs.replace(line.result, position=position))]
        return results

    async def _recorded_meanwhile(self, conn, org_id: int, units: Sequence[_Unit], plans) -> dict[int, list[LineResult]]:
        """Units with a command id whose decision refused a command or found nothing to do,
        that a call with the same command id recorded since their first look: this
        decision then ran on the state that recording left (deciding again would refuse
        it, or, line by line, record on top the lines it refused)."""
        found = {}
        for i, (unit, (refused, decided)) in enumerate(zip(units, plans, strict=True)):
            if unit.command_id is None or not (refused or not any(e for _, e, _ in decided)):
                continue
            if (recorded := await self._recorded(org_id, unit, conn)) is not None:
                found[i] = recorded
        return found

    @contextlib.asynccontextmanager
    async def _connection(self):
        """One connection for the whole command (a store made on a connection uses it)."""
        if isinstance(self._pool, asyncpg.Pool):
            async with self._pool.acquire() as conn:
                yield conn
        else:
            yield self._pool

    async def _lock(self, conn, org_id: int, reads: Footprint, streams: set[str]) -> set[str]:
        """Lock every stream the group may write, in one sorted statement: the item
        streams it reads, the streams a raced attempt was going to write (a location's,
        a new item's), and the items a job holds stock of (found first)."""
        streams = streams | {item_stream(i) for i in reads.items}
        if reads.job_ids:
            snapshot, _ = await load_snapshot(conn, org_id, reads)
            streams |= {item_stream(i) for i in snapshot.items}
        await conn.execute(statements.LOCK_STREAMS, org_id, sorted(streams))
        return streams

    async def _recorded(self, org_id: int, unit: _Unit, conn=None) -> list[LineResult] | None:
        """The results of a unit recorded earlier under the same command id, if it was.

        A unit is recorded in one transaction, so one event of any of its commands means
        all of it. The events of each command are found by their derived ids, the first
        of every command at once, then the next of those that had one, and so on (a
        handful of rounds, not a probe of every id a command could have). A command that
        recorded nothing was a refusal (line by line) or changed nothing (atomic: a
        recorded atomic unit refused nothing). The snapshot is as it is now: a replay says
        what was recorded, not what followed it then.
        """
        line_ids = unit.line_ids
        events: dict[int, list[EventEnvelope]] = {n: [] for n in range(len(line_ids))}
        # On the attempt's own connection when it has one: a second from the pool while
        # holding the first could wait forever on an exhausted pool.
        async with self._connection() if conn is None else contextlib.nullcontext(conn) as conn:
            pending, k = list(events), 0
            while pending and k < MAX_EVENTS_PER_COMMAND:
                found = {e.event_id: e for e in envelopes(
                    await conn.fetch(statements.READ_EVENTS_BY_ID, [event_id(line_ids[n], k) for n in pending]))}
                if any(e.org_id != org_id for e in found.values()):
                    raise errors.Conflict("this command id was already used by another organization")
                still = []
                for n in pending:
                    if (event := found.get(event_id(line_ids[n], k))) is not None:
                        events[n].append(event)
                        still.append(n)
                pending, k = still, k + 1
            if not any(events.values()):
                return None
            snapshot = Snapshot() if unit.reads.empty else (await load_snapshot(conn, org_id, unit.reads))[0]
        refused: dict[int, errors.LedgerError] = {}
        if not unit.atomic:
            refused = {n: errors.BadRequest("this line recorded nothing when the batch was first carried out",
                                            code="not_recorded")
                       for n, recorded in events.items() if not recorded}
        lines = [(n, recorded, snapshot) for n, recorded in events.items() if n not in refused]
        return _line_results(refused, lines, replayed=True)

    # --- small reads the API needs around commands ----------------------------------

    async def item_ids(self, org_id: int, part_numbers: list[str]) -> dict[str, int]:
        """The ids of the (not deleted) items with these part numbers."""
        rows = await self._pool.fetch(statements.FIND_ITEMS_BY_PART_NUMBER, org_id, part_numbers)
        return {row["part_number"]: row["item_id"] for row in rows}

    async def default_location(self, org_id: int) -> int | None:
        return await self._pool.fetchval(statements.READ_DEFAULT_LOCATION, org_id)

    async def created_at(self, org_id: int, stream: str) -> datetime | None:
        return await self._pool.fetchval(statements.READ_STREAM_CREATED_AT, org_id, stream)


def _with_transfer_id(command, command_id: uuid.UUID | None):
    """A transfer's two halves share an id: derived from the command id, or random."""
    if isinstance(command, TransferStock) and not command.transfer_id:
        transfer_id = uuid.uuid5(command_id, "transfer") if command_id else uuid.uuid4()
        return msgspec.structs.replace(command, transfer_id=str(transfer_id))
    return command


def _as_replayed(results: list[LineResult] | Exception) -> list[LineResult] | Exception:
    if isinstance(results, Exception):
        return results
    return [r if r.result is None else dataclasses.replace(r, result=msgspec.structs.replace(r.result, replayed=True))
            for r in results]


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


