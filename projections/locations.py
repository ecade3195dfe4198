"""The locations read model: every location with the attributes of its latest event."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

import asyncpg

from ledger.columns import columns
from projections.projection import ReadModel
from projections.statements import READ_MODEL_SCHEMA
from schemas import EventEnvelope, LocationCreated, LocationUpdated


class Locations(ReadModel):
    base_name = "locations"
    tables = ("locations",)

    def __init__(self, schema: str = READ_MODEL_SCHEMA):
        super().__init__(schema)
        self._apply = self.statement("apply_locations")

    async def apply(self, conn: asyncpg.Connection, events: Sequence[EventEnvelope]) -> None:
        latest: dict[tuple[int, int], EventEnvelope] = {}
        created: dict[tuple[int, int], datetime] = {}
        for e in events:
            data = e.data
            if isinstance(data, LocationCreated | LocationUpdated):
                key = (e.org_id, data.location_id)
                latest[key] = e
                if isinstance(data, LocationCreated):
                    created[key] = e.recorded_at
        if latest:
            await conn.execute(self._apply, *columns([_row(e, created.get(key)) for key, e in latest.items()]))


def _row(e: EventEnvelope, created_at: datetime | None) -> tuple:
    # created_at is only read by the INSERT, which only the batch holding LocationCreated makes.
    a = e.data.attributes  # type: ignore[union-attr]  # location events only reach this projection
    return (
        e.org_id, e.data.location_id, a.location_name, a.location_type, a.address, a.city,  # type: ignore[union-attr]  # location events only reach this projection
        a.state, a.zip, a.is_active, created_at, e.recorded_at,  # type: ignore[union-attr]  # location events only reach this projection
    )
