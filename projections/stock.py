"""The stock read models: levels per (item, location), and what each job holds and used.

`stock` has a row for every place that ever saw a movement, even once it is back at 0
(as the write model keeps a record there). `job_holdings` has a row for every (job,
item, location) a job ever reserved or consumed at: reserved now, consumed and released
in all, and the expiry of its latest reservation there.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

import asyncpg

from projections.movement import change
from projections.projection import ReadModel, columns
from projections.statements import READ_MODEL_SCHEMA
from schemas import EventEnvelope, JobCompleted, StockEvent, StockReleased, StockReserved


class _Holding:
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
        holdings: dict[tuple[int, int, int, int], _Holding] = {}
        for e in events:
            data = e.data
            if not isinstance(data, StockEvent):
                continue
            quantity, reserved = change(data)
            level = levels.setdefault((e.org_id, data.item_id, data.location_id), [0, 0, None])
            level[0] += quantity
            level[1] += reserved
            level[2] = e.recorded_at
            if isinstance(data, StockReserved | StockReleased | JobCompleted):
                key = (e.org_id, data.job_id, data.item_id, data.location_id)
                holding = holdings.get(key) or holdings.setdefault(key, _Holding())
                holding.reserved += reserved
                match data:
                    case StockReserved(expires_at=expires_at):
                        holding.reserved_again, holding.expires_at = True, expires_at
                    case StockReleased(quantity=n):
                        holding.released += n
                    case JobCompleted(quantity=n):
                        holding.consumed += n
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
