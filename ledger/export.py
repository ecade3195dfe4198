"""`ledger export`: the ledger, up to its settled horizon, as NDJSON or CSV.

The horizon is taken once, at the start: an export is the ledger as it stood then, every
event up to a position no later commit can precede, and an export started `--after` the
last position of the previous one continues it exactly. Events are written as stored
(data and metadata are the stored JSON, not decoded and encoded again), so an export
carries everything needed to recompute each hash, and even an event this version could
not decode is exported.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable

from ledger.feed import read_through, settled_horizon
from ledger.records import envelope_json

FORMATS = ("ndjson", "csv")
CSV_COLUMNS = ("position", "event_id", "org_id", "stream", "version", "type", "recorded_at", "data", "metadata",
               "prev_hash", "hash")


def _ndjson(rows) -> bytes:
    return b"".join(envelope_json(r) + b"\n" for r in rows)


def _csv(rows, *, header: bool) -> bytes:
    text = io.StringIO()
    writer = csv.writer(text, lineterminator="\n")
    if header:
        writer.writerow(CSV_COLUMNS)
    for r in rows:
        writer.writerow([
            r["position"], r["event_id"], r["org_id"], r["stream"], r["version"], r["type"],
            r["recorded_at"].isoformat(), r["data"].decode(), r["metadata"].decode(), r["prev_hash"], r["hash"],
        ])
    return text.getvalue().encode()


async def export(conn, write: Callable[[bytes], object], fmt: str, *, org_id: int | None = None, after: int = 0) -> int:
    """Write the events after `after` (of one organization, or all) up to the horizon; the count."""
    if fmt not in FORMATS:
        raise ValueError(f"format must be one of {', '.join(FORMATS)}")
    horizon = await settled_horizon(conn, timeout=30)
    count = 0
    if fmt == "csv":
        write(_csv([], header=True))
    async for rows in read_through(conn, horizon, org_id=org_id, after=after):
        write(_ndjson(rows) if fmt == "ndjson" else _csv(rows, header=False))
        count += len(rows)
    return count
