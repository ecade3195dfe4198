"""What goes on the wire to NATS: subject, headers and payload of a recorded event.

The payload is the event envelope as JSON, the same shape `GET /events` returns. It is
built from the stored row with the event's JSON passed through untouched (`msgspec.Raw`),
so publishing never decodes and re-encodes an event's data.
"""

from __future__ import annotations

import uuid
from datetime import datetime

import asyncpg
import msgspec

STREAM = "LEDGER"
SUBJECTS = "ledger.>"


class WireEnvelope(msgspec.Struct, kw_only=True):
    event_id: uuid.UUID
    position: int
    org_id: int
    stream: str
    version: int
    type: str
    data: msgspec.Raw
    metadata: msgspec.Raw
    recorded_at: datetime
    prev_hash: str
    hash: str


_encode = msgspec.json.Encoder().encode


def nats_servers(url: str) -> list[str]:
    """`LEDGER_NATS_URL` may name several servers of a cluster, separated by commas."""
    return [part.strip() for part in url.split(",") if part.strip()]


def subject(org_id: int, stream: str, event_type: str) -> str:
    """`ledger.<org_id>.<stream_kind>.<stream_id>.<type>`, e.g. `ledger.7.item.42.Transfer_out`."""
    kind, _, stream_id = stream.partition("-")
    return f"ledger.{org_id}.{kind}.{stream_id}.{event_type}"


def message(row: asyncpg.Record) -> tuple[str, bytes, dict[str, str]]:
    """(subject, payload, headers) of one stored event."""
    payload = _encode(
        WireEnvelope(
            event_id=row["event_id"], position=row["position"], org_id=row["org_id"], stream=row["stream"],
            version=row["version"], type=row["type"], data=msgspec.Raw(row["data"]),
            metadata=msgspec.Raw(row["metadata"]), recorded_at=row["recorded_at"],
            prev_hash=row["prev_hash"], hash=row["hash"],
        )
    )
    headers = {
        # JetStream drops a message whose id it has seen within its duplicate window,
        # so a relay that publishes again after a crash adds nothing.
        "Nats-Msg-Id": str(row["event_id"]),
        "Ledger-Position": str(row["position"]),
        "Ledger-Org": str(row["org_id"]),
        "Ledger-Type": row["type"],
    }
    return subject(row["org_id"], row["stream"], row["type"]), payload, headers
