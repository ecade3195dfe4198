"""The `ledger` command on the embedded default, as a newcomer runs it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid

import asyncpg
import pytest
import pytest_asyncio

from ledger.cli import SCHEMA_PACKAGES
from ledger.embedded import start_postgres
from ledger.migrate import migrations
from tests.conftest import with_database
from tests.support.fixtures_servers import scratch_data_dir


def ledger(data_dir, *args: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith("LEDGER_")}
    env["LEDGER_DATA_DIR"] = str(data_dir)
    return subprocess.run(
        [sys.executable, "-m", "ledger.cli", *args], env=env, capture_output=True, text=True, timeout=120
    )


@pytest.fixture(scope="module")
def data_dir():
    with scratch_data_dir("ledger-cli-") as path:
        yield path
        ledger_stop = path / "postgres" / "postmaster.pid"
        assert not ledger_stop.exists(), "a one-shot command left the embedded PostgreSQL running"


# Each `ledger` call below starts and stops the embedded PostgreSQL (a second or more): the
# tests on the module's data dir are slow. In the fast loop, the embedded default is kept by
# test_keys_create_works_on_a_brand_new_embedded_data_dir, the keys commands by
# test_keys_on_a_database_url_are_refused_created_listed_and_revoked.
@pytest.mark.slow
def test_migrate_then_keys_on_the_embedded_default(data_dir):
    migrated = ledger(data_dir, "migrate")
    assert migrated.returncode == 0, migrated.stderr
    again = ledger(data_dir, "migrate")
    assert again.returncode == 0 and "up to date" in again.stdout

    created = ledger(data_dir, "keys", "create", "--org", "acme", "--scopes", "inventory:read", "--json")
    assert created.returncode == 0, created.stderr
    key = json.loads(created.stdout.strip().splitlines()[-1])
    assert key["key"].startswith("ldg_") and key["scopes"] == ["inventory:read"]
    assert isinstance(key["key_id"], int) and isinstance(key["org_id"], int)

    listed = ledger(data_dir, "keys", "list", "--json")
    assert listed.returncode == 0
    rows = json.loads(listed.stdout)
    assert [r["key_id"] for r in rows] == [key["key_id"]]
    assert key["key"] not in listed.stdout  # only the prefix is ever shown again

    assert ledger(data_dir, "keys", "revoke", str(key["key_id"])).returncode == 0
    assert json.loads(ledger(data_dir, "keys", "list", "--json").stdout)[0]["revoked_at"] is not None


@pytest.mark.slow
def test_unknown_scopes_are_refused_with_a_message(data_dir):
    refused = ledger(data_dir, "keys", "create", "--org", "acme", "--scopes", "inventory:everything")
    assert refused.returncode != 0 and "unknown or missing scopes" in refused.stderr


@pytest.mark.slow
def test_verify_reports_a_sound_ledger(data_dir):
    verified = ledger(data_dir, "verify")
    assert verified.returncode == 0, verified.stdout + verified.stderr
    assert "all sound" in verified.stdout


def test_keys_create_works_on_a_brand_new_embedded_data_dir():
    with scratch_data_dir("ledger-cli-new-") as fresh:  # no `ledger serve`, no `ledger migrate` ever run
        created = ledger(fresh, "keys", "create", "--org", "demo", "--scopes", "inventory:read", "--json")
        assert created.returncode == 0, created.stderr
        assert json.loads(created.stdout.strip().splitlines()[-1])["key"].startswith("ldg_")


# -- an embedded server that cannot start ------------------------------------------------


def error_lines(result: subprocess.CompletedProcess) -> list[str]:
    assert "Traceback" not in result.stderr, result.stderr
    return [line for line in result.stderr.splitlines() if line.strip()]


@pytest.mark.parametrize("command", [("keys", "list"), ("tail",)], ids=["postgres", "nats"])
def test_a_data_dir_that_is_a_file_is_one_line_saying_why_and_what_to_do(tmp_path, command):
    not_a_dir = tmp_path / "data"
    not_a_dir.write_text("")
    refused = ledger(not_a_dir, *command)
    assert refused.returncode == 1
    line, = error_lines(refused)
    server, variable = ("PostgreSQL", "LEDGER_DATABASE_URL") if command[0] == "keys" else ("nats-server", "LEDGER_NATS_URL")
    assert line.startswith(f"Error: the embedded {server} could not start in {not_a_dir}: it is not a directory.")
    assert f"Set {variable}" in line


def test_a_cluster_postgresql_refuses_to_start_is_one_line_with_its_reason_and_log():
    with scratch_data_dir("ledger-cli-broken-") as broken:
        start_postgres(broken, durable=False).stop()
        cluster = (broken / "postgres").resolve()
        (cluster / "PG_VERSION").write_text("9.6\n")  # as if made by another major version
        refused = ledger(broken, "keys", "list")
        assert refused.returncode == 1
        line, = error_lines(refused)
        assert line.startswith(f"Error: the embedded PostgreSQL could not start in {broken}: ")
        assert "FATAL:" in line and "incompatible with server" in line
        assert f"(log: {cluster / 'server.log'})" in line and "Set LEDGER_DATABASE_URL" in line


# -- LEDGER_DATABASE_URL: never migrated by a one-shot command ---------------------------

# Every command that reads or writes the database but is neither `serve` nor `migrate`.
ONE_SHOT = {
    "export": ("export", "--format", "ndjson"),
    "verify": ("verify",),
    "keys list": ("keys", "list"),
    "keys create": ("keys", "create", "--org", "acme", "--scopes", "inventory:read"),
    "relay": ("relay", "--from", "0"),
    "replay": ("replay",),
}


def one_shot_commands(quick: str) -> list:
    """Every one-shot command; each is a process of its own (~1 s), so in the fast loop
    (`pytest -m "not slow"`) only `quick`."""
    return [pytest.param(command, id=name, marks=() if name == quick else pytest.mark.slow)
            for name, command in ONE_SHOT.items()]


def ledger_on(url: str, tmp_path, *args: str) -> subprocess.CompletedProcess:
    """The command against LEDGER_DATABASE_URL; LEDGER_DATA_DIR names a directory that
    must stay absent (no embedded server is started)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("LEDGER_")}
    env.update(LEDGER_DATABASE_URL=url, LEDGER_DATA_DIR=str(tmp_path / "never-made"))
    return subprocess.run([sys.executable, "-m", "ledger.cli", *args], env=env, capture_output=True, text=True,
                          timeout=120)


async def schema_of(url: str) -> tuple[list[str], list[tuple]]:
    conn = await asyncpg.connect(url)
    try:
        tables = await conn.fetch("SELECT schemaname || '.' || tablename AS t FROM pg_tables "
                                  "WHERE schemaname NOT IN ('pg_catalog', 'information_schema') ORDER BY 1")
        applied = []
        if await conn.fetchval("SELECT to_regclass('schema_migrations')") is not None:
            applied = [tuple(r) for r in await conn.fetch("SELECT package, number FROM schema_migrations ORDER BY 1, 2")]
        return [r["t"] for r in tables], applied
    finally:
        await conn.close()


@pytest_asyncio.fixture(loop_scope="session")
async def empty_database_url(postgres_url: str):
    name = f"ledger_cli_empty_{uuid.uuid4().hex[:12]}"
    admin = await asyncpg.connect(postgres_url)
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
        yield with_database(postgres_url, name)
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await admin.close()


@pytest.mark.parametrize("command", one_shot_commands(quick="keys list"))
async def test_a_one_shot_command_refuses_an_empty_database_and_creates_nothing(empty_database_url, tmp_path, command):
    refused = ledger_on(empty_database_url, tmp_path, *command)
    assert refused.returncode == 1
    line, = error_lines(refused)
    shipped = sum(len(migrations(p)) for p in SCHEMA_PACKAGES)
    assert line.startswith(f"Error: the database schema is behind this version of ledger (missing {shipped} "
                           "migrations: ledger/001_")
    assert line.endswith("run `ledger migrate`")
    assert await schema_of(empty_database_url) == ([], [])
    assert not (tmp_path / "never-made").exists()


@pytest.mark.parametrize("command", one_shot_commands(quick="replay"))
async def test_a_one_shot_command_refuses_a_schema_ahead_of_it_and_changes_nothing(database_url, tmp_path, command):
    conn = await asyncpg.connect(database_url)
    await conn.execute("INSERT INTO schema_migrations (package, number, name) VALUES ('ledger', 999, '999_later.sql')")
    await conn.close()
    before = await schema_of(database_url)

    refused = ledger_on(database_url, tmp_path, *command)
    assert refused.returncode == 1
    assert error_lines(refused) == ["Error: the database schema is ahead of this version of ledger "
                                    "(unknown ledger/999_later.sql): upgrade ledger"]
    assert await schema_of(database_url) == before


async def test_a_missing_migration_is_named_in_the_refusal(database_url, tmp_path):
    *_, (package, number, name) = [(p, n, f) for p in SCHEMA_PACKAGES for n, f, _ in migrations(p)]
    conn = await asyncpg.connect(database_url)
    await conn.execute("DELETE FROM schema_migrations WHERE package = $1 AND number = $2", package, number)
    await conn.close()
    refused = ledger_on(database_url, tmp_path, "keys", "list")
    assert refused.returncode == 1
    assert error_lines(refused) == [f"Error: the database schema is behind this version of ledger "
                                    f"(missing {package}/{name}); run `ledger migrate`"]


async def test_keys_on_a_database_url_are_refused_created_listed_and_revoked(database_url, tmp_path):
    """The keys commands of the embedded tests above (slow), on LEDGER_DATABASE_URL."""
    refused = ledger_on(database_url, tmp_path, "keys", "create", "--org", "acme", "--scopes", "inventory:everything")
    assert refused.returncode != 0 and "unknown or missing scopes" in refused.stderr
    created = ledger_on(database_url, tmp_path, "keys", "create", "--org", "acme", "--scopes", "inventory:read", "--json")
    assert created.returncode == 0, created.stderr
    key = json.loads(created.stdout.strip().splitlines()[-1])
    assert ledger_on(database_url, tmp_path, "keys", "revoke", str(key["key_id"])).returncode == 0
    listed = ledger_on(database_url, tmp_path, "keys", "list", "--json")
    assert listed.returncode == 0, listed.stderr
    [row] = json.loads(listed.stdout)
    assert row["key_id"] == key["key_id"] and row["revoked_at"] is not None
    assert key["key"] not in listed.stdout  # only the prefix is ever shown again


async def test_after_ledger_migrate_the_one_shot_commands_run(empty_database_url, tmp_path):
    assert ledger_on(empty_database_url, tmp_path, *ONE_SHOT["keys list"]).returncode == 1
    migrated = ledger_on(empty_database_url, tmp_path, "migrate")
    assert migrated.returncode == 0 and migrated.stdout.startswith("applied ledger/001_"), migrated.stderr
    for command in ("keys create", "keys list", "export", "verify"):
        ran = ledger_on(empty_database_url, tmp_path, *ONE_SHOT[command])
        assert ran.returncode == 0, f"{command}: {ran.stderr}"
