"""Rows as columns: a batch is written as one statement over unnest()ed arrays, one array
a column (the appender's write-model rows, the projections' read-model rows, the webhook
emitter's deliveries)."""

from __future__ import annotations

from collections.abc import Sequence


def columns(rows: Sequence[Sequence], width: int = 0) -> list[list]:
    """The columns of `rows`; with no rows, `width` empty columns."""
    if not rows:
        return [[] for _ in range(width)]
    return [list(column) for column in zip(*rows, strict=True)]


def named_columns(names: Sequence[str], rows: Sequence[Sequence]) -> dict[str, list]:
    """The columns of `rows` by name, for a statement called with named parameters."""
    return dict(zip(names, columns(rows, len(names)), strict=True))
