"""The reads the API serves, from the live read models; every one scoped to an organization.

Each takes a pool or a connection and the caller's `org_id`; another organization's ids
read as absent (None or empty), never as someone else's data. Lists return
`(rows, total)` for the page asked, with `per_page` held to 1..`MAX_PER_PAGE`.
"""

from __future__ import annotations

from typing import TypeAlias, TypeVar

import asyncpg
import msgspec

from projections import statements
from projections.models import Item, JobHolding, JobView, Location, StockEntry, StockSummaryLine, Transaction

MAX_PER_PAGE = 100  # seed 004's maximum page size

Db: TypeAlias = asyncpg.Pool | asyncpg.Connection
S = TypeVar("S", bound=msgspec.Struct)


async def list_items(
    db: Db, org_id: int, *, category: str | None = None, search: str | None = None,
    low_stock: bool | None = None, page: int = 1, per_page: int = 50,
) -> tuple[list[Item], int]:
    """Items by id. `search` matches part_number or part_name, case-insensitive substring;
    `low_stock=True` keeps only items at or below their minimum (False or None: all)."""
    pattern = f"%{_like_escaped(search)}%" if search else None
    rows = await db.fetch(statements.LIST_ITEMS, org_id, category, pattern, bool(low_stock), *_page(page, per_page))
    return _paged(rows, Item)


async def get_item(db: Db, org_id: int, item_id: int, *, include_deleted: bool = False) -> Item | None:
    """An item; None for an unknown one, another organization's, or a deleted one (unless asked)."""
    row = await db.fetchrow(statements.GET_ITEM, org_id, item_id, include_deleted)
    return _struct(row, Item) if row else None


_decode_stock = msgspec.json.Decoder(list[StockEntry]).decode


async def item_with_stock(db: Db, org_id: int, item_id: int) -> tuple[Item, list[StockEntry]] | None:
    """An item and its stock entries in one round trip; None as `get_item` says."""
    row = await db.fetchrow(statements.GET_ITEM_WITH_STOCK, org_id, item_id)
    return (_struct(row, Item), _decode_stock(row["stock"])) if row else None


async def item_transactions(
    db: Db, org_id: int, item_id: int, *, type: str | None = None, page: int = 1, per_page: int = 50,
) -> tuple[list[Transaction], int]:
    """The item's transaction history, newest first; `type` filters on transaction_type."""
    rows = await db.fetch(statements.LIST_ITEM_TRANSACTIONS, org_id, item_id, type, *_page(page, per_page))
    return _paged(rows, Transaction)


async def list_locations(
    db: Db, org_id: int, *, type: str | None = None, active_only: bool = True, page: int = 1, per_page: int = 50,
) -> tuple[list[Location], int]:
    rows = await db.fetch(statements.LIST_LOCATIONS, org_id, type, active_only, *_page(page, per_page))
    return _paged(rows, Location)


async def get_location(db: Db, org_id: int, location_id: int) -> tuple[Location, list[StockSummaryLine]] | None:
    """A location and the items stocked there (quantity above 0), by item id."""
    rows = await db.fetch(statements.GET_LOCATION, org_id, location_id)
    if not rows:
        return None
    summary = [_struct(row, StockSummaryLine) for row in rows if row["item_id"] is not None]
    return _struct(rows[0], Location), summary


async def low_stock(db: Db, org_id: int, *, page: int = 1, per_page: int = 50) -> tuple[list[Item], int]:
    """Items with min_stock_level > 0 and quantity_on_hand <= it, most critical first:
    the lowest quantity_on_hand / min_stock_level, then the largest shortfall, then by id."""
    rows = await db.fetch(statements.LIST_LOW_STOCK, org_id, *_page(page, per_page))
    return _paged(rows, Item)


async def job_view(db: Db, org_id: int, job_id: int) -> JobView | None:
    """What a job holds now and has consumed, per (item, location); None if it never did either."""
    rows = await db.fetch(statements.GET_JOB, org_id, job_id)
    if not rows:
        return None
    holdings = [_struct(row, JobHolding) for row in rows]
    return JobView(
        job_id=job_id,
        reserved_quantity=sum(h.reserved_quantity for h in holdings),
        consumed_quantity=sum(h.consumed_quantity for h in holdings),
        holdings=holdings,
    )


# --- helpers --------------------------------------------------------------------------


def _page(page: int, per_page: int) -> tuple[int, int]:
    """(limit, offset)."""
    per_page = min(max(per_page, 1), MAX_PER_PAGE)
    return per_page, (max(page, 1) - 1) * per_page


def _paged(rows: list[asyncpg.Record], cls: type[S]) -> tuple[list[S], int]:
    # The list statements return the total on every row, and one row of NULLs past the end.
    total = rows[0]["total"] if rows else 0
    first_field = cls.__struct_fields__[0]
    return [_struct(row, cls) for row in rows if row[first_field] is not None], total


def _struct(row: asyncpg.Record, cls: type[S]) -> S:
    return cls(**{field: row[field] for field in cls.__struct_fields__})


def _like_escaped(text: str) -> str:
    """`text` matched literally inside an ILIKE pattern (whose escape character is \\)."""
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
