"""Fresh copies of every read-model table in another schema, for a test's own projector
to fill: the copies `ledger replay` makes (projections/rebuild.py), with every index."""

from __future__ import annotations

import asyncpg

from projections import read_models
from projections.rebuild import create_tables, finish_tables


async def fresh_tables(conn: asyncpg.Connection, schema: str) -> None:
    tables = [table for model in read_models() for table in model.tables]
    await create_tables(conn, schema, tables)
    await finish_tables(conn, schema, tables)
