"""`Idempotency-Key` on every POST: the first response is replayed, never re-executed.

An ASGI middleware inside authentication (the key is scoped to the caller's
organization). The first request claims the key in PostgreSQL, runs, and stores its
response if it succeeded; a failed request gives the key back so a corrected retry runs.
A repeat with the same key and the same request gets the stored response with
`Idempotent-Replayed: true`; with a different request, `409 idempotency_key_reused`.
A repeat that arrives while the first is still running waits for it briefly.
The route's guards run first, so a stored response is replayed only to a caller allowed
to make the request. A secret the response shows once (a new API key: the route's
`opt["secret_fields"]`) is not kept: its replay says what was created, with the secret null.

The ledger is the second line: commands run with a command id derived from the key, so
even a retry after a crash between commit and storing the response appends nothing new.
"""

from __future__ import annotations

import asyncio
import hashlib
import uuid
from datetime import timedelta

import msgspec
from litestar.connection import ASGIConnection
from litestar.types import ASGIApp, Message, Receive, Scope, Send

from api import statements
from api.errors import IdempotencyKeyInUse, IdempotencyKeyReused, PayloadTooLarge
from ledger import errors

HEADER = b"idempotency-key"
MAX_KEY_LENGTH = 255
WAIT_SECONDS = 10.0
ABANDONED_AFTER = timedelta(seconds=60)
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
        await scope["route_handler"].authorize_connection(ASGIConnection(scope))
        body = await self._read_body(receive)
        fingerprint = hashlib.sha256(
            b"\0".join([scope["method"].encode(), scope["path"].encode(), scope.get("query_string", b""), body])
        ).digest()
        pool, org_id = scope["app"].state.pool, scope["user"].org_id

        if not await pool.fetchval(statements.CLAIM_IDEMPOTENCY_KEY, org_id, key_text, fingerprint):
            record = await self._settled(pool, org_id, key_text)
            if record["fingerprint"] != fingerprint:
                raise IdempotencyKeyReused()
            if record["status"] is not None:
                await _replay(record, send)
                return
            if not await pool.fetchval(statements.RETAKE_IDEMPOTENCY_KEY, org_id, key_text, ABANDONED_AFTER):
                raise IdempotencyKeyInUse()

        status, headers, chunks = 0, [], []

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
            if 200 <= status < 300:
                kept = {k.decode(): v.decode() for k, v in headers if k.decode().lower() in _KEPT_HEADERS}
                stored = _without_secrets(b"".join(chunks), scope["route_handler"].opt.get("secret_fields", ()))
                await pool.execute(statements.COMPLETE_IDEMPOTENCY_RECORD, org_id, key_text, status, kept, stored)
            else:
                await pool.execute(statements.RELEASE_IDEMPOTENCY_KEY, org_id, key_text)

    async def _read_body(self, receive: Receive) -> bytes:
        parts, size = [], 0
        while True:
            message = await receive()
            part = message.get("body", b"")
            size += len(part)
            if size > self.max_body_size:
                raise PayloadTooLarge()
            parts.append(part)
            if not message.get("more_body", False):
                return b"".join(parts)

    async def _settled(self, pool, org_id: int, key: str):
        """The key's record, once the request that claimed it has finished (or given up on)."""
        deadline = asyncio.get_running_loop().time() + WAIT_SECONDS
        while True:
            record = await pool.fetchrow(statements.READ_IDEMPOTENCY_RECORD, org_id, key)
            if record is None:  # the first request failed and gave the key back: claim anew
                if await pool.fetchval(statements.CLAIM_IDEMPOTENCY_KEY, org_id, key, b""):
                    await pool.execute(statements.RELEASE_IDEMPOTENCY_KEY, org_id, key)
                continue
            if record["status"] is not None or record["age"] > ABANDONED_AFTER:
                return record
            if asyncio.get_running_loop().time() > deadline:
                return record
            await asyncio.sleep(0.05)


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
        return {"type": "http.request", "body": body, "more_body": False}

    return receive


async def _replay(record, send: Send) -> None:
    headers = [(k.encode(), v.encode()) for k, v in msgspec.json.decode(record["headers"]).items()]
    headers.append((b"idempotent-replayed", b"true"))
    await send({"type": "http.response.start", "status": record["status"], "headers": headers})
    await send({"type": "http.response.body", "body": record["body"]})
