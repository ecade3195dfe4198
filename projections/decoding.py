"""Stored rows to events. A row that does not decode is kept, not raised: it becomes a
dead letter of every projection, and one bad row must not stop the ledger's other events
from being read."""

from __future__ import annotations

import asyncpg

from ledger.records import envelope
from schemas import EventEnvelope


class Undecodable:
    """A stored event that does not decode (a newer event type, a damaged row)."""

    def __init__(self, row: asyncpg.Record, error: Exception):
        self.position, self.event_id, self.error = row["position"], row["event_id"], error


def decode(row: asyncpg.Record) -> EventEnvelope | Undecodable:
    try:
        return envelope(row)
    except Exception as exc:  # noqa: BLE001 - any failure to decode makes the same dead letter
        return Undecodable(row, exc)
