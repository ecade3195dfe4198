"""Leases: exactly one owner of a single-owner role across any number of processes.

The roles are the projector's projections, the relay and the webhook emitter. Each is
owned through a lease: a PostgreSQL session advisory lock keyed by the role's name
(`lock_key`), held on a connection of its own (a pooled connection would carry the lock
back into the pool, whose release does not reset session state). The owner does its
writes on that same connection, so an owner that has been fenced off cannot write
either: when its session ends, its open transaction is rolled back and its locks are
gone, in that order, before a standby can take over. Standbys try every
`claim_interval` (`LeaseConnection.acquire`).

A session ends at once when its process dies (the kernel closes the socket), but not
when the owner's host vanishes or the network between them goes silent: the server then
learns of it only from TCP. Every lease connection tells the server in code, whatever
its own configuration says (`Keepalives`), to drop the session after `idle + interval *
count` seconds of silence (25 s by default), and a standby takes over within that plus
one `claim_interval` (tests/test_lease.py measures both cases):
- an idle owner: the server's keepalive probes go unanswered (tcp_keepalives_*);
- an owner that went silent while the server was sending it something (a busy owner,
  almost always): keepalives are not sent while data is unacknowledged, and the kernel
  would retransmit for about 15 minutes (tcp_retries2); tcp_user_timeout bounds how long
  sent data may stay unacknowledged to the same time.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Awaitable, Callable

import asyncpg
import msgspec

from ledger import statements
from ledger.db import init_connection


class Keepalives(msgspec.Struct, frozen=True, kw_only=True):
    """TCP keepalives the server sends on a lease connection (PostgreSQL's tcp_keepalives_*)."""

    idle: int = 10  # seconds of silence before the first probe
    interval: int = 5  # seconds between unanswered probes
    count: int = 3  # unanswered probes after which the server drops the connection

    @property
    def drop_after(self) -> int:
        """Seconds of silence after which the server ends the session and frees its leases."""
        return self.idle + self.interval * self.count

    def server_settings(self) -> dict[str, str]:
        return {
            "tcp_keepalives_idle": str(self.idle),
            "tcp_keepalives_interval": str(self.interval),
            "tcp_keepalives_count": str(self.count),
            # Milliseconds sent data may stay unacknowledged (Linux; with keepalives on it
            # also caps their wait): the silent owner's bound for a busy connection too.
            "tcp_user_timeout": str(self.drop_after * 1000),
        }


KEEPALIVES = Keepalives()


def lock_key(role: str) -> int:
    """The advisory lock key of a role: 64 bits of blake2b of "lease:<role>".

    One derivation for every role. Changing it (as moving the roles onto this module
    did: the projections hashed "projection:<name>", the relay and the emitter used
    hashtextextended of other prefixes) means that during a rolling upgrade an old and a
    new process of the same role take different locks and do not exclude each other:
    stop every old projector, relay and webhook worker before starting new ones.
    """
    return int.from_bytes(hashlib.blake2b(f"lease:{role}".encode(), digest_size=8).digest(), "big", signed=True)


async def connect(
    dsn: str, application_name: str, keepalives: Keepalives = KEEPALIVES, settings: dict[str, str] | None = None
) -> asyncpg.Connection:
    """A dedicated connection for holding leases (and doing the owner's writes);
    `settings`: the role's own session settings."""
    conn = await asyncpg.connect(
        dsn, server_settings={"application_name": application_name, **keepalives.server_settings(), **(settings or {})}
    )
    try:
        await init_connection(conn)
    except BaseException:
        conn.terminate()
        raise
    return conn


async def try_acquire(conn: asyncpg.Connection, role: str) -> bool:
    """Take the role's lease on `conn` if no other session holds it; whether `conn` holds it now."""
    return await conn.fetchval(statements.TRY_LEASE, lock_key(role))


async def release(conn: asyncpg.Connection, role: str) -> bool:
    """Give the lease back; False if `conn` did not hold it."""
    return await conn.fetchval(statements.RELEASE_LEASE, lock_key(role))


class LeaseConnection:
    """One dedicated connection and the leases it holds (one role's, or several projections')."""

    def __init__(
        self, dsn: str, application_name: str, *, keepalives: Keepalives = KEEPALIVES, settings: dict[str, str] | None = None
    ):
        self.dsn, self.application_name, self.keepalives, self.settings = dsn, application_name, keepalives, settings
        self.conn: asyncpg.Connection | None = None
        self.held: set[str] = set()

    @property
    def backend_pid(self) -> int | None:
        """The server process of the connection (the session that holds the locks)."""
        return self.conn.get_server_pid() if self.conn is not None and not self.conn.is_closed() else None

    async def open(self) -> asyncpg.Connection:
        self.held = set()
        self.conn = await connect(self.dsn, self.application_name, self.keepalives, self.settings)
        return self.conn

    async def try_acquire(self, role: str) -> bool:
        if role in self.held:
            return True  # advisory locks count: taking one twice would need two releases
        if await try_acquire(self.conn, role):
            self.held.add(role)
            return True
        return False

    async def acquire(self, role: str, *, every: float, sleep: Callable[[float], Awaitable[bool]]) -> bool:
        """The standby loop: try for the lease every `every` seconds until it is held (True)
        or `sleep` (a BackgroundLoop's `_sleep`) says the caller is stopping (False)."""
        while not await self.try_acquire(role):
            if await sleep(every):
                return False
        return True

    async def release(self, role: str) -> None:
        self.held.discard(role)
        await release(self.conn, role)

    async def close(self, timeout: float = 2.0) -> None:
        """Give every lease back and close; if the session is gone, going or silent (it
        does not answer within `timeout`), drop it: its locks go with it."""
        conn, self.conn = self.conn, None
        held, self.held = self.held, set()
        if conn is None:
            return
        try:
            async with asyncio.timeout(timeout):
                for role in sorted(held):
                    await release(conn, role)
                await conn.close()
        except Exception:  # noqa: BLE001 - a broken or silent session: drop it without waiting
            conn.terminate()
        except BaseException:  # cancelled on the way: never leave the session (and its locks) behind
            conn.terminate()
            raise
