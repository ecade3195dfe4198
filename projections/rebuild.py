"""Rebuilding read models set-based, in SQL: the fast path of `ledger replay`.

A projector applies the ledger through Python, batch by batch, at tens of microseconds
an event (decoding, then rows sent back). A rebuild starts from empty tables and may read
the ledger where it lies: each chunk of positions is decoded once into a stage table
(`stage_rebuild_events.sql`, each event's effect on stock worked out there by the rules of
`ledger.effects`, see `stage_sql.py`), and every read model is then changed by one
statement per chunk (`rebuild_*.sql`), merged exactly as the projector's `apply_*.sql`
merges a batch.
Chunks are applied in order, so the result is the projector's result cut into other
batches, which every projection must allow anyway (projection.py). Chunks are large
because each one costs a merge of every row it touches.

The work runs in several sessions at once (lanes), since one statement uses one core:
the chunk is staged in parts side by side, then the rebuild statements (the history cut
in parts too) are shared out by cost.

Fresh tables get the live tables' columns and storage options; their keys up front
where a merge looks rows up by them, every other index once the bulk is in: building an
index once over all rows is several times cheaper than keeping it up to date row by row.
Every index keeps its live name, so a swapped-in table is indistinguishable from one the
migrations made.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence

import asyncpg

from ledger import errors
from projections.projection import ReadModel
from projections.stage_sql import stage_statement
from projections.statements import READ_MODEL_SCHEMA, checked_schema, in_schema
from schemas import EVENT_TYPES

# The statements that rebuild each read model, by projection name, with their rough cost
# (seconds a million events, measured): the lanes are balanced by it.
REBUILDS = {
    "items": (("rebuild_items", 1.7),),
    "stock": (("rebuild_stock", 1.8), ("rebuild_job_holdings", 1.4)),
    "transactions": (("rebuild_transactions", 1.8),),  # cut in parts by position
    "locations": (("rebuild_locations", 0.2),),
}
STAGE_COST = 1.3
APPEND_ONLY = {"transactions"}  # no row is looked up while rebuilding: every index can wait
_SESSION = {
    "work_mem": "128MB",  # a chunk's groups are sorted and hashed in memory
    "maintenance_work_mem": "256MB",  # the deferred index builds sort in memory
    # The rebuilt tables are scratch until the swap: a crash before it loses nothing that
    # matters (the rebuild starts over), so no commit here waits for its WAL flush. The
    # swap itself commits with synchronous_commit on (projections/replay.py).
    "synchronous_commit": "off",
}


async def _indexes(conn: asyncpg.Connection, table: str) -> list[asyncpg.Record]:
    return await conn.fetch(in_schema("read_table_indexes"), f"{READ_MODEL_SCHEMA}.{table}")


async def create_tables(conn: asyncpg.Connection, schema: str, tables: Sequence[str]) -> None:
    """Empty copies of live tables in `schema`, with the keys the merges need, no other index."""
    await conn.execute(f"CREATE SCHEMA {checked_schema(schema)}")
    for table in tables:
        options = await conn.fetchval(
            "SELECT reloptions FROM pg_class WHERE oid = $1::regclass", f"{READ_MODEL_SCHEMA}.{table}"
        )
        with_options = f" WITH ({', '.join(options)})" if options else ""
        await conn.execute(
            f"CREATE TABLE {schema}.{table} (LIKE {READ_MODEL_SCHEMA}.{table} INCLUDING ALL EXCLUDING INDEXES)"
            f"{with_options}"
        )
        if table not in APPEND_ONLY:
            await _copy_indexes(conn, schema, table, constraints=True)


async def _copy_indexes(conn, schema: str, table: str, *, constraints: bool) -> None:
    """The live table's indexes (its constraints', or the others) on the copy, by the same names."""
    for index in await _indexes(conn, table):
        if index["is_constraint"] != constraints:
            continue
        if constraints:
            await conn.execute(
                f'ALTER TABLE {schema}.{table} ADD CONSTRAINT "{index["name"]}" {index["constraint_definition"]}'
            )
            continue
        live = f" ON {READ_MODEL_SCHEMA}.{table} "
        if live not in index["definition"]:
            raise ValueError(f"cannot copy index {index['name']}: {index['definition']}")
        await conn.execute(index["definition"].replace(live, f" ON {schema}.{table} ", 1))


async def finish_tables(conn: asyncpg.Connection, schema: str, tables: Sequence[str]) -> None:
    """The indexes left for after the bulk, and fresh statistics for the planner."""
    for table in tables:
        if table in APPEND_ONLY:
            await _copy_indexes(conn, schema, table, constraints=True)
        await _copy_indexes(conn, schema, table, constraints=False)
        # A swapped-in table without statistics could be planned badly until autovacuum came by.
        await conn.execute(f"ANALYZE {schema}.{table}")


def lanes(work: Sequence[tuple[object, float]], count: int) -> list[list]:
    """Work shared among `count` sessions: the costliest first, each to the least loaded."""
    shares: list[list] = [[] for _ in range(count)]
    loads = [0.0] * count
    for item, cost in sorted(work, key=lambda w: -w[1]):
        n = loads.index(min(loads))
        loads[n] += cost
        shares[n].append((item, cost))
    return shares


class Rebuild:
    """Applies the ledger, chunk by chunk, to fresh tables of some read models in `schema`."""

    def __init__(self, conns: Sequence[asyncpg.Connection], schema: str, projections: Sequence[ReadModel],
                 *, chunk: int = 1_000_000):
        self.conns, self.schema, self.chunk = list(conns), checked_schema(schema), chunk
        self.tables = [t for p in projections for t in p.tables]
        self._statements = [(in_schema(name, schema), cost) for p in projections for name, cost in REBUILDS[p.base_name]]
        self._history = in_schema("rebuild_transactions", schema)
        self._stage = stage_statement(schema)  # with every event type's effect on stock
        self.events = 0  # applied so far

    def _sql(self, name: str) -> str:
        return in_schema(name, self.schema)

    async def prepare(self) -> None:
        for conn in self.conns:
            for setting, value in _SESSION.items():
                await conn.execute(f"SET {setting} = '{value}'")
        await create_tables(self.conns[0], self.schema, self.tables)
        await self.conns[0].execute(self._sql("create_rebuild_stage"))

    async def run(self, after: int, upto: int, progress: Callable[[int], None] | None = None) -> int:
        """Apply the events after `after` up to `upto` (a settled horizon); returns `upto`."""
        while after < upto:
            end = min(after + self.chunk, upto)
            await self.apply_chunk(after, end, progress)
            after = end
        return max(after, upto)

    def _cuts(self, after: int, upto: int) -> list[tuple[int, int]]:
        n = len(self.conns)
        bounds = [after + (upto - after) * k // n for k in range(n + 1)]
        return list(zip(bounds, bounds[1:], strict=False))

    async def apply_chunk(self, after: int, upto: int, progress: Callable[[int], None] | None = None) -> None:
        first, cuts = self.conns[0], self._cuts(after, upto)
        work = [((s, ()), cost) for s, cost in self._statements if s != self._history]
        if any(s == self._history for s, _ in self._statements):
            work += [((self._history, cut), REBUILDS["transactions"][0][1] / len(cuts)) for cut in cuts]  # type: ignore[misc]  # work items are (name, cut) pairs of any cut
        total = STAGE_COST + sum(cost for _, cost in work)
        done = 0.0

        def advance(cost: float) -> None:
            nonlocal done
            done += cost
            if progress:
                progress(after + int((upto - after) * min(done / total, 1.0)))

        staged = await asyncio.gather(*(
            conn.execute(self._stage, *cut) for conn, cut in zip(self.conns, cuts, strict=True)
        ))
        advance(STAGE_COST)
        unknown = await first.fetchrow(self._sql("find_unknown_staged"), list(EVENT_TYPES))
        if unknown is not None:
            # A projector would park it as a dead letter; a set-based rebuild cannot.
            raise errors.RebuildRefused(f"event at position {unknown['position']} has type {unknown['type']!r}, "
                                        "which this version cannot replay")
        # The merges join and group on these; the planner needs their statistics.
        await first.execute(f"ANALYZE {self.schema}.rebuild_stage (position, org_id, item_id, location_id, job_id, type)")
        await asyncio.gather(*(self._lane(conn, share, advance)
                               for conn, share in zip(self.conns, lanes(work, len(self.conns)), strict=True)))
        await first.execute(f"TRUNCATE {self.schema}.rebuild_stage")
        self.events += sum(int(status.rsplit(" ", 1)[-1]) for status in staged)

    @staticmethod
    async def _lane(conn: asyncpg.Connection, share: list, advance: Callable[[float], None]) -> None:
        for (statement, args), cost in share:
            await conn.execute(statement, *args)
            advance(cost)

    async def finish(self) -> None:
        """Indexes and statistics, spread over the lanes (the history's outweigh the rest)."""
        work = [(t, 10.0 if t in APPEND_ONLY else 1.0) for t in self.tables]
        await asyncio.gather(*(finish_tables(conn, self.schema, [t for t, _ in share])
                               for conn, share in zip(self.conns, lanes(work, len(self.conns)), strict=True)))
