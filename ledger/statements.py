"""Every SQL statement of the ledger, loaded once from `ledger/sql/*.sql` by file name."""

from __future__ import annotations

from importlib import resources


def load_sql(package: str) -> dict[str, str]:
    """Every `.sql` file in `package/sql/`, by name without the suffix."""
    folder = resources.files(package) / "sql"
    return {f.name.removesuffix(".sql"): f.read_text() for f in folder.iterdir() if f.name.endswith(".sql")}


_SQL = load_sql("ledger")

APPEND_EVENTS = _SQL["append_events"]
LOAD_SNAPSHOT = _SQL["load_snapshot"]
LOCK_STREAMS = _SQL["lock_streams"]
NEXT_ITEM_ID = _SQL["next_item_id"]
NEXT_LOCATION_ID = _SQL["next_location_id"]
READ_EVENTS_BY_ID = _SQL["read_events_by_id"]
READ_STREAM_POSITION = _SQL["read_stream_position"]
READ_STREAM = _SQL["read_stream"]
READ_HORIZON = _SQL["read_horizon"]
READ_EVENTS = _SQL["read_events"]
ENSURE_ORGANIZATION = _SQL["ensure_organization"]
FIND_ORGANIZATION = _SQL["find_organization"]
INSERT_API_KEY = _SQL["insert_api_key"]
LIST_API_KEYS = _SQL["list_api_keys"]
REVOKE_API_KEY = _SQL["revoke_api_key"]
FIND_API_KEY = _SQL["find_api_key"]
READ_STREAMS = _SQL["read_streams"]
READ_DEFAULT_LOCATION = _SQL["read_default_location"]
READ_STREAM_CREATED_AT = _SQL["read_stream_created_at"]
READ_LAST_POSITION = _SQL["read_last_position"]
