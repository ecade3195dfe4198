"""The writer: one process per host decides and appends the commands of every API worker.

With several API worker processes, each had its own group commit, and two workers' groups
on the same items raced in the database: the loser waited on the winner's row locks, then
decided again under them, and the locks were held while Python decided. On two cores, two
workers recorded batches of 100 random lines more slowly than one worker alone. Here the
workers send every unit of work (a command, a batch) over a Unix socket to one writer
process, whose single group commit decides them in order on one running state: commands
of one host never race each other, and a group holds every worker's commands.

The writer is an optimisation, never the guard. A worker that cannot reach it decides and
appends in its own process, as before (`submit` answers None), and the database's keys
still refuse whatever two processes (two hosts, or a worker and the writer) decide on the
same stream version. A unit sent to a writer that goes away before answering may have
been recorded: its caller gets `503 database_unavailable` (nothing is half-written;
retried with the same Idempotency-Key it is recorded once), never a second recording.

Frames are a 4-byte length and a msgpack message. The socket lives in a directory only the
service's user can enter (`ledger serve` makes it with mkdtemp): a worker's word about the
organization is trusted as the database trusts the worker's credentials.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import struct
import time
import uuid
from typing import Any

import msgspec
import structlog

from ledger import commands as command_classes
from ledger import errors
from ledger.db import connection_lost
from ledger.footprint import Footprint
from ledger.store import CommandResult, EventStore, LineResult, Unit
from schemas import EventMetadata

log = structlog.get_logger("ledger.writer")

_LENGTH = struct.Struct(">I")
MAX_FRAME = 64 * 1024 * 1024  # a batch of 1,000 lines and its results are a few MB
RECONNECT_SECONDS = 1.0  # after a failed connect, decide in-process this long before trying again
_COMMANDS: dict[str, type] = {cls.__name__: cls for cls in vars(command_classes).values()
             if isinstance(cls, type) and issubclass(cls, command_classes.Command)}
_REFUSED = "refused"  # a line refused before deciding travels as its error


class _Command(msgspec.Struct, array_like=True):
    kind: str  # a command class's name, or _REFUSED
    body: msgspec.Raw


class _Error(msgspec.Struct, array_like=True):
    kind: str  # the LedgerError class's name
    message: str
    code: str
    extra: dict[str, Any]


class _Request(msgspec.Struct, array_like=True):
    id: int
    org_id: int
    commands: list[_Command]
    line_ids: list[uuid.UUID | None]
    metadata: EventMetadata
    atomic: bool
    reads: Footprint
    line_reads: list[Footprint | None]
    command_id: uuid.UUID | None
    expected_version: int | None


class _Reply(msgspec.Struct, array_like=True):
    id: int
    lines: list[_Line] | None  # the unit's results, or
    error: _Error | None  # what its caller raises


class _Line(msgspec.Struct, array_like=True):
    index: int
    result: CommandResult | None
    error: _Error | None


_encode = msgspec.msgpack.Encoder(enc_hook=str).encode  # an error's extra may hold odd values: as text
_decode_request = msgspec.msgpack.Decoder(_Request).decode
_decode_reply = msgspec.msgpack.Decoder(_Reply).decode


def _frame(message: msgspec.Struct) -> bytes:
    body = _encode(message)
    return _LENGTH.pack(len(body)) + body


async def _read_frame(reader: asyncio.StreamReader) -> bytes:
    (length,) = _LENGTH.unpack(await reader.readexactly(_LENGTH.size))
    if length > MAX_FRAME:
        raise ConnectionError(f"a frame of {length} bytes is over the limit")
    return await reader.readexactly(length)


def _wire_error(exc: BaseException) -> _Error:
    if not isinstance(exc, errors.LedgerError):
        if connection_lost(exc):
            exc = errors.DatabaseUnavailable()
        else:
            log.error("writer.unexpected", exc_info=exc)
            exc = errors.LedgerError()
    return _Error(kind=type(exc).__name__, message=exc.message, code=exc.code, extra=exc.extra)


def _error_classes(root: type[errors.LedgerError] = errors.LedgerError) -> dict[str, type[errors.LedgerError]]:
    found = {root.__name__: root}
    for sub in root.__subclasses__():
        found.update(_error_classes(sub))
    return found


def _ledger_error(wire: _Error) -> errors.LedgerError:
    return _error_classes().get(wire.kind, errors.LedgerError)(wire.message, code=wire.code, **wire.extra)


# --- the writer process's side ---------------------------------------------------------


async def serve(store: EventStore, path: str) -> asyncio.Server:
    """Answer units sent to `path` by recording them through `store`'s group commit."""

    async def connection(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        tasks: set[asyncio.Task] = set()
        try:
            while True:
                request = _decode_request(await _read_frame(reader))
                task = asyncio.get_running_loop().create_task(_answer(store, request, writer))
                tasks.add(task)
                task.add_done_callback(tasks.discard)
        except (asyncio.IncompleteReadError, ConnectionError):
            pass  # the worker went away; units already taken are recorded, their answers dropped
        finally:
            writer.close()

    return await asyncio.start_unix_server(connection, path=path)


async def _answer(store: EventStore, request: _Request, writer: asyncio.StreamWriter) -> None:
    try:
        unit = Unit(
            commands=[_ledger_error(msgspec.msgpack.decode(c.body, type=_Error)) if c.kind == _REFUSED
                      else msgspec.msgpack.decode(c.body, type=_COMMANDS[c.kind]) for c in request.commands],
            line_ids=request.line_ids, metadata=request.metadata, atomic=request.atomic, reads=request.reads,
            line_reads=request.line_reads, command_id=request.command_id, expected_version=request.expected_version,
        )
        lines = await store.submit(request.org_id, unit)
        reply = _Reply(id=request.id, error=None, lines=[
            _Line(index=line.index, result=line.result, error=None if line.error is None else _wire_error(line.error))
            for line in lines])
    except Exception as exc:  # noqa: BLE001 - the unit's caller gets it, as it would in-process
        reply = _Reply(id=request.id, lines=None, error=_wire_error(exc))
    if not writer.is_closing():
        writer.write(_frame(reply))


# --- an API worker's side ----------------------------------------------------------------


class WriterLink:
    """An API worker's connection to the writer: `submit` sends a unit and awaits its
    results, many units in flight on one connection."""

    def __init__(self, path: str):
        self._path = path
        self._writer: asyncio.StreamWriter | None = None
        self._pending: dict[int, asyncio.Future] = {}
        self._ids = itertools.count(1)
        self._connecting: asyncio.Lock | None = None
        self._retry_at = 0.0
        self._reader_task: asyncio.Task | None = None

    async def submit(self, org_id: int, unit: Unit) -> list[LineResult] | None:
        """The unit's results, as the writer recorded it; None when the writer cannot be
        reached (nothing was sent: the caller records the unit itself)."""
        if not await self._connected():
            return None
        request_id = next(self._ids)
        future = asyncio.get_running_loop().create_future()
        self._pending[request_id] = future
        try:
            self._writer.write(_frame(_Request(  # type: ignore[union-attr]  # _connected() made it
                id=request_id, org_id=org_id,
                commands=[_Command(kind=_REFUSED, body=msgspec.Raw(_encode(_wire_error(c))))
                          if isinstance(c, errors.LedgerError)
                          else _Command(kind=type(c).__name__, body=msgspec.Raw(_encode(c))) for c in unit.commands],
                line_ids=list(unit.line_ids), metadata=unit.metadata, atomic=unit.atomic, reads=unit.reads,
                line_reads=list(unit.line_reads), command_id=unit.command_id, expected_version=unit.expected_version,
            )))
            reply: _Reply = await future
        finally:
            self._pending.pop(request_id, None)
        if reply.error is not None:
            raise _ledger_error(reply.error)
        return [_line_result(line) for line in reply.lines or []]

    async def _connected(self) -> bool:
        if self._writer is not None and not self._writer.is_closing():
            return True
        if time.monotonic() < self._retry_at:
            return False
        self._connecting = self._connecting or asyncio.Lock()
        async with self._connecting:
            if self._writer is not None and not self._writer.is_closing():
                return True
            try:
                reader, self._writer = await asyncio.open_unix_connection(self._path)
            except OSError as exc:
                self._retry_at = time.monotonic() + RECONNECT_SECONDS
                log.warning("writer.unreachable", path=self._path, error=str(exc))
                return False
            self._reader_task = asyncio.get_running_loop().create_task(self._read(reader, self._writer))
            return True

    async def _read(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                reply = _decode_reply(await _read_frame(reader))
                future = self._pending.get(reply.id)
                if future is not None and not future.done():
                    future.set_result(reply)
        except (asyncio.IncompleteReadError, ConnectionError, msgspec.DecodeError) as exc:
            log.warning("writer.lost", path=self._path, error=str(exc) or type(exc).__name__)
        finally:
            writer.close()
            if self._writer is writer:
                self._writer = None
            lost = errors.DatabaseUnavailable("the writer process stopped before answering: the command may or may "
                                              "not be recorded; retry it with the same Idempotency-Key")
            for future in self._pending.values():
                if not future.done():
                    future.set_exception(lost)

    async def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
        if self._reader_task is not None:
            self._reader_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._reader_task


def _line_result(line: _Line) -> LineResult:
    return LineResult(index=line.index, result=line.result,
                      error=None if line.error is None else _ledger_error(line.error))
