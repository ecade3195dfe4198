"""A database that is down, not answering, or has just dropped every connection: the API
answers `503 database_unavailable` with Retry-After within its bound, never a 500 and
never a hang, and is itself again as soon as the database is."""

from __future__ import annotations

import asyncio
import contextlib
import time

import asyncpg
import pytest
from litestar.testing import AsyncTestClient

from api.app import create_app
from api.errors import translate
from api.settings import ApiSettings
from ledger import errors
from tests.support.api_client import api_client, key_for
from tests.support.processes import free_port

V1 = "/api/v1"
HEADERS = {"X-API-Key": "ldg_whatever", "Idempotency-Key": "k-1"}


@pytest.mark.parametrize("exc", [
    asyncpg.ConnectionDoesNotExistError("connection was closed in the middle of operation"),
    asyncpg.AdminShutdownError("terminating connection due to administrator command"),
    asyncpg.CrashShutdownError("terminating connection because of crash of another server process"),
    asyncpg.CannotConnectNowError("the database system is starting up"),
    asyncpg.InterfaceError("cannot perform operation: connection is closed"),
    asyncpg.InterfaceError("pool is closing"),
    ConnectionRefusedError(111, "Connect call failed"),
    ConnectionResetError(104, "Connection reset by peer"),
    TimeoutError(),
], ids=lambda e: type(e).__name__)
def test_a_lost_database_is_a_503_with_retry_after(exc):
    error, headers = translate(exc)
    assert isinstance(error, errors.DatabaseUnavailable)
    assert (error.status, error.code, error.extra["retry_after"]) == (503, "database_unavailable", 1)
    assert headers["Retry-After"] == "1"


@pytest.mark.parametrize("exc", [
    asyncpg.InterfaceError("cannot perform operation: another operation is in progress"),  # a bug
    asyncpg.QueryCanceledError("canceling statement due to user request"),
    asyncpg.UndefinedTableError("relation does not exist"),
])
def test_other_database_errors_stay_internal_errors(exc):
    error, headers = translate(exc)
    assert error.status == 500 and "Retry-After" not in headers


async def _answers(client: AsyncTestClient) -> list:
    return [
        await client.get(f"{V1}/items", headers=HEADERS),
        await client.post(f"{V1}/items/1/add", json={"location_id": 1, "quantity": 1}, headers=HEADERS),
        await client.post(f"{V1}/transfers", json={"item_id": 1, "from_location_id": 1, "to_location_id": 2, "quantity": 1},
                          headers={"X-API-Key": "ldg_whatever"}),
    ]


def _assert_unavailable(r) -> None:
    assert r.status_code == 503, r.text
    assert r.json()["error"] == "database_unavailable" and r.json()["retry_after"] == 1
    assert r.headers["Retry-After"] == "1"


async def test_a_database_that_is_down_is_a_503_with_retry_after():
    # Nothing listens there: every connection is refused at once. pool_min=0: the app starts without it.
    app = create_app(ApiSettings(database_url=f"postgresql://postgres@127.0.0.1:{free_port()}/ledger", pool_min=0))
    async with AsyncTestClient(app) as client:
        for r in await _answers(client):
            _assert_unavailable(r)
        assert (await client.get("/readyz")).status_code == 503
        assert (await client.get("/healthz")).status_code == 200


# Rounds of three requests (and of dropped sessions below): the full run, and one round for
# the fast loop (`pytest -m "not slow"`).
@pytest.mark.parametrize("rounds", [pytest.param(2, marks=pytest.mark.slow, id="full"), pytest.param(1, id="quick")])
async def test_a_database_that_does_not_answer_is_a_503_within_the_bound(rounds):
    """A server that accepts connections and then says nothing (a host gone mid-failover,
    a stopped process): each request gives up after `db_timeout`, it does not hang."""
    held: list[asyncio.StreamWriter] = []

    async def silent(_reader, writer) -> None:
        held.append(writer)

    server = await asyncio.start_server(silent, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    app = create_app(ApiSettings(database_url=f"postgresql://postgres@127.0.0.1:{port}/ledger", pool_min=0, db_timeout=0.5))
    try:
        async with AsyncTestClient(app, timeout=10) as client:
            for _ in range(rounds):
                started = time.monotonic()
                for r in await _answers(client):
                    _assert_unavailable(r)
                assert time.monotonic() - started < 3 * (0.5 + 0.3)  # three requests, each refused after 0.5 s
    finally:
        for writer in held:
            writer.close()
        server.close()
        with contextlib.suppress(Exception):
            await server.wait_closed()


@pytest.mark.parametrize("rounds", [pytest.param(3, marks=pytest.mark.slow, id="full"), pytest.param(1, id="quick")])
async def test_connections_the_server_dropped_are_replaced_without_an_error(database_url, pool, rounds):
    """Every session of the API's pool ended by the server (as in a restart): the pool
    connects again on the next requests, which all succeed."""
    async with api_client(database_url) as client:
        headers = await key_for(pool)
        r = await client.post(f"{V1}/locations", json={"location_name": "A"}, headers=headers)
        location = r.json()["data"]["id"]
        r = await client.post(f"{V1}/items", json={"part_number": "P-1", "part_name": "p", "quantity_on_hand": 5,
                                                   "location_id": location}, headers=headers)
        item = r.json()["data"]["id"]
        for n in range(rounds):
            admin = await asyncpg.connect(database_url)
            try:
                ended = [r["pid"] for r in await admin.fetch(
                    "SELECT pid, pg_terminate_backend(pid) FROM pg_stat_activity"
                    " WHERE datname = current_database() AND pid <> pg_backend_pid()"
                )]
                assert ended
                while await admin.fetchval("SELECT count(*) FROM pg_stat_activity WHERE pid = ANY($1)", ended):
                    await asyncio.sleep(0.02)  # terminating is a signal: wait until they are gone
            finally:
                await admin.close()
            await asyncio.sleep(0.1)  # the pool's sockets see the server's goodbye
            answers = [
                await client.post(f"{V1}/items/{item}/add", json={"location_id": location, "quantity": 1},
                                  headers={**headers, "Idempotency-Key": f"add-{n}"}),
                await client.get(f"{V1}/items/{item}", headers=headers),
                await client.get(f"{V1}/items", headers=headers),
            ]
            assert [r.status_code for r in answers] == [200, 200, 200], [r.text for r in answers]
        assert (await client.get(f"{V1}/items/{item}", headers=headers)).json()["data"]["item"]["quantity_on_hand"] == 5 + rounds


def test_every_503_says_when_to_come_back():
    from ledger.errors import NotCaughtUp

    error, headers = translate(NotCaughtUp(position=5))
    assert error.status == 503 and headers["Retry-After"] == "1"
