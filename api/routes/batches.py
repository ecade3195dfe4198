"""Batches (DESIGN 10): up to 1,000 stock commands in one request and one transaction.

`POST /api/v1/batches` takes JSON (`{"atomic": true, "lines": [...]}`) or CSV
(`Content-Type: text/csv`, a header row, `?atomic=false` for line by line). Every line is
decoded on its own, so every fault names its line (`index`, and the CSV `line`). The
lines then go to the store as one batch (`EventStore.execute_batch`): decided in order on
the running state and recorded in one append. Atomic: all or nothing, `400` with the first
refused line's code and every refused line in `details`. Line by line: `200` with each
line recorded or refused. A line's result carries what its own route would answer.
"""

from __future__ import annotations

import csv
import dataclasses
import io
from datetime import UTC, datetime
from typing import Annotated, get_args

import msgspec
from litestar import Request, Response, post
from litestar.openapi.spec import OpenAPIMediaType, OpenAPIType, Operation, RequestBody, Schema
from litestar.params import QueryParameter

from api import shared
from api.auth import grants
from api.bodies import decode
from api.command_requests import command_id_of, metadata_of
from api.errors import BatchTooLarge, InsufficientScope
from api.metrics import count_command
from api.responses import recorded
from api.routes.jobs import job_result
from api.routes.stock import adjust_result, count_result, level_result
from api.routes.transfers import transfer_result
from ledger import errors
from ledger.commands import (
    AddStock,
    AdjustStock,
    AnyCommand,
    CompleteJob,
    Line,
    ReleaseStock,
    RemoveStock,
    ReserveStock,
    SetCountedQuantity,
    TransferStock,
)
from ledger.store import CommandResult, EventStore, LineResult
from schemas.api import (
    MAX_BATCH_LINES,
    AddLine,
    AdjustLine,
    AnyBatchLine,
    BatchLineResult,
    BatchRequest,
    BatchResult,
    CommandEnvelope,
    CompleteLine,
    CountLine,
    ReleaseLine,
    RemoveLine,
    ReserveLine,
    TransferLine,
)

CSV_COLUMNS = ("kind", "ref", "item_id", "part_number", "location_id", "from_location_id", "to_location_id",
               "job_id", "quantity", "expected_quantity", "reason", "notes", "expires_at")
LINE_KINDS = ("add", "remove", "adjust", "count", "transfer", "reserve", "release", "complete")
AtomicParam = Annotated[bool | None, QueryParameter(description="CSV bodies: false records line by line (default true)")]


@dataclasses.dataclass
class _BatchOperation(Operation):
    """The request body, documented by hand: the handler reads it itself (JSON or CSV)."""

    def __post_init__(self) -> None:
        line = Schema(type=OpenAPIType.OBJECT, required=["kind"], properties={
            "kind": Schema(type=OpenAPIType.STRING, enum=list(LINE_KINDS)),
            "ref": Schema(type=OpenAPIType.STRING, max_length=100)})
        lines = Schema(type=OpenAPIType.ARRAY, items=line, min_items=1, max_items=MAX_BATCH_LINES)
        body = Schema(type=OpenAPIType.OBJECT, required=["lines"],
                      properties={"lines": lines, "atomic": Schema(type=OpenAPIType.BOOLEAN)})
        self.request_body = RequestBody(required=True, content={
            "application/json": OpenAPIMediaType(schema=body),
            "text/csv": OpenAPIMediaType(schema=Schema(type=OpenAPIType.STRING, description=", ".join(CSV_COLUMNS)))})


class ParsedBatch(msgspec.Struct):
    lines: list[AnyBatchLine]
    atomic: bool
    csv_lines: list[int] | None  # the file's line number of every line, for CSV


@post("/batches", operation_id="executeBatch", tags=["stock"], status_code=200, operation_class=_BatchOperation,
      opt={"any_scope": ("inventory:write", "inventory:transfer"), "body_scopes": lambda scope, body: check_scopes(
          scope["user"].scopes, _parse(_header(scope, b"content-type"), body, _query_atomic(scope)))})
async def execute_batch(request: Request, store: shared.Store, atomic: AtomicParam = None) -> Response[CommandEnvelope[BatchResult]]:
    """Many stock commands at once: all or nothing (`atomic`, the default) or line by line."""
    parsed = _parse(request.headers.get("content-type", ""), await request.body(), atomic)
    check_scopes(request.user.scopes, parsed)
    if request.headers.get("if-match") is not None:
        raise errors.ValidationFailed("If-Match applies to single commands, not to batches")
    commands, results = await run_lines(
        store, request.user.org_id, parsed, metadata=metadata_of(request),
        command_id=command_id_of(request),
    )
    refused = [(r.index, r.error) for r in results if r.error is not None]
    if parsed.atomic and refused:
        index, first = refused[0]
        details = refusal_details(results, parsed)
        raise errors.BadRequest(f"line {index}: {first.message}", code=first.code, details=details)
    body = BatchResult(results=[_result(r, parsed, command) for r, command in zip(results, commands, strict=True)],
                       recorded=len(results) - len(refused), refused=len(refused))
    position = max((r.result.position for r in results if r.result is not None), default=0)
    return recorded(request, body, position, message=f"{body.recorded} recorded, {body.refused} refused")


async def run_lines(
    store: EventStore, org_id: int, parsed: ParsedBatch, *, metadata, command_id
) -> tuple[list[AnyCommand | errors.LedgerError], list[LineResult]]:
    """The parsed lines as commands, executed as one batch; the commands and their results."""
    items = await _part_numbers(store, org_id, parsed.lines)
    commands = [_command(line, items) for line in parsed.lines]
    results = await store.execute_batch(org_id, commands, atomic=parsed.atomic, metadata=metadata, command_id=command_id)
    for command, line in zip(commands, results, strict=True):
        name = type(command).__name__ if not isinstance(command, errors.LedgerError) else "Unresolved"
        count_command(name, line.error.code if line.error else "accepted")
    return commands, results


def refusal_details(results: list[LineResult], parsed: ParsedBatch) -> list[dict]:
    return [_refusal_detail(r.index, r.error, parsed) for r in results if r.error is not None]


# --- parsing --------------------------------------------------------------------------


def _parse(content_type: str, raw: bytes, atomic: bool | None) -> ParsedBatch:
    if content_type.split(";")[0].strip().lower() == "text/csv":
        return _parse_csv(raw, True if atomic is None else atomic)
    request = decode(raw or b"{}", BatchRequest)
    if atomic is not None:
        raise errors.ValidationFailed("the atomic query parameter is for CSV bodies; JSON says it in the body")
    _check_size(len(request.lines))
    lines, faults = [], []
    for index, line in enumerate(request.lines):
        try:
            lines.append(_line(line))
        except msgspec.ValidationError as exc:
            faults.append({"index": index, "ref": _ref(line), "message": str(exc)})
    _refuse_faults(faults)
    return ParsedBatch(lines=lines, atomic=request.atomic, csv_lines=None)


_LINE_TYPES = {line_type.__struct_config__.tag: line_type for line_type in get_args(AnyBatchLine)}


def _line(fields: dict, *, strict: bool = True) -> AnyBatchLine:
    """One line as the line type its `kind` names. Converting to the union itself would
    give the same lines and messages, but msgspec analyses a union on every call (20 us a
    line, a tenth of a batch's CPU) and a class once; the union is left for a line whose
    kind names no type, to word the refusal."""
    kind = fields.get("kind")
    line_type = _LINE_TYPES.get(kind) if isinstance(kind, str) else None
    return msgspec.convert(fields, line_type or AnyBatchLine, strict=strict)


def _parse_csv(raw: bytes, atomic: bool) -> ParsedBatch:
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise errors.ValidationFailed(f"the CSV body is not UTF-8 (byte {exc.start})") from None
    rows = list(csv_rows(text))
    if len(rows) > MAX_BATCH_LINES:
        _check_size(len(rows))
    return csv_lines(rows, atomic)


def csv_rows(text: str):
    """The data rows of a CSV text as (file line number, cells), after checking its header."""
    reader = csv.DictReader(io.StringIO(text, newline=""))
    header = reader.fieldnames or []
    if unknown := [c for c in header if c not in CSV_COLUMNS]:
        raise errors.ValidationFailed(f"unknown CSV column(s): {', '.join(map(repr, unknown))}; "
                                      f"columns are {', '.join(CSV_COLUMNS)}", details=[{"line": 1, "field": unknown[0]}])
    if "kind" not in header:
        raise errors.ValidationFailed("the CSV header must name the kind column", details=[{"line": 1, "field": "kind"}])
    for row in reader:
        yield reader.line_num, row


def csv_lines(rows: list[tuple[int, dict]], atomic: bool) -> ParsedBatch:
    """CSV rows as batch lines; every fault names its index and the file's line."""
    lines, numbers, faults = [], [], []
    for index, (number, row) in enumerate(rows):
        if None in row:  # more cells than the header names
            faults.append({"index": index, "line": number, "message": "more cells than the header has columns"})
            continue
        cells = {k: v for k, v in row.items() if v not in (None, "")}
        try:
            lines.append(_line(cells, strict=False))
            numbers.append(number)
        except msgspec.ValidationError as exc:
            faults.append({"index": index, "line": number, "ref": cells.get("ref"), "message": str(exc)})
    _check_size(len(lines) + len(faults))
    _refuse_faults(faults)
    return ParsedBatch(lines=lines, atomic=atomic, csv_lines=numbers)


def _check_size(count: int) -> None:
    if count > MAX_BATCH_LINES:
        raise BatchTooLarge(f"a batch holds at most {MAX_BATCH_LINES} lines")
    if count == 0:
        raise errors.ValidationFailed("a batch needs at least one line")


def _refuse_faults(faults: list[dict]) -> None:
    if faults:
        first = faults[0]
        where = f"line {first['line']}" if "line" in first else f"lines[{first['index']}]"
        raise errors.ValidationFailed(f"{where}: {first['message']}", details=faults)


def _ref(line: object) -> str | None:
    ref = line.get("ref") if isinstance(line, dict) else None
    return ref if isinstance(ref, str) else None


# --- scopes ---------------------------------------------------------------------------


def _scope(line: AnyBatchLine) -> str:
    return "inventory:transfer" if isinstance(line, TransferLine) else "inventory:write"


def check_scopes(scopes: list[str], parsed: ParsedBatch) -> None:
    """Each line needs its own scope (a transfer `inventory:transfer`, the rest `inventory:write`)."""
    lacking = [(n, line, _scope(line)) for n, line in enumerate(parsed.lines) if not grants(scopes, _scope(line))]
    if lacking:
        details = [{"index": n, "ref": line.ref, "error": "insufficient_scope", "message": f"needs {scope}",
                    **_csv_line(parsed, n)} for n, line, scope in lacking]
        needed = sorted({scope for _, _, scope in lacking})
        raise InsufficientScope(f"This batch requires the {' and '.join(needed)} scope", details=details)


def _header(scope, name: bytes) -> str:
    return dict(scope.get("headers", [])).get(name, b"").decode("latin-1")


def _query_atomic(scope) -> bool | None:
    from urllib.parse import parse_qs

    values = parse_qs(scope.get("query_string", b"").decode("latin-1")).get("atomic")
    return None if not values else values[-1].lower() not in ("false", "0")


# --- lines as commands ----------------------------------------------------------------


async def _part_numbers(store: EventStore, org_id: int, lines: list[AnyBatchLine]) -> dict[str, int]:
    """The item ids of the part numbers lines name instead of an item id."""
    wanted = sorted({line.part_number for line in lines if line.item_id is None and line.part_number})
    if not wanted:
        return {}
    return await store.item_ids(org_id, wanted)


def _command(line: AnyBatchLine, items: dict[str, int]) -> AnyCommand | errors.LedgerError:
    """The line's command, or the refusal it meets before any deciding."""
    item_id = line.item_id
    if item_id is None and line.part_number is not None:
        item_id = items.get(line.part_number)
        if item_id is None:
            return errors.NotFound(f"no item has part number {line.part_number!r}", code="item_not_found")
    if isinstance(line, ReleaseLine):  # a CompleteLine is one too
        return _job_command(line, item_id)
    if item_id is None:
        return errors.ValidationFailed("item_id or part_number is required", code="missing_item_id")
    match line:  # a subclass before its base (a remove has an add's fields, a count an adjust's)
        case RemoveLine():
            return RemoveStock(item_id=item_id, location_id=line.location_id, quantity=line.quantity, notes=line.notes)
        case AddLine():
            return AddStock(item_id=item_id, location_id=line.location_id, quantity=line.quantity, notes=line.notes)
        case CountLine():
            return SetCountedQuantity(item_id=item_id, location_id=line.location_id, quantity=line.quantity,
                                      reason=line.reason, expected_quantity=line.expected_quantity)
        case AdjustLine():
            return AdjustStock(item_id=item_id, location_id=line.location_id, quantity=line.quantity, reason=line.reason)
        case TransferLine():
            return TransferStock(item_id=item_id, from_location_id=line.from_location_id,
                                 to_location_id=line.to_location_id, quantity=line.quantity, notes=line.notes)
        case ReserveLine():
            if line.expires_at is not None:
                if line.expires_at.tzinfo is None:
                    return errors.ValidationFailed("expires_at needs a time zone (e.g. 2026-12-01T08:00:00Z)")
                if line.expires_at <= datetime.now(UTC):
                    return errors.ValidationFailed("expires_at is in the past")
            return ReserveStock(job_id=line.job_id, lines=[Line(item_id=item_id, location_id=line.location_id,
                                                                quantity=line.quantity)],
                                expires_at=line.expires_at, notes=line.notes)
    raise TypeError(line)


def _job_command(line: ReleaseLine | CompleteLine, item_id: int | None) -> AnyCommand | errors.LedgerError:
    """A release or completion: of one line, or (no item, location or quantity) of
    everything the job holds, as the job routes do."""
    lines = None
    if item_id is not None or line.location_id is not None or line.quantity is not None:
        if item_id is None or line.location_id is None or line.quantity is None:
            return errors.ValidationFailed("a job line names item, location_id and quantity, or none of them")
        lines = [Line(item_id=item_id, location_id=line.location_id, quantity=line.quantity)]
    if isinstance(line, CompleteLine):  # before ReleaseLine: a completion has a release's fields
        return CompleteJob(job_id=line.job_id, lines=lines, notes=line.notes)
    return ReleaseStock(job_id=line.job_id, lines=lines, notes=line.notes)


# --- answers --------------------------------------------------------------------------


def _csv_line(parsed: ParsedBatch, index: int) -> dict:
    return {"line": parsed.csv_lines[index]} if parsed.csv_lines is not None else {}


def _refusal_detail(index: int, error: errors.LedgerError, parsed: ParsedBatch) -> dict:
    detail = {"index": index, "ref": parsed.lines[index].ref, "error": error.code, "message": error.message,
              **_csv_line(parsed, index)}
    if "available_quantity" in error.extra:
        detail["available_quantity"] = error.extra["available_quantity"]
    return detail


def _result(line: LineResult, parsed: ParsedBatch, command: AnyCommand | errors.LedgerError) -> BatchLineResult:
    ref = parsed.lines[line.index].ref
    if line.error is not None or line.result is None or isinstance(command, errors.LedgerError):
        error = line.error or errors.LedgerError()  # a line is either refused or recorded
        return BatchLineResult(index=line.index, ref=ref, status="refused", error=error.code, message=error.message,
                               available_quantity=error.extra.get("available_quantity"))
    fields = msgspec.structs.asdict(_answer(command, line.result))
    return BatchLineResult(index=line.index, ref=ref, status="recorded", position=line.result.position or None, **fields)


def _answer(command: AnyCommand, result: CommandResult) -> msgspec.Struct:
    """What the command's own route answers (api/routes/stock.py, transfers.py, jobs.py)."""
    match command:
        case AddStock() | RemoveStock():
            return level_result(result, command.item_id, command.location_id)
        case AdjustStock():
            return adjust_result(result, command.item_id, command.location_id)
        case SetCountedQuantity():
            return count_result(result, command.item_id, command.location_id)
        case TransferStock():
            return transfer_result(result, command)
        case ReserveStock() | ReleaseStock() | CompleteJob():
            return job_result(command.job_id, result)
    raise TypeError(command)
