"""The relay: every event of the ledger, in position order, into the JetStream stream LEDGER.

PostgreSQL is the source of truth and JetStream a copy. The relay reads the ledger
through the never-skip reader, publishes a batch pipelined (the messages leave in order
on one connection, so no stream is reordered), waits for every publish ack, and only then
moves its checkpoint. If it dies between the acks and the checkpoint it publishes the
batch again; JetStream drops the repeats by `Nats-Msg-Id` (the event id). While NATS is
unreachable, commands go on; the relay retries with backoff and catches up in order.

One relay is active per name across processes: it holds the lease "relay:<name>"
(ledger/lease.py) on its own connection, and a standby takes over when that session ends.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Sequence

import asyncpg
import nats
import structlog
from nats.js.api import StorageType, StreamConfig
from nats.js.errors import BadRequestError

from consumers import statements
from consumers.wire import STREAM, SUBJECTS, message, nats_servers
from ledger.background import BackgroundLoop
from ledger.db import create_pool
from ledger.lease import KEEPALIVES, Keepalives, LeaseConnection
from ledger.reader import LedgerReader

log = structlog.get_logger("relay")


class PublishFailed(Exception):
    """JetStream did not acknowledge every message of a batch in time."""


class LostOwnership(Exception):
    """The checkpoint moved under us: another relay owns this name now."""


async def ensure_stream(js, *, replicas: int = 1, duplicate_window: float = 120.0) -> None:
    """Create the LEDGER stream, or bring an existing one to this configuration."""
    config = StreamConfig(
        name=STREAM, subjects=[SUBJECTS], storage=StorageType.FILE, num_replicas=replicas,
        duplicate_window=duplicate_window,
    )
    try:
        await js.add_stream(config)
    except BadRequestError:  # it exists with another configuration
        await js.update_stream(config)


class Relay(BackgroundLoop):
    def __init__(
        self,
        dsn: str,
        nats_url: str,
        *,
        name: str = "ledger",
        replicas: int = 1,
        batch_size: int = 1000,
        ack_timeout: float = 5.0,
        fast_poll: float = 0.005,
        idle_poll: float = 0.05,
        claim_interval: float = 0.5,
        keepalives: Keepalives = KEEPALIVES,  # a silent owner loses the lease after keepalives.drop_after
    ):
        self.dsn, self.nats_url, self.name, self.replicas = dsn, nats_url, name, replicas
        self.lease_role = f"relay:{name}"  # the lease this relay owns by
        self.lease = LeaseConnection(dsn, "ledger relay", keepalives=keepalives)
        self.batch_size, self.ack_timeout = batch_size, ack_timeout
        self.fast_poll, self.idle_poll, self.claim_interval = fast_poll, idle_poll, claim_interval
        self.owner = False
        self.position: int | None = None  # published and acknowledged up to here
        self.published = 0  # messages acknowledged since start
        super().__init__(f"relay-{self.name}")

    async def run(self) -> None:
        transient = (OSError, asyncpg.PostgresError, asyncpg.InterfaceError, nats.errors.Error, TimeoutError,
                     PublishFailed, LostOwnership)
        await self._retrying(self._run_connected, transient, log, "relay", position=lambda: self.position)

    async def _run_connected(self) -> None:
        async with contextlib.AsyncExitStack() as stack:
            conn = await self.lease.open()
            stack.push_async_callback(self.lease.close)  # gives the lease back
            self.owner = False
            if not await self.lease.acquire(self.lease_role, every=self.claim_interval, sleep=self._sleep):
                return
            self.owner = True
            stack.callback(setattr, self, "owner", False)
            nc = await nats.connect(nats_servers(self.nats_url), connect_timeout=2, max_reconnect_attempts=-1, name=f"relay-{self.name}")
            stack.push_async_callback(nc.close)
            js = nc.jetstream(publish_async_max_pending=self.batch_size * 2)
            await ensure_stream(js, replicas=self.replicas)
            pool = await create_pool(self.dsn, min_size=1, max_size=2)
            stack.push_async_callback(pool.close)
            self.position = await conn.fetchval(statements.CLAIM_RELAY_CHECKPOINT, self.name)
            log.info("relay took ownership", name=self.name, position=self.position)
            reader = LedgerReader(pool, after=self.position, batch_size=self.batch_size)
            quiet = 0
            while self._running():
                rows = await reader.poll_rows()
                if rows:
                    await self._publish(conn, js, rows)
                    quiet = 0
                quiet = 0 if rows or reader.held_back else quiet + 1
                if len(rows) < self.batch_size:
                    await self._sleep(self.fast_poll if quiet < 20 else self.idle_poll)

    async def _publish(self, conn: asyncpg.Connection, js, rows: Sequence[asyncpg.Record]) -> None:
        acks = [await js.publish_async(subject, payload, headers=headers) for subject, payload, headers in map(message, rows)]
        try:
            async with asyncio.timeout(self.ack_timeout):
                results = await asyncio.gather(*acks, return_exceptions=True)
        except TimeoutError:
            for ack in acks:
                ack.cancel()
            raise PublishFailed(f"no acknowledgement within {self.ack_timeout}s") from None
        acknowledged = next((n for n, r in enumerate(results) if isinstance(r, BaseException)), len(rows))
        if acknowledged:
            await self._checkpoint(conn, rows[acknowledged - 1]["position"])
            self.published += acknowledged
        if acknowledged < len(rows):
            raise PublishFailed(f"JetStream refused a message: {results[acknowledged]!r}")

    async def _checkpoint(self, conn: asyncpg.Connection, position: int) -> None:
        if await conn.fetchval(statements.SAVE_RELAY_CHECKPOINT, self.name, self.position, position) is None:
            raise LostOwnership(f"relay checkpoint {self.name} moved under its owner")
        self.position = position


async def relay_status(db) -> list[dict]:
    """Where every relay stands: its checkpoint, the ledger head, the lag in positions."""
    rows = await db.fetch(statements.READ_RELAY_STATUS)
    return [{**dict(r), "lag": max(r["head"] - r["position"], 0)} for r in rows]


async def reset_relay(db, position: int, name: str = "ledger") -> None:
    """Make the relay publish again from just after `position` (`ledger relay --from`)."""
    await db.execute(statements.RESET_RELAY_CHECKPOINT, name, position)
