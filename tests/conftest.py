"""Fixtures: a real PostgreSQL and a real NATS, and a fresh database for every test.

The servers come from `LEDGER_TEST_DATABASE_URL` / `LEDGER_TEST_NATS_URL` when given,
otherwise from the embedded servers (tests/support/fixtures_servers.py). Every test gets
its own database, cloned from a migrated template, so no test sees another's events (and
advisory locks, which are per database, do not collide).
"""

from __future__ import annotations

import os

import asyncpg
import pytest
import pytest_asyncio

from ledger.cli import SCHEMA_PACKAGES
from ledger.db import create_pool
from ledger.keys import ensure_organization
from ledger.migrate import migrate_dsn
from ledger.store import EventStore

# Before any helper is imported: their asserts (assert_envelope, ...) explain themselves too.
pytest.register_assert_rewrite("tests.support")

pytest_plugins = ["tests.support.fixtures_servers"]

# After the registration above.
from tests.support.databases import Clones, with_database  # noqa: E402 - after register_assert_rewrite


@pytest_asyncio.fixture(scope="session", loop_scope="session")
async def template_database(postgres_url: str):
    name = f"ledger_template_{os.getpid()}"
    admin = await asyncpg.connect(postgres_url)
    try:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}"')
        await admin.execute(f'CREATE DATABASE "{name}"')
        await migrate_dsn(with_database(postgres_url, name), SCHEMA_PACKAGES)
        yield name
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await admin.close()


@pytest_asyncio.fixture(scope="session", loop_scope="session")
async def clones(postgres_url: str, template_database: str):
    """The per-test databases, made ahead and dropped behind (tests/support/databases.py)."""
    async with asyncpg.create_pool(postgres_url, min_size=1, max_size=3) as admin:
        made = Clones(admin, postgres_url, template_database)
        try:
            yield made
        finally:
            await made.close()


@pytest_asyncio.fixture(loop_scope="session")
async def database_url(clones: Clones):
    url = await clones.take()
    yield url
    clones.give_back(url)


@pytest_asyncio.fixture(loop_scope="session")
async def pool(database_url: str):
    pool = await create_pool(database_url, min_size=1, max_size=40)
    yield pool
    await pool.close()


@pytest_asyncio.fixture(loop_scope="session")
async def store(pool) -> EventStore:
    return EventStore(pool)


@pytest_asyncio.fixture(loop_scope="session")
async def org_id(pool) -> int:
    return await ensure_organization(pool, "acme")


class PrivateNats:
    """A nats-server of the test's own (the LEDGER stream is per server), restartable."""

    def __init__(self, data_dir):
        from ledger.embedded import start_nats

        self._start, self.data_dir = start_nats, data_dir
        self.server = start_nats(data_dir)
        self.url = self.server.url

    def stop(self) -> None:
        self.server.stop()

    def restart(self) -> None:
        self.server = self._start(self.data_dir)
        assert self.server.url == self.url  # same port: clients reconnect to it


@pytest.fixture
def private_nats():
    from tests.support.fixtures_servers import scratch_data_dir

    with scratch_data_dir("ledger-test-nats-") as data_dir:
        nats_server = PrivateNats(data_dir)
        try:
            yield nats_server
        finally:
            nats_server.stop()


@pytest.hookimpl(tryfirst=True)
def pytest_cmdline_main(config):
    """The fast loop (`pytest -m "not slow"`) runs on every core with pytest-xdist: its
    tests wait on servers as much as they compute, and every test has its own database.
    Runs before xdist's own hook, which reads the option; `-n N` on the command line wins."""
    fast_loop = config.option.markexpr.strip() == "not slow"
    if fast_loop and config.pluginmanager.has_plugin("xdist") and config.option.numprocesses is None \
            and not hasattr(config, "workerinput") and not config.option.collectonly:
        config.option.numprocesses = "auto"


@pytest.hookimpl(hookwrapper=True, tryfirst=True)
def pytest_pycollect_makeitem(collector, name, obj):
    """In the fast loop (`pytest -m "not slow"`) a slow schemathesis test is not built at
    all: building its items generates every operation's coverage-phase cases (seconds on
    every run), only for all of them to be deselected."""
    outcome = yield
    if collector.config.option.markexpr.strip() != "not slow":
        return
    if any(mark.name == "slow" for mark in getattr(obj, "pytestmark", [])):
        from schemathesis.pytest.plugin import SchemathesisCase

        if isinstance(outcome.get_result(), SchemathesisCase):
            outcome.force_result([])
