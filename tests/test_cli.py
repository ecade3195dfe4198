"""The `ledger` command on the embedded default, as a newcomer runs it."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from tests.fixtures_servers import scratch_data_dir


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


def test_unknown_scopes_are_refused_with_a_message(data_dir):
    refused = ledger(data_dir, "keys", "create", "--org", "acme", "--scopes", "inventory:everything")
    assert refused.returncode != 0 and "unknown or missing scopes" in refused.stderr


def test_verify_reports_a_sound_ledger(data_dir):
    verified = ledger(data_dir, "verify")
    assert verified.returncode == 0, verified.stdout + verified.stderr
    assert "all sound" in verified.stdout
