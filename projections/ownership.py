"""Ownership of a projection: the lease (ledger/lease.py) named after it.

The projector holds it on its dedicated connection and writes its batches there;
`ledger replay` takes it on its own connection to fence a live projector off.
"""

from __future__ import annotations

import asyncpg

from ledger import lease


def role(name: str) -> str:
    """The lease name of a projection."""
    return f"projection:{name}"


def lock_key(name: str) -> int:
    """The advisory lock key of a projection (pg_locks shows who holds it)."""
    return lease.lock_key(role(name))


async def try_own(conn: asyncpg.Connection, name: str) -> bool:
    return await lease.try_acquire(conn, role(name))


async def release(conn: asyncpg.Connection, name: str) -> None:
    await lease.release(conn, role(name))
