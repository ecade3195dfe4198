"""Ownership of a projection: one active owner across any number of processes.

The owner holds a session advisory lock keyed by the projection's name, on its own
dedicated connection (a pooled connection would carry the lock back into the pool, whose
release does not reset session state). The projector writes its batches on that same
connection, so a fenced-off owner cannot write either: when its session dies, its open
transaction is rolled back and its locks are gone, in that order, before anyone else can
take over.
"""

from __future__ import annotations

import hashlib

import asyncpg

from projections import statements


def lock_key(name: str) -> int:
    """The advisory lock key of a projection: 64 bits of a hash of its name."""
    return int.from_bytes(hashlib.blake2b(f"projection:{name}".encode(), digest_size=8).digest(), "big", signed=True)


async def try_own(conn: asyncpg.Connection, name: str) -> bool:
    return await conn.fetchval(statements.TRY_PROJECTION_LOCK, lock_key(name))


async def release(conn: asyncpg.Connection, name: str) -> None:
    await conn.fetchval(statements.RELEASE_PROJECTION_LOCK, lock_key(name))
