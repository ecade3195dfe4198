"""The stock read models: levels per (item, location), and what each job holds and used.

`stock` has a row for every place that ever saw a movement, even once it is back at 0
(as the write model keeps a record there). `job_holdings` has a row for every (job,
item, location) a job ever reserved or consumed at: reserved now, consumed and released
in all, and the expiry of its latest reservation there. What each event changes is
`ledger.effects`.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

import asyncpg

from ledger.columns import columns
from ledger.effects import effect
from projections.projection import ReadModel
from projections.statements import READ_MODEL_SCHEMA
from schemas import EventEnvelope


class _Hold:
    __slots__ = ("consumed", "expires_at", "released", "reserved", "reserved_again")

    def __init__(self) -> None:
        self.reserved = self.consumed = self.released = 0
        self.reserved_again = False
        self.expires_at: datetime | None = None


class Stock(ReadModel):
    base_name = "stock"
    tables = ("stock", "job_holdings")

    def __init__(self, schema: str = READ_MODEL_SCHEMA):
        super().__init__(schema)
        self._apply_stock = self.statement("apply_stock")
        self._apply_holdings = self.statement("apply_job_holdings")

    async def apply(self, conn: asyncpg.Connection, events: Sequence[EventEnvelope]) -> None:
        levels: dict[tuple[int, int, int], list] = {}  # -> [quantity change, reserved change, last_updated]
        holdings: dict[tuple[int, int, int, int], _Hold] = {}
        for e in events:
            data = e.data
            if (moved := effect(data)) is None:
                continue
            level = levels.setdefault((e.org_id, data.item_id, data.location_id), [0, 0, None])  # type: ignore[union-attr]  # an event with an effect is a stock event
            level[0] += moved.quantity
            level[1] += moved.reserved
            level[2] = e.recorded_at
            if moved.job_id is not None:
                key = (e.org_id, moved.job_id, data.item_id, data.location_id)  # type: ignore[union-attr]  # an event with an effect is a stock event
                hold = holdings.get(key) or holdings.setdefault(key, _Hold())
                hold.reserved += moved.reserved
                hold.consumed += moved.consumed
                hold.released += moved.released
                if moved.renews:
                    hold.reserved_again, hold.expires_at = True, moved.expires_at
        if levels:
            await conn.execute(self._apply_stock, *columns([(*key, *level) for key, level in levels.items()]))
        if holdings:
            await conn.execute(
                self._apply_holdings,
                *columns([
                    (*key, h.reserved, h.consumed, h.released, h.reserved_again, h.expires_at)
                    for key, h in holdings.items()
                ]),
            )
