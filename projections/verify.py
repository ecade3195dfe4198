"""`ledger verify`, the read models' half: every read-model row against a re-fold of the ledger.

Each read model is compared as of its own checkpoint: the fold is taken when it passes
that position. Everything is read in one REPEATABLE READ transaction, in which a checkpoint
and the rows it covers always agree (they commit together) and every event up to it is
visible; projectors may go on writing meanwhile. The transaction history, one row per
stock event, is compared page by page as the ledger is read, so memory stays flat.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

import asyncpg
import msgspec

from ledger.feed import read_through
from projections.catalog import READ_MODELS
from projections.decoding import Undecodable, decode
from projections.refold import KEYS, Refold, Rows, transaction_row
from projections.statements import in_schema
from projections.status import projection_status

SHOWN = 20  # differences listed per table; the rest are counted
_LAST_POSITION = 2**63 - 1


class ReadModelReport(msgspec.Struct, kw_only=True):
    rows: dict[str, int]  # rows compared, per table
    problems: list[str]

    @property
    def ok(self) -> bool:
        return not self.problems


def differences(table: str, expected: Rows, actual: Iterable[asyncpg.Record]) -> list[str]:
    """Rows missing, rows extra and columns that differ, one line each, in key order."""
    keys = KEYS[table]
    found = {tuple(r[k] for k in keys): r for r in actual}
    lines = []
    for key in sorted(expected.keys() | found.keys()):
        want, have = expected.get(key), found.get(key)
        where = f"{table} " + ", ".join(f"{k} {v}" for k, v in zip(keys, key, strict=True))
        if have is None:
            lines.append(f"{where}: missing from the read model")
        elif want is None:
            lines.append(f"{where}: in the read model, but the ledger has no such row")
        elif wrong := [f"{c} is {_shown(have[c])}, the ledger says {_shown(v)}" for c, v in want.items() if have[c] != v]:
            lines.append(f"{where}: " + "; ".join(wrong))
    return lines


def _shown(value: object) -> str:
    return value.isoformat() if isinstance(value, datetime) else repr(value)


class _History:
    """The transaction history, compared a range of positions at a time."""

    def __init__(self, conn, org_id: int | None, checkpoint: int):
        self.conn, self.org_id, self.checkpoint = conn, org_id, checkpoint
        self.compared_to = 0
        self.expected: Rows = {}
        self.lines: list[str] = []
        self.rows = 0

    def expect(self, e) -> None:
        if e.position <= self.checkpoint and (row := transaction_row(e)) is not None:
            self.expected[(e.position,)] = row

    async def compare_to(self, position: int) -> None:
        position = min(position, self.checkpoint) if position != _LAST_POSITION else position
        if position <= self.compared_to:
            return
        actual = await self.conn.fetch(in_schema("read_transaction_rows"), self.compared_to, position, self.org_id)
        self.lines += differences("transactions", self.expected, actual)
        self.rows += len(actual)
        self.compared_to, self.expected = position, {}


async def verify_read_models(conn: asyncpg.Connection, org_id: int | None = None) -> ReadModelReport:
    async with conn.transaction(isolation="repeatable_read", readonly=True):
        problems = [f"projection {p.name} is stuck on a dead letter at position {p.stuck_at}"
                    for p in await projection_status(conn) if p.stuck]
        checkpoints = {r["name"]: r["position"] for r in
                       await conn.fetch(in_schema("read_checkpoints"), [m.base_name for m in READ_MODELS])}
        # A read model never projected has no checkpoint: it must be empty (the fold at 0).
        waiting = sorted(((checkpoints.get(m.base_name, 0), m.base_name) for m in READ_MODELS), reverse=True)
        folds: dict[str, Refold] = {}
        fold, history = Refold(), _History(conn, org_id, checkpoints.get("transactions", 0))
        async for rows in read_through(conn, max(p for p, _ in waiting), org_id=org_id):
            for row in rows:
                while waiting and waiting[-1][0] < row["position"]:
                    folds[waiting.pop()[1]] = fold.copy()
                e = decode(row)
                if isinstance(e, Undecodable):
                    problems.append(f"event at position {e.position} does not decode: {e.error}")
                    continue
                fold.evolve(e)
                history.expect(e)
            await history.compare_to(rows[-1]["position"])
        folds.update((name, fold) for _, name in waiting)
        await history.compare_to(_LAST_POSITION)  # and no row past the checkpoint

        tables, lines = {"transactions": history.rows}, {"transactions": history.lines}
        for model in READ_MODELS:
            for table in model.tables:
                if table != "transactions":
                    actual = await conn.fetch(in_schema("read_model_rows").replace("{table}", table), org_id)
                    lines[table] = differences(table, folds[model.base_name].rows(table), actual)
                    tables[table] = len(actual)
    for table, found in lines.items():
        problems += found[:SHOWN]
        if len(found) > SHOWN:
            problems.append(f"... and {len(found) - SHOWN} more differences in {table}")
    return ReadModelReport(rows=tables, problems=problems)
