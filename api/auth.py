"""What a caller may do: its API key (found by api/request_pass.py), cached, and its scopes.

Keys are looked up by their sha256 and cached for a few seconds per process (unknown
keys too, so a flood of bad keys does not become a flood of queries). A revoked key
stops working within `CACHE_SECONDS` everywhere, at once in the process that revoked it.
"""

from __future__ import annotations

import time

from litestar.connection import ASGIConnection
from litestar.handlers.base import BaseRouteHandler

from api.errors import InsufficientScope
from ledger.keys import ApiKey, find_key, hash_key

CACHE_SECONDS = 10.0
_CACHE_SIZE = 10_000
# A key with the scope on the left may do what the scopes on the right allow.
_IMPLIES = {"inventory:write": {"inventory:read"}}


class KeyCache:
    def __init__(self) -> None:
        self._entries: dict[bytes, tuple[float, ApiKey | None]] = {}

    async def lookup(self, pool, key: str) -> ApiKey | None:
        digest = hash_key(key)
        now = time.monotonic()
        hit = self._entries.get(digest)
        if hit and hit[0] > now:
            return hit[1]
        found = await find_key(pool, key)
        if len(self._entries) >= _CACHE_SIZE:
            self._entries.clear()  # crude but bounded; entries are cheap to refetch
        self._entries[digest] = (now + CACHE_SECONDS, found)
        return found

    def forget(self, key_id: int) -> None:
        self._entries = {d: e for d, e in self._entries.items() if not (e[1] and e[1].key_id == key_id)}


def grants(scopes: list[str], needed: str) -> bool:
    return any(s == needed or needed in _IMPLIES.get(s, ()) for s in scopes)


async def require_scope(connection: ASGIConnection, handler: BaseRouteHandler) -> None:
    """Guard: the route's `opt["scope"]` must be granted by the caller's key.

    `async` although it never awaits: litestar runs a sync guard in a worker thread, a
    thread hop on every request (the profile showed it)."""
    needed = handler.opt.get("scope")
    if needed and not grants(connection.user.scopes, needed):
        raise InsufficientScope(f"This endpoint requires the {needed} scope")
    # A route whose body says which scope each part needs (batches) first needs one of them.
    any_of = handler.opt.get("any_scope", ())
    if any_of and not any(grants(connection.user.scopes, s) for s in any_of):
        raise InsufficientScope(f"This endpoint requires the {' or '.join(any_of)} scope")
