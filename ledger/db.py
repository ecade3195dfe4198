"""Connections: an asyncpg pool whose json/jsonb columns travel as raw bytes.

JSON is encoded and decoded by msgspec, straight to and from typed Structs, so the pool
hands jsonb over untouched: a parameter may be bytes (already encoded) or any value
msgspec can encode; a result is the raw JSON bytes.
"""

from __future__ import annotations

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


async def create_pool(dsn: str, *, min_size: int = 2, max_size: int = 10, **kwargs) -> asyncpg.Pool:
    return await asyncpg.create_pool(
        dsn, min_size=min_size, max_size=max_size, init=init_connection, reset=_keep_session, **kwargs
    )


async def connect(dsn: str) -> asyncpg.Connection:
    conn = await asyncpg.connect(dsn)
    await init_connection(conn)
    return conn
