"""Every SQL statement of the projections, loaded once from `projections/sql/*.sql`.

Statements on read-model tables name them `{schema}.<table>`: the live tables are in
`READ_MODEL_SCHEMA`, and a rebuild points the same statements at fresh tables in another
schema. `in_schema` fills the schema in; do it once per projection, not per call (asyncpg
caches prepared statements by text).
"""

from __future__ import annotations

import re

from ledger.statements import load_sql

READ_MODEL_SCHEMA = "projections"
_SCHEMA_NAME = re.compile(r"[a-z_][a-z0-9_]{0,62}")


_SQL = load_sql("projections")


def in_schema(name: str, schema: str = READ_MODEL_SCHEMA) -> str:
    """Statement `name` on the read-model tables of `schema`."""
    return _SQL[name].replace("{schema}", checked_schema(schema))


def checked_schema(schema: str) -> str:
    # Schema names are spliced into SQL text, so only plain lower-case identifiers pass.
    if not _SCHEMA_NAME.fullmatch(schema):
        raise ValueError(f"not a plain schema name: {schema!r}")
    return schema


# Checkpoints, dead letters and status (public schema, shared by every projection).
CLAIM_CHECKPOINT = _SQL["claim_checkpoint"]
SAVE_CHECKPOINTS = _SQL["save_checkpoints"]
READ_CHECKPOINTS_REACHED = _SQL["read_checkpoints_reached"]
READ_CHECKPOINTS = _SQL["read_checkpoints"]
READ_ORG_HEAD = _SQL["read_org_head"]
READ_POSITIONS_HANDED_OUT = _SQL["read_positions_handed_out"]
WAKE_PROJECTORS = _SQL["wake_projectors"]
PARK_DEAD_LETTER = _SQL["park_dead_letter"]
READ_PROJECTION_STATUS = _SQL["read_projection_status"]

# Queries the API calls, on the live tables.
LIST_ITEMS = in_schema("list_items")
GET_ITEM = in_schema("get_item")
GET_ITEM_WITH_STOCK = in_schema("get_item_with_stock")
LIST_ITEM_TRANSACTIONS = in_schema("list_item_transactions")
LIST_LOCATIONS = in_schema("list_locations")
GET_LOCATION = in_schema("get_location")
LIST_LOW_STOCK = in_schema("list_low_stock")
GET_JOB = in_schema("get_job")
