"""What a projection is: a name, its tables, and how a batch of events changes them.

A projection's rows are a pure function of the ledger: `apply` is called with the events
after its checkpoint, in position order, inside the transaction that also moves its
checkpoint, so each event changes the rows exactly once. `apply` may assume nothing
about batch boundaries (a rebuild and a live run cut the ledger differently and must end
with the same rows).

The live tables are in schema `READ_MODEL_SCHEMA`. The same projection built with another
`schema` writes fresh copies there under its own checkpoint name (`<schema>.<name>`), so a
rebuild never disturbs what readers see.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar, Protocol

import asyncpg

from projections.statements import READ_MODEL_SCHEMA, checked_schema, in_schema
from schemas import EventEnvelope


class Projection(Protocol):
    name: str  # its checkpoint row and its ownership lock
    tables: tuple[str, ...]  # the tables it owns, unqualified

    async def apply(self, conn: asyncpg.Connection, events: Sequence[EventEnvelope]) -> None: ...


class ReadModel:
    """Base of the projections in this package: one set of tables in one schema."""

    base_name: ClassVar[str]
    tables: ClassVar[tuple[str, ...]]

    def __init__(self, schema: str = READ_MODEL_SCHEMA):
        self.schema = checked_schema(schema)
        self.name = self.base_name if schema == READ_MODEL_SCHEMA else f"{schema}.{self.base_name}"

    def statement(self, name: str) -> str:
        return in_schema(name, self.schema)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.name!r})"
