"""What goes on the wire to NATS: subject, headers and payload of a recorded event.

The payload is the event envelope as JSON, the same shape `GET /events` returns. It is
built from the stored row with the event's JSON passed through untouched
(`ledger.records.envelope_json`), so publishing never decodes and re-encodes an event's data.
"""

from __future__ import annotations

import asyncpg

from ledger.records import envelope_json
from schemas import parse_stream

STREAM = "LEDGER"
SUBJECTS = "ledger.>"


def nats_servers(url: str) -> list[str]:
    """`LEDGER_NATS_URL` may name several servers of a cluster, separated by commas."""
    return [part.strip() for part in url.split(",") if part.strip()]


def subject(org_id: int, stream: str, event_type: str) -> str:
    """`ledger.<org_id>.<stream_kind>.<stream_id>.<type>`, e.g. `ledger.7.item.42.Transfer_out`."""
    kind, stream_id = parse_stream(stream)
    return f"ledger.{org_id}.{kind}.{stream_id}.{event_type}"


def message(row: asyncpg.Record) -> tuple[str, bytes, dict[str, str]]:
    """(subject, payload, headers) of one stored event."""
    payload = envelope_json(row)
    headers = {
        # JetStream drops a message whose id it has seen within its duplicate window,
        # so a relay that publishes again after a crash adds nothing.
        "Nats-Msg-Id": str(row["event_id"]),
        "Ledger-Position": str(row["position"]),
        "Ledger-Org": str(row["org_id"]),
        "Ledger-Type": row["type"],
    }
    return subject(row["org_id"], row["stream"], row["type"]), payload, headers
