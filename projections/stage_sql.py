"""The stock effects of `ledger.effects` as SQL: a rebuild stages them from its rules.

`stage_rebuild_events.sql` works out each event's effect while it decodes a chunk of the
ledger, in columns the rebuild statements then only add up. Its `{effect:<column>}`
placeholders are filled here from `RULES`, one `CASE` over the event types per column,
so an event type's effect on stock is written once (in Python) and a rebuild follows it
with no SQL to edit. The expressions cost what hand-written ones would: one comparison
of the type per branch, and the event's field read only in the branch that matches.
"""

from __future__ import annotations

import re
from collections.abc import Callable

from ledger.effects import RULES_BY_TAG, Rule, Term
from projections.statements import in_schema

_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")  # tags and fields are spliced into SQL text
_PLACEHOLDER = re.compile(r"\{effect:\w+\}")


def _checked(name: str) -> str:
    if not _NAME.fullmatch(name):
        raise ValueError(f"not a plain name: {name!r}")
    return name


def _value(term: Term) -> str:
    value = f"(e.data ->> '{_checked(term.field)}')::bigint"
    return value if term.sign > 0 else f"-{value}"


def _case(pick: Callable[[Rule], Term | None], *, stock_default: str, otherwise: str) -> str:
    """`pick(rule)` of the event's type; `stock_default` for a stock event without one,
    `otherwise` for an event that is not a stock event."""
    branches = []
    for tag, rule in RULES_BY_TAG.items():
        term = pick(rule)
        value = _value(term) if term is not None else stock_default
        if value != otherwise:
            branches.append(f"WHEN '{_checked(tag)}' THEN {value}")
    return f"CASE e.type {' '.join(branches)} ELSE {otherwise} END" if branches else otherwise


def _renews() -> str:
    tags = [f"'{_checked(tag)}'" for tag, rule in RULES_BY_TAG.items() if rule.renews]
    return f"e.type IN ({', '.join(tags)})" if tags else "false"


# The staged columns, in the order of create_rebuild_stage.sql.
EFFECT_COLUMNS = {
    # The history's signed quantity; NULL marks an event that is not a stock event.
    "signed_quantity": _case(lambda r: r.shown, stock_default="0", otherwise="NULL"),
    "quantity_change": _case(lambda r: r.quantity, stock_default="0", otherwise="0"),
    "reserved_change": _case(lambda r: r.reserved, stock_default="0", otherwise="0"),
    "consumed": _case(lambda r: r.consumed, stock_default="0", otherwise="0"),
    "released": _case(lambda r: r.released, stock_default="0", otherwise="0"),
    "renews": _renews(),
}


def stage_statement(schema: str) -> str:
    """stage_rebuild_events.sql on the tables of `schema`, its effect columns filled in."""
    sql = in_schema("stage_rebuild_events", schema)
    for column, expression in EFFECT_COLUMNS.items():
        sql = sql.replace(f"{{effect:{column}}}", expression)
    if unknown := _PLACEHOLDER.search(sql):
        raise ValueError(f"stage_rebuild_events.sql names an effect column stage_sql.py does not know: {unknown[0]}")
    return sql
