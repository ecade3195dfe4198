"""Connections: an asyncpg pool whose json/jsonb columns travel as raw bytes.

JSON is encoded and decoded by msgspec, straight to and from typed Structs, so the pool
hands jsonb over untouched: a parameter may be bytes (already encoded) or any value
msgspec can encode; a result is the raw JSON bytes.

A pool may bound every wait on the database (`timeout`): getting a connection (a free
one, or a new one connected), and each statement. An unreachable server then costs a
caller that long at most, never a hang; `connection_lost` says which errors mean the
database went away (or did not answer in time), as opposed to a refusal or a bug.
"""

from __future__ import annotations

import re

import asyncpg
import msgspec

_encode = msgspec.json.encode


def _encode_jsonb(value) -> bytes:
    # jsonb's binary format is a version byte (1) and the JSON text.
    return b"\x01" + (value if isinstance(value, bytes) else _encode(value))


def _decode_jsonb(data: bytes) -> bytes:
    return data[1:]


def _encode_json(value) -> bytes:
    return value if isinstance(value, bytes) else _encode(value)


async def init_connection(conn: asyncpg.Connection) -> None:
    await conn.set_type_codec(
        "jsonb", schema="pg_catalog", encoder=_encode_jsonb, decoder=_decode_jsonb, format="binary"
    )
    await conn.set_type_codec(
        "json", schema="pg_catalog", encoder=_encode_json, decoder=bytes, format="binary"
    )


async def _keep_session(conn: asyncpg.Connection) -> None:
    """Pool release without the default reset query (a round trip per release).

    asyncpg still rolls back a transaction left open. Nothing else needs resetting:
    pooled connections never LISTEN, change settings or hold session advisory locks
    (work that does uses a dedicated connection).
    """


class Pool(asyncpg.Pool):
    """asyncpg's pool, with a default bound on `acquire()`: also on the pool's own
    `fetch`/`execute`/..., which acquire without one. The bound covers connecting a new
    connection too: asyncpg's pools reconnect lazily, on the acquire that finds a
    connection closed (as every one is after the server restarted)."""

    __slots__ = ("_acquire_timeout",)

    def __init__(self, *args, acquire_timeout: float | None = None, **kwargs):
        super().__init__(*args, **kwargs)
        self._acquire_timeout = acquire_timeout

    def acquire(self, *, timeout: float | None = None):
        return super().acquire(timeout=self._acquire_timeout if timeout is None else timeout)


async def create_pool(
    dsn: str, *, min_size: int = 2, max_size: int = 10, timeout: float | None = None, **kwargs
) -> asyncpg.Pool:
    """`timeout` (seconds) bounds acquiring a connection (connecting one included) and,
    as asyncpg's `command_timeout`, each statement; None: asyncpg's defaults (no bound)."""
    if timeout is not None:
        kwargs = {"timeout": timeout, "command_timeout": timeout, **kwargs}
    # asyncpg.create_pool() with its defaults, building our subclass.
    return await Pool(
        dsn, min_size=min_size, max_size=max_size, max_queries=50_000, max_inactive_connection_lifetime=300.0,
        loop=None, connection_class=asyncpg.Connection, record_class=asyncpg.Record,
        init=init_connection, reset=_keep_session, acquire_timeout=timeout, **kwargs,
    )


# The server going away or not there yet (57P01 admin shutdown, 57P02 crash shutdown,
# 57P03 cannot connect now: starting up or recovering), or no answer at all.
_SERVER_GONE = (
    asyncpg.PostgresConnectionError,  # SQLSTATE class 08, and asyncpg's "connection was closed"
    asyncpg.AdminShutdownError,
    asyncpg.CrashShutdownError,
    asyncpg.CannotConnectNowError,
    OSError,  # refused, reset, unreachable; TimeoutError (acquire, connect, statement) is one too
)
# asyncpg's InterfaceError is mostly misuse (a bug); only these texts mean a lost connection.
_CLOSED = re.compile(r"connection is closed|pool is clos(ed|ing)")


def connection_lost(exc: BaseException) -> bool:
    """Whether `exc` means the database is unreachable or did not answer in time: a lost
    or refused connection, a server shutting down or starting up, a timeout (acquire,
    connect, statement). Such a failure is worth retrying; nothing else here is."""
    return (
        isinstance(exc, _SERVER_GONE)
        or (isinstance(exc, asyncpg.InterfaceError) and _CLOSED.search(str(exc)) is not None)
    )


async def connect(dsn: str) -> asyncpg.Connection:
    conn = await asyncpg.connect(dsn)
    await init_connection(conn)
    return conn
