"""`Idempotency-Key` on every POST: the first response is replayed, never re-executed.

An ASGI middleware inside authentication (the key is scoped to the caller's
organization). The first request claims the key in PostgreSQL, runs, and stores its
response if it succeeded; a failed request gives the key back so a corrected retry runs.
A repeat with the same key and the same request gets the stored response with
`Idempotent-Replayed: true`; with a different request, `409 idempotency_key_reused`.
A repeat that arrives while the first is still running waits for it briefly
(`409 idempotency_key_in_use` if it is still running then).
The route's guards run first, so a stored response is replayed only to a caller allowed
to make the request. A secret the response shows once (a new API key: the route's
`opt["secret_fields"]`) is not kept: its replay says what was created, with the secret null.

A request can die without giving its key back: the database restarts or fails over
under it, or its API process is killed. Its claim names the database session that made
it, and a repeat whose claimed session is gone takes the key over at once (any claim
older than ABANDONED_AFTER too). Each claim carries its own token, and storing a
response or giving the key back only touch the claim with that token, so the late end
of a request that lost its claim cannot undo the claim of the repeat that took it over.

The ledger is the second line: commands run with a command id derived from the key, so
a repeat of a command that was recorded before its request died (between commit and
storing the response, or with the answer lost on the way) appends nothing new: it finds
the recording and answers with it.
"""

from __future__ import annotations

import asyncio
import hashlib
import uuid
from collections.abc import Iterable
from datetime import timedelta

import msgspec
import structlog
from litestar.connection import ASGIConnection
from litestar.types import ASGIApp, Message, Receive, Scope, Send

from api import statements
from api.errors import IdempotencyKeyInUse, IdempotencyKeyReused, PayloadTooLarge
from api.shared import of_scope
from ledger import errors
from ledger.db import connection_lost

log = structlog.get_logger("api")

HEADER = b"idempotency-key"
MAX_KEY_LENGTH = 255
WAIT_SECONDS = 10.0  # a repeat waits this long for the first request before `in use`
ABANDONED_AFTER = timedelta(seconds=60)  # a claim whose session lives on, taken over after this
_POLL = 0.05
_KEPT_HEADERS = {"content-type", "location", "x-ledger-position"}
_NAMESPACE = uuid.UUID("5b0e2b8e-7a43-4c69-9d0e-2f0f1c8e6a11")


def command_id(org_id: int, idempotency_key: str | None) -> uuid.UUID | None:
    """The ledger command id of a request: the same for every retry with the same key."""
    return uuid.uuid5(_NAMESPACE, f"{org_id}/{idempotency_key}") if idempotency_key else None


class IdempotencyMiddleware:
    def __init__(self, app: ASGIApp, max_body_size: int) -> None:
        self.app = app
        self.max_body_size = max_body_size

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        key = dict(scope.get("headers", [])).get(HEADER) if scope["type"] == "http" else None
        if scope.get("method") != "POST" or key is None:
            await self.app(scope, receive, send)
            return
        key_text = key.decode("latin-1").strip()
        # Printable only: the key is stored as text, where a NUL fails in PostgreSQL (a 500).
        if not key_text or len(key_text) > MAX_KEY_LENGTH or not key_text.isprintable():
            raise errors.ValidationFailed(f"Idempotency-Key must be 1 to {MAX_KEY_LENGTH} printable characters")
        handler = scope["route_handler"]
        await handler.authorize_connection(ASGIConnection(scope))
        body = await self._read_body(receive)
        # A route whose body decides the scopes (a batch's lines) checks them before any
        # replay too: a stored answer goes only to a caller who could make the request.
        if (body_scopes := handler.opt.get("body_scopes")) is not None:
            body_scopes(scope, body)
        fingerprint = hashlib.sha256(
            b"\0".join([scope["method"].encode(), scope["path"].encode(), scope.get("query_string", b""), body])  # type: ignore[typeddict-item]  # HTTP scope and messages (ASGI's types are looser)
        ).digest()
        pool, org_id = of_scope(scope).pool, scope["user"].org_id

        token = uuid.uuid4()
        if (record := await self._claim(pool, org_id, key_text, fingerprint, token)) is not None:
            await _replay(record, send)
            return

        status, chunks = 0, []
        headers: Iterable[tuple[bytes, bytes]] = []

        async def capture(message: Message) -> None:
            nonlocal status, headers
            if message["type"] == "http.response.start":
                status, headers = message["status"], message.get("headers", [])
            elif message["type"] == "http.response.body":
                chunks.append(message.get("body", b""))
            await send(message)

        try:
            await self.app(scope, _replaying(body), capture)
        finally:
            try:
                if 200 <= status < 300:
                    kept = {k.decode(): v.decode() for k, v in headers if k.decode().lower() in _KEPT_HEADERS}
                    stored = _without_secrets(b"".join(chunks), scope["route_handler"].opt.get("secret_fields", ()))
                    await pool.execute(statements.COMPLETE_IDEMPOTENCY_RECORD, org_id, key_text, status, kept, stored, token)  # type: ignore[union-attr]  # the pool is set while serving
                else:
                    await pool.execute(statements.RELEASE_IDEMPOTENCY_KEY, org_id, key_text, token)  # type: ignore[union-attr]  # the pool is set while serving
            except Exception as exc:
                if not connection_lost(exc):
                    raise
                # The answer (or the error on its way out) stands. The claim stays, held by
                # a session that is gone or going: a repeat takes it over (see _claim).
                log.warning("idempotency key left claimed: the database is unavailable",
                            error=repr(exc), answered=status or None)

    async def _claim(self, pool, org_id: int, key: str, fingerprint: bytes, token: uuid.UUID):
        """Claim the key for this request (None), or the stored response to replay.

        A claim held by a running request is waited for, up to WAIT_SECONDS; one whose
        request is not running any more is taken over."""
        deadline = asyncio.get_running_loop().time() + WAIT_SECONDS
        claim = True
        while True:
            if claim and await pool.fetchval(statements.CLAIM_IDEMPOTENCY_KEY, org_id, key, fingerprint, token):
                return None
            record = await pool.fetchrow(statements.READ_IDEMPOTENCY_RECORD, org_id, key)
            claim = record is None  # the first request failed and gave the key back: claim anew
            if claim:
                continue
            if record["fingerprint"] != fingerprint:
                raise IdempotencyKeyReused()
            if record["status"] is not None:
                return record
            if await pool.fetchval(statements.RETAKE_IDEMPOTENCY_KEY, org_id, key, ABANDONED_AFTER, token, fingerprint):
                log.info("idempotency key taken over from a request that is not running any more")
                return None
            if asyncio.get_running_loop().time() > deadline:
                raise IdempotencyKeyInUse()
            await asyncio.sleep(_POLL)

    async def _read_body(self, receive: Receive) -> bytes:
        parts, size = [], 0
        while True:
            message = await receive()
            part = message.get("body", b"")
            size += len(part)  # type: ignore[arg-type]  # HTTP scope and messages (ASGI's types are looser)
            if size > self.max_body_size:
                raise PayloadTooLarge()
            parts.append(part)
            if not message.get("more_body", False):
                return b"".join(parts)  # type: ignore[arg-type]  # HTTP scope and messages (ASGI's types are looser)


def _without_secrets(body: bytes, fields) -> bytes:
    """The response as kept for replays: the secrets in its `data` (shown once) set to null."""
    if not fields:
        return body
    document = msgspec.json.decode(body)
    data = document.get("data")
    for field in fields:
        if isinstance(data, dict) and field in data:
            data[field] = None
    return msgspec.json.encode(document)


def _replaying(body: bytes) -> Receive:
    sent = False

    async def receive() -> Message:
        nonlocal sent
        if sent:
            return {"type": "http.disconnect"}
        sent = True
        return {"type": "http.request", "body": body, "more_body": False}  # type: ignore[misc, return-value]  # HTTP scope and messages (ASGI's types are looser)

    return receive  # type: ignore[return-value]  # HTTP scope and messages (ASGI's types are looser)


async def _replay(record, send: Send) -> None:
    headers = [(k.encode(), v.encode()) for k, v in msgspec.json.decode(record["headers"]).items()]
    headers.append((b"idempotent-replayed", b"true"))
    await send({"type": "http.response.start", "status": record["status"], "headers": headers})
    await send({"type": "http.response.body", "body": record["body"]})  # type: ignore[arg-type]  # HTTP scope and messages (ASGI's types are looser)
