"""Running a command for an HTTP request: who asked, under which keys, at which version."""

from __future__ import annotations

from litestar import Request

from api.idempotency import command_id
from api.metrics import count_command
from api.request_ids import request_id
from ledger import errors
from ledger.commands import AnyCommand
from ledger.store import CommandResult, EventStore
from schemas import EventMetadata, ItemAttributes, LocationAttributes

USER_NAME = "API"  # the transaction history's user_name for API-made changes (seed 004)
MAX_HEADER_TEXT = 255


def metadata_of(request: Request) -> EventMetadata:
    return EventMetadata(
        request_id=request_id(request.scope),
        key_id=request.user.key_id,
        user_name=USER_NAME,
        idempotency_key=_header_text(request, "idempotency-key"),
        correlation_id=_header_text(request, "x-correlation-id"),
    )


def _header_text(request: Request, name: str) -> str | None:
    """A caller's header kept in the event's metadata, forever: short and printable (a NUL
    would fail in the database's jsonb as a 500; a megabyte would sit in every copy)."""
    value = request.headers.get(name)
    if value is not None and (len(value) > MAX_HEADER_TEXT or not value.isprintable()):
        raise errors.ValidationFailed(f"{name} must be at most {MAX_HEADER_TEXT} printable characters")
    return value


def _expected_version(request: Request) -> int | None:
    """`If-Match: 7` or `If-Match: "7"`: the version the command's stream must be at."""
    value = request.headers.get("if-match")
    if value is None:
        return None
    try:
        version = int(value.strip().strip('"').removeprefix("W/").strip('"'))
    except ValueError:
        raise errors.ValidationFailed("If-Match must be a stream version (an integer)") from None
    if not 0 <= version < 2**31:
        raise errors.ValidationFailed("If-Match must be a stream version (an integer)")
    return version


def _options(request: Request) -> dict:
    return {
        "metadata": metadata_of(request),
        "command_id": command_id_of(request),
        "expected_version": _expected_version(request),
    }


def command_id_of(request: Request):
    """The ledger command id of a POST with an Idempotency-Key (api/idempotency.py).

    Only a POST's key is honoured; on another method it must not become a command id, or
    a later POST under the same key would find that command's recording and answer with
    it, writing nothing."""
    if request.method != "POST":
        return None
    return command_id(request.user.org_id, request.headers.get("idempotency-key"))


async def execute(request: Request, store: EventStore, command: AnyCommand) -> CommandResult:
    return await _counted(type(command).__name__, store.execute(request.user.org_id, command, **_options(request)))


async def _counted(name: str, running) -> CommandResult:
    try:
        result = await running
    except errors.LedgerError as refused:
        count_command(name, refused.code)
        raise
    count_command(name, "accepted")
    return result


async def create_item(request: Request, store: EventStore, attributes: ItemAttributes, **extra) -> CommandResult:
    return await _counted("CreateItem", store.create_item(request.user.org_id, attributes, **extra, **_options(request)))


async def create_location(request: Request, store: EventStore, attributes: LocationAttributes) -> CommandResult:
    return await _counted("CreateLocation", store.create_location(request.user.org_id, attributes, **_options(request)))
