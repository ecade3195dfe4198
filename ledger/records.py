"""Recorded events: database rows to `EventEnvelope`s, decoded by msgspec without detours.

The one place events are decoded: `decode_event` for a stored row's `data`, and
`decode_envelope` for an envelope as JSON (a NATS message, a `GET /events` entry)."""

from __future__ import annotations

from collections.abc import Iterable

import asyncpg
import msgspec

from schemas import EventEnvelope, EventMetadata, LedgerEvent

decode_event = msgspec.json.Decoder(LedgerEvent).decode
decode_envelope = msgspec.json.Decoder(EventEnvelope).decode
_decode_metadata = msgspec.json.Decoder(EventMetadata).decode


def envelope(row: asyncpg.Record) -> EventEnvelope:
    return EventEnvelope(
        event_id=row["event_id"],
        position=row["position"],
        org_id=row["org_id"],
        stream=row["stream"],
        version=row["version"],
        type=row["type"],
        data=decode_event(row["data"]),
        metadata=_decode_metadata(row["metadata"]),
        recorded_at=row["recorded_at"],
        prev_hash=row["prev_hash"],
        hash=row["hash"],
    )


def envelopes(rows: Iterable[asyncpg.Record]) -> list[EventEnvelope]:
    return [envelope(row) for row in rows]


# An event envelope with its data and metadata as stored (`msgspec.Raw`): for the relay's
# payloads and the export, which pass events on without decoding them. Made from
# `EventEnvelope`'s own fields, in their order, so the two shapes cannot drift apart.
StoredEnvelope = msgspec.defstruct(
    "StoredEnvelope",
    [(f.name, msgspec.Raw if f.name in ("data", "metadata") else f.type) for f in msgspec.structs.fields(EventEnvelope)],
    kw_only=True,
)


_encode = msgspec.json.Encoder().encode


def envelope_json(row: asyncpg.Record) -> bytes:
    """The envelope of a stored event as JSON (the shape `GET /events` returns)."""
    return _encode(
        StoredEnvelope(
            event_id=row["event_id"], position=row["position"], org_id=row["org_id"], stream=row["stream"],
            version=row["version"], type=row["type"], data=msgspec.Raw(row["data"]),
            metadata=msgspec.Raw(row["metadata"]), recorded_at=row["recorded_at"],
            prev_hash=row["prev_hash"], hash=row["hash"],
        )
    )
