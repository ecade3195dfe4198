"""The benchmark, briefly, in every test run: so it cannot rot. No timing assertions.

`python -m tests.bench.run --quick` against the suite's PostgreSQL (it makes and drops
its own databases there) and a nats-server of its own (it publishes into the LEDGER
stream, which other tests' servers must not see). It must finish and print every row of
its table; the figures of a quick run mean nothing and are not looked at.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
# 1f-1j and 2b-2c: the plain durable write ratios (1f* and 1j* as paired runs), keyed commands, batches of 10 and 100
# lines, and the batches against the eventsourcing peer.
ROWS = ("1a", "1b", "1c", "1d", "1e", "1f", "1f*", "1g", "1h", "1i", "1j", "1j*", "2", "2b", "2c", "3", "4", "5", "6", "7")


@pytest.mark.slow  # a minute: every section of the benchmark, each with its own processes
def test_quick_benchmark_prints_every_row(postgres_url):
    run = subprocess.run(
        [sys.executable, "-m", "tests.bench.run", "--quick", "--url", postgres_url],
        cwd=ROOT, capture_output=True, text=True, timeout=600, check=False,
    )
    assert run.returncode == 0, f"stdout:\n{run.stdout[-4000:]}\nstderr:\n{run.stderr[-8000:]}"
    rows = [line for line in run.stdout.splitlines() if line.startswith("| ")]
    keys = [line.split("|")[1].strip() for line in rows[1:]]
    assert set(ROWS) <= set(keys), f"rows missing from the table:\n{run.stdout}"
    # Every new row measured something (a failing section would have said `error:`).
    figures = {line.split("|")[1].strip(): line.split("|")[3] for line in rows[1:]}
    for key in ("1f", "1h", "1i", "1j", "2b", "2c"):
        assert "/s" in figures[key], f"row {key} has no rate:\n{run.stdout}"
    assert "stale pgbench scripts" not in run.stdout, run.stdout
