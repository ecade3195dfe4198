"""Organizations and API keys. A key is shown once; only its sha256 is stored.

Keys are 32 random bytes, so a fast hash is enough: there is nothing to brute-force that
a slow hash would protect. The first characters are kept in clear (`key_prefix`) so a
person can tell keys apart in a list without the key ever being stored.
"""

from __future__ import annotations

import hashlib
import ipaddress
import secrets
from datetime import datetime

import asyncpg
import msgspec

from ledger import errors, statements

ALL_SCOPES = SCOPES = (
    "inventory:read",
    "inventory:write",
    "inventory:transfer",
    "events:read",
    "webhooks:manage",
    "keys:manage",
)
KEY_PREFIX = "ldg_"
_SHOWN_PREFIX = 12


class ApiKey(msgspec.Struct, frozen=True, kw_only=True):
    key_id: int
    org_id: int
    name: str | None
    key_prefix: str
    scopes: list[str]
    allowed_ips: list[str] | None
    created_at: datetime
    revoked_at: datetime | None = None
    org_name: str | None = None


class CreatedKey(msgspec.Struct, frozen=True, kw_only=True):
    key: str  # the secret: shown once, never stored
    key_id: int
    org_id: int
    scopes: list[str]


def hash_key(key: str) -> bytes:
    return hashlib.sha256(key.encode()).digest()


def check_scopes(scopes: list[str]) -> list[str]:
    unknown = sorted(set(scopes) - set(SCOPES))
    if unknown or not scopes:
        raise errors.ValidationFailed(
            f"unknown or missing scopes: {', '.join(unknown) or '(none)'}; known: {', '.join(SCOPES)}"
        )
    return sorted(set(scopes), key=SCOPES.index)


def check_networks(allowed_ips: list[str] | None) -> list[str] | None:
    if allowed_ips is None:
        return None
    try:
        return [str(ipaddress.ip_network(ip, strict=False)) for ip in allowed_ips]
    except ValueError as exc:
        raise errors.ValidationFailed(f"allowed_ips: {exc}") from None


async def ensure_organization(conn: asyncpg.Connection | asyncpg.Pool, name: str) -> int:
    return await conn.fetchval(statements.ENSURE_ORGANIZATION, name)


async def find_organization(conn: asyncpg.Connection | asyncpg.Pool, name: str) -> int:
    org_id = await conn.fetchval(statements.FIND_ORGANIZATION, name)
    if org_id is None:
        raise errors.NotFound(f"no organization named {name!r}")
    return org_id


async def only_organization(conn: asyncpg.Connection | asyncpg.Pool) -> int:
    """The organization when there is exactly one (a command may then leave --org out)."""
    rows = await conn.fetch(statements.LIST_ORGANIZATIONS)
    if len(rows) != 1:
        names = ", ".join(r["name"] for r in rows[:5]) or "none yet"
        raise errors.ValidationFailed(f"name the organization with --org (there are {len(rows)}: {names})")
    return rows[0]["org_id"]


async def create_key(
    conn: asyncpg.Connection | asyncpg.Pool,
    org_id: int,
    scopes: list[str],
    *,
    name: str | None = None,
    allowed_ips: list[str] | None = None,
) -> tuple[CreatedKey, ApiKey]:
    scopes = check_scopes(scopes)
    networks = check_networks(allowed_ips)
    key = KEY_PREFIX + secrets.token_urlsafe(32)
    row = await conn.fetchrow(
        statements.INSERT_API_KEY, org_id, name, key[:_SHOWN_PREFIX], hash_key(key), scopes, networks
    )
    stored = _api_key(row)
    return CreatedKey(key=key, key_id=stored.key_id, org_id=org_id, scopes=scopes), stored


async def list_keys(conn: asyncpg.Connection | asyncpg.Pool, org_id: int | None = None) -> list[ApiKey]:
    return [_api_key(row) for row in await conn.fetch(statements.LIST_API_KEYS, org_id)]


async def revoke_key(conn: asyncpg.Connection | asyncpg.Pool, key_id: int, org_id: int | None = None) -> None:
    if await conn.fetchval(statements.REVOKE_API_KEY, key_id, org_id) is None:
        raise errors.NotFound(f"no API key {key_id}")


async def find_key(conn: asyncpg.Connection | asyncpg.Pool, key: str) -> ApiKey | None:
    """The live key with this secret, or None (unknown or revoked)."""
    row = await conn.fetchrow(statements.FIND_API_KEY, hash_key(key))
    return _api_key(row) if row else None


def _api_key(row: asyncpg.Record) -> ApiKey:
    fields = dict(row)
    if fields.get("allowed_ips") is not None:
        fields["allowed_ips"] = [str(n) for n in fields["allowed_ips"]]
    return ApiKey(**fields)
