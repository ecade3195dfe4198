"""Every SQL statement of the ledger, loaded once from `ledger/sql/*.sql` by file name.

`load_sql` is the one loader of every package's statements (api, consumers, projections)."""

from __future__ import annotations

import functools
from importlib import resources


@functools.cache  # consumers/ and consumers/webhooks/ both read consumers/sql/: read once
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
LIST_ORGANIZATIONS = _SQL["list_organizations"]
INSERT_API_KEY = _SQL["insert_api_key"]
LIST_API_KEYS = _SQL["list_api_keys"]
REVOKE_API_KEY = _SQL["revoke_api_key"]
FIND_API_KEY = _SQL["find_api_key"]
READ_STREAMS = _SQL["read_streams"]
READ_DEFAULT_LOCATION = _SQL["read_default_location"]
READ_STREAM_CREATED_AT = _SQL["read_stream_created_at"]
READ_STREAM_UNTIL = _SQL["read_stream_until"]
READ_LOCATION_NAMES = _SQL["read_location_names"]
READ_HEADLESS_STREAMS = _SQL["read_headless_streams"]
READ_EXPIRED_HOLDS = _SQL["read_expired_holds"]
TRY_LEASE = _SQL["try_lease"]
RELEASE_LEASE = _SQL["release_lease"]
READ_FEED = _SQL["read_feed"]
READ_STREAM_FEED = _SQL["read_stream_feed"]
READ_STREAM_HEAD = _SQL["read_stream_head"]
FIND_ITEMS_BY_PART_NUMBER = _SQL["find_items_by_part_number"]
