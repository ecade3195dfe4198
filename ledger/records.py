"""Recorded events: database rows to `EventEnvelope`s, decoded by msgspec without detours."""

from __future__ import annotations

from collections.abc import Iterable

import asyncpg
import msgspec

from schemas import EventEnvelope, EventMetadata, LedgerEvent

_decode_event = msgspec.json.Decoder(LedgerEvent).decode
_decode_metadata = msgspec.json.Decoder(EventMetadata).decode


def envelope(row: asyncpg.Record) -> EventEnvelope:
    return EventEnvelope(
        event_id=row["event_id"],
        position=row["position"],
        org_id=row["org_id"],
        stream=row["stream"],
        version=row["version"],
        type=row["type"],
        data=_decode_event(row["data"]),
        metadata=_decode_metadata(row["metadata"]),
        recorded_at=row["recorded_at"],
        prev_hash=row["prev_hash"],
        hash=row["hash"],
    )


def envelopes(rows: Iterable[asyncpg.Record]) -> list[EventEnvelope]:
    return [envelope(row) for row in rows]
