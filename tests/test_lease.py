"""Leases (ledger/lease.py): one owner per role, and a standby takes over from an owner
whose connection went silent, within the keepalive time the lease connection sets."""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import subprocess
import time
from urllib.parse import urlsplit

import asyncpg
import pytest

from consumers.relay import Relay
from consumers.webhooks.emitter import Emitter
from consumers.webhooks.settings import WebhookSettings
from ledger.lease import KEEPALIVES, Keepalives, LeaseConnection, lock_key
from projections import Projector, ownership, read_models


async def test_one_session_holds_a_lease_and_another_gets_it_once_given_back(database_url):
    first, second = LeaseConnection(database_url, "test first"), LeaseConnection(database_url, "test second")
    await first.open()
    await second.open()
    try:
        assert await first.try_acquire("test:role")
        assert not await second.try_acquire("test:role")
        assert await second.try_acquire("test:other role")  # one lock per role
        await first.release("test:role")
        assert await second.try_acquire("test:role")
        assert second.held == {"test:role", "test:other role"}
    finally:
        await first.close()
        await second.close()


async def test_a_lease_is_free_as_soon_as_its_owners_session_ends(database_url, pool):
    owner, standby = LeaseConnection(database_url, "test owner"), LeaseConnection(database_url, "test standby")
    await owner.open()
    await standby.open()
    try:
        assert await owner.try_acquire("test:role")
        assert await pool.fetchval("SELECT pg_terminate_backend($1)", owner.backend_pid)
        stopped = asyncio.Event()

        async def sleep(seconds: float) -> bool:
            await asyncio.sleep(seconds)
            return stopped.is_set()

        async with asyncio.timeout(5):
            assert await standby.acquire("test:role", every=0.05, sleep=sleep)
    finally:
        await owner.close()  # its session is gone: close() drops it without waiting
        await standby.close()


def test_every_role_has_its_own_64_bit_lock_key():
    keys = {lock_key(role) for role in ("relay:ledger", "webhooks.emitter:webhooks", "projection:items")}
    assert len(keys) == 3 and all(-(2**63) <= k < 2**63 for k in keys)
    assert lock_key("relay:ledger") == lock_key("relay:ledger")


def test_the_default_keepalives_drop_a_silent_owner_within_25_seconds():
    assert (KEEPALIVES.idle, KEEPALIVES.interval, KEEPALIVES.count) == (10, 5, 3)
    assert KEEPALIVES.drop_after == 25


# --- a silent owner -------------------------------------------------------------------


def _iptables_usable() -> str | None:
    """Why iptables cannot be used here, or None."""
    if shutil.which("iptables") is None:
        return "iptables is not installed (apt-get install -y iptables)"
    probe = subprocess.run(["iptables", "-L", "INPUT", "-n"], capture_output=True, text=True)
    if probe.returncode != 0:
        return f"iptables cannot run here (needs CAP_NET_ADMIN): {probe.stderr.strip()}"
    return None


@contextlib.contextmanager
def silenced(client_port: int, server_port: int):
    """Drop every packet of one loopback TCP flow, both ways: to both ends the peer has
    gone silent (no FIN, no RST), as when its host vanishes or a network partition starts."""
    rules = [
        ["INPUT", "-i", "lo", "-p", "tcp", "--sport", str(client_port), "--dport", str(server_port), "-j", "DROP"],
        ["INPUT", "-i", "lo", "-p", "tcp", "--sport", str(server_port), "--dport", str(client_port), "-j", "DROP"],
    ]
    inserted = []
    try:
        for rule in rules:
            subprocess.run(["iptables", "-I", *rule], check=True, capture_output=True)
            inserted.append(rule)
        yield
    finally:
        for rule in inserted:
            subprocess.run(["iptables", "-D", *rule], capture_output=True)


@pytest.mark.slow  # each case waits out the keepalive time: 3 to 5 s
@pytest.mark.skipif(_iptables_usable() is not None, reason=str(_iptables_usable()))
@pytest.mark.parametrize("silent", ["while idle", "while the server answers it"])
async def test_a_standby_takes_over_from_an_owner_whose_connection_went_silent_within_the_keepalive_time(
    database_url, pool, silent
):
    keepalives = Keepalives(idle=1, interval=1, count=2)  # a silent owner is dropped after 3 s
    claim_interval, slack = 0.2, 3.0
    owner = LeaseConnection(database_url, "test silent owner", keepalives=keepalives)
    standby = LeaseConnection(database_url, "test standby")
    await owner.open()
    await standby.open()
    answer = None
    try:
        assert await owner.try_acquire("test:role")
        client_port = await pool.fetchval("SELECT client_port FROM pg_stat_activity WHERE pid = $1", owner.backend_pid)
        server_port = urlsplit(database_url).port or 5432
        await asyncio.sleep(0.5)  # every byte so far acknowledged (loopback delays ACKs up to 200 ms)
        if silent == "while idle":
            pass  # only keepalive probes can tell
        else:  # the answer goes out after the silence began, and is never acknowledged
            answer = asyncio.create_task(owner.conn.fetchval("SELECT pg_sleep(0.3)"))
            await asyncio.sleep(0.1)
        with silenced(client_port, server_port):
            silent_since = time.monotonic()
            # The server cannot tell silence from a slow owner at once: the lease stays taken...
            assert not await standby.try_acquire("test:role")
            # ...until the owner's session has been silent for keepalives.drop_after.
            while not await standby.try_acquire("test:role"):
                elapsed = time.monotonic() - silent_since
                assert elapsed < keepalives.drop_after + claim_interval + slack, \
                    f"no takeover after {elapsed:.1f}s of silence"
                await asyncio.sleep(claim_interval)
            took_over = time.monotonic() - silent_since
        print(f"\nsilent {silent}: the standby took the lease over {took_over:.2f}s after the owner went silent "
              f"(keepalives drop it after {keepalives.drop_after}s)")
        assert took_over >= keepalives.idle  # not before the server could know
        # The owner's session was ended by the server, not by anyone else.
        assert await pool.fetchval("SELECT count(*) FROM pg_stat_activity WHERE pid = $1", owner.backend_pid) == 0
    finally:
        if answer is not None:
            answer.cancel()
        if owner.conn is not None:
            owner.conn.terminate()  # its socket is half dead: do not wait on it
        await standby.close()


# --- every role holds its lease through the helper ----------------------------------------


async def _show_keepalives(conn: asyncpg.Connection) -> tuple[int, ...]:
    """The keepalive settings of a role's lease session, asked on that session while the
    role stands by (between two of its claim attempts)."""
    names = ("tcp_keepalives_idle", "tcp_keepalives_interval", "tcp_keepalives_count", "tcp_user_timeout")
    for _ in range(100):
        try:
            return tuple([int(await conn.fetchval(f"SHOW {name}")) for name in names])
        except asyncpg.InterfaceError:  # the role's own claim attempt is in flight
            await asyncio.sleep(0.02)
    raise AssertionError("the role's lease connection never fell idle")


async def test_each_single_owner_role_holds_its_lease_on_a_connection_with_the_helpers_keepalives(
    database_url, pool, nats_url
):
    keepalives = Keepalives(idle=7, interval=3, count=4)  # not what any server is configured with
    projector = Projector(pool, database_url, read_models(), claim_interval=30, keepalives=keepalives)
    relay = Relay(database_url, nats_url, claim_interval=30, keepalives=keepalives)
    emitter = Emitter(database_url, nats_url, WebhookSettings(), claim_interval=30, keepalives=keepalives)
    roles = {
        "projector": (projector, [ownership.role(m.name) for m in read_models()]),
        "relay": (relay, [relay.lease_role]),
        "webhook emitter": (emitter, [emitter.lease_role]),
    }
    # The test owns every role's lease, so the roles stand by on their lease connections.
    holder = LeaseConnection(database_url, "test holder")
    await holder.open()
    try:
        for _, leases in roles.values():
            for role in leases:
                assert await holder.try_acquire(role)
        for role, _ in roles.values():
            role.start()
        for name, (role, _) in roles.items():
            async with asyncio.timeout(10):
                while role.lease.conn is None:
                    await asyncio.sleep(0.02)
            assert role.lease.held == set(), name
            shown = await _show_keepalives(role.lease.conn)
            assert shown == (7, 3, 4, 19_000), f"the {name}'s lease session has keepalives {shown}"
            application = await pool.fetchval(
                "SELECT application_name FROM pg_stat_activity WHERE pid = $1", role.lease.backend_pid)
            assert application.startswith("ledger "), name
        assert Relay(database_url, nats_url).lease.keepalives == KEEPALIVES  # the default, for every role
    finally:
        for role, _ in roles.values():
            await role.stop()
        await holder.close()
