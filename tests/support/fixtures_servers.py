"""The suite's PostgreSQL and NATS, one of each per session.

`LEDGER_TEST_DATABASE_URL` / `LEDGER_TEST_NATS_URL` name existing servers; without them
the embedded servers start in a temporary directory and stop when the session ends.
Loaded by tests/conftest.py through `pytest_plugins`.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from ledger import embedded
from ledger.embedded import start_nats, start_postgres


def remove_data_dir(data_dir: Path) -> None:
    """Delete a data dir, with the cluster start_postgres put outside it (it does so
    under root when `nobody` cannot reach the data dir)."""
    cluster = data_dir / "postgres"
    if cluster.is_symlink():
        shutil.rmtree(cluster.resolve(), ignore_errors=True)
    shutil.rmtree(data_dir, ignore_errors=True)


@contextlib.contextmanager
def fallbacks_removed() -> Iterator[None]:
    """Remove what start_postgres put under FALLBACK_ROOT meanwhile (clusters and copies
    of the binaries, made as root when `nobody` cannot reach the originals); what was
    there before stays, as another run may be using it."""
    def present() -> set[Path]:
        return set(embedded.FALLBACK_ROOT.iterdir()) if embedded.FALLBACK_ROOT.is_dir() else set()

    before = present()
    try:
        yield
    finally:
        for path in present() - before:
            shutil.rmtree(path, ignore_errors=True)


@contextlib.contextmanager
def scratch_data_dir(prefix: str = "ledger-test-") -> Iterator[Path]:
    data_dir = Path(tempfile.mkdtemp(prefix=prefix))
    try:
        yield data_dir
    finally:
        remove_data_dir(data_dir)


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    if url := os.environ.get("LEDGER_TEST_DATABASE_URL"):
        yield url
        return
    # durable=False: a crash loses nothing we need, and fsync dominates test time.
    with scratch_data_dir("ledger-test-pg-") as data_dir, start_postgres(data_dir, durable=False) as server:
        yield server.url


@pytest.fixture(scope="session")
def nats_url() -> Iterator[str]:
    if url := os.environ.get("LEDGER_TEST_NATS_URL"):
        yield url
        return
    with scratch_data_dir("ledger-test-nats-") as data_dir, start_nats(data_dir) as server:
        yield server.url
