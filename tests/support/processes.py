"""Real processes for multi-process tests: `ledger serve <role>` and a NATS cluster.

Everything runs on loopback, with bounded waits, and is killed at the end.
"""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import nats

from ledger.embedded import nats_server_binary


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class LedgerProcess:
    """`python -m ledger.cli serve ROLE` with its output in a log file."""

    def __init__(self, name: str, args: list[str], env: dict[str, str], log_dir: Path):
        self.name, self.args, self.env = name, args, env
        self.log = log_dir / f"{name}.log"
        self.proc: subprocess.Popen | None = None

    def start(self) -> LedgerProcess:
        out = open(self.log, "ab")  # noqa: SIM115 - closed with the process
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "ledger.cli", *self.args], env=self.env, stdout=out, stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        return self

    def kill(self) -> None:
        """SIGKILL: no shutdown, no checkpoint, connections dropped mid-flight."""
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.kill()

    def output(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""


def ledger_env(database_url: str, nats_url: str, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("LEDGER_")}
    env.update(LEDGER_DATABASE_URL=database_url, LEDGER_NATS_URL=nats_url, LEDGER_LOG_FORMAT="json", **extra)
    return env


class NatsCluster:
    """Three nats-server nodes with JetStream, routed to each other."""

    def __init__(self, data_dir: Path, nodes: int = 3):
        self.data_dir = data_dir
        self.client_ports = [free_port() for _ in range(nodes)]
        self.route_ports = [free_port() for _ in range(nodes)]
        self.procs: list[subprocess.Popen] = []

    @property
    def url(self) -> str:
        return ",".join(f"nats://127.0.0.1:{p}" for p in self.client_ports)

    def start(self) -> NatsCluster:
        for n, (port, route) in enumerate(zip(self.client_ports, self.route_ports, strict=True)):
            routes = ",".join(f"nats://127.0.0.1:{r}" for r in self.route_ports if r != route)
            store = self.data_dir / f"node{n}"
            store.mkdir(parents=True, exist_ok=True)
            log = open(self.data_dir / f"node{n}.log", "ab")  # noqa: SIM115
            self.procs.append(subprocess.Popen(
                [nats_server_binary(), "-n", f"node{n}", "-a", "127.0.0.1", "-p", str(port), "-js", "-sd", str(store),
                 "--cluster_name", "ledger", "--cluster", f"nats://127.0.0.1:{route}", "--routes", routes],
                stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
            ))
        return self

    async def wait_ready(self, timeout: float = 30.0) -> None:
        """Until JetStream answers in the cluster (a meta leader is elected)."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                nc = await nats.connect(self.url.split(","), connect_timeout=1)
                try:
                    await nc.jetstream().account_info()
                    return
                finally:
                    await nc.close()
            except Exception:
                if time.monotonic() > deadline:
                    raise
                await asyncio.sleep(0.3)

    def stop(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                proc.terminate()
        for proc in self.procs:
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()


async def wait_until(predicate, timeout: float, what: str) -> float:
    """Poll an async predicate; the seconds it took. Fails the test past `timeout`."""
    started = time.monotonic()
    while not await predicate():
        if time.monotonic() - started > timeout:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        await asyncio.sleep(0.1)
    return time.monotonic() - started


async def wait_for_http(base_url: str, timeout: float = 30, path: str = "/healthz") -> float:
    """Wait until a started service answers `path` with 200; the seconds it took."""
    async def up() -> bool:
        try:
            async with httpx.AsyncClient(timeout=1) as http:
                return (await http.get(f"{base_url}{path}")).status_code == 200
        except httpx.HTTPError:
            return False

    return await wait_until(up, timeout, f"{base_url}{path}")
