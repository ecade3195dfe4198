"""The webhook endpoints an organization registers (what `/api/v1/webhooks` manages).

Every function takes the caller's organization: another organization's endpoint is not
found, exactly like one that does not exist. A secret leaves this module only in the
`Endpoint` returned by a creation or a rotation (shown once).
"""

from __future__ import annotations

from datetime import datetime
from typing import TypeAlias

import asyncpg
import msgspec

from consumers.webhooks import statements
from consumers.webhooks.names import check_event_names
from consumers.webhooks.settings import WebhookSettings
from consumers.webhooks.signing import new_secret
from consumers.webhooks.targets import check_target
from ledger.errors import TooManyWebhooks, WebhookNotFound

Db: TypeAlias = asyncpg.Connection | asyncpg.Pool


class Endpoint(msgspec.Struct, frozen=True, kw_only=True):
    endpoint_id: int
    org_id: int
    url: str
    events: list[str]
    description: str | None
    enabled: bool
    disabled_at: datetime | None
    disabled_reason: str | None
    failing_since: datetime | None
    previous_secret_expires_at: datetime | None  # while the rotated-out secret still signs
    created_at: datetime
    updated_at: datetime
    secret: str | None = None  # only right after creation or rotation


def _endpoint(row: asyncpg.Record) -> Endpoint:
    return Endpoint(**dict(row))


async def create_endpoint(
    db: Db, org_id: int, settings: WebhookSettings, *, url: str, events: list[str], description: str | None = None
) -> Endpoint:
    """Register an endpoint; the returned `secret` is the only time it is shown."""
    events = check_event_names(events)
    await check_target(url, allow_private=settings.allow_private)
    row = await db.fetchrow(
        statements.INSERT_WEBHOOK_ENDPOINT, org_id, url, events, description, new_secret(), settings.max_endpoints
    )
    if row is None:
        raise TooManyWebhooks(f"An organization may have at most {settings.max_endpoints} webhooks")
    return _endpoint(row)


async def list_endpoints(db: Db, org_id: int) -> list[Endpoint]:
    return [_endpoint(r) for r in await db.fetch(statements.LIST_WEBHOOK_ENDPOINTS, org_id)]


async def get_endpoint(db: Db, org_id: int, endpoint_id: int) -> Endpoint:
    row = await db.fetchrow(statements.READ_WEBHOOK_ENDPOINT, endpoint_id, org_id)
    if row is None:
        raise WebhookNotFound()
    return _endpoint(row)


async def update_endpoint(
    db: Db,
    org_id: int,
    endpoint_id: int,
    settings: WebhookSettings,
    *,
    url: str | None = None,
    events: list[str] | None = None,
    description: str | None | msgspec.UnsetType = msgspec.UNSET,
    enabled: bool | None = None,
    rotate_secret: bool = False,
) -> Endpoint:
    """Change what is given. Enabling clears why it was disabled. A rotation returns the
    new secret once; the old one keeps signing for `settings.secret_grace` seconds."""
    if events is not None:
        events = check_event_names(events)
    if url is not None:
        await check_target(url, allow_private=settings.allow_private)
    row = await db.fetchrow(
        statements.UPDATE_WEBHOOK_ENDPOINT, endpoint_id, org_id, url, events,
        description is not msgspec.UNSET, None if description is msgspec.UNSET else description,
        enabled, new_secret() if rotate_secret else None, settings.secret_grace,
    )
    if row is None:
        raise WebhookNotFound()
    endpoint = _endpoint(row)
    return endpoint if rotate_secret else msgspec.structs.replace(endpoint, secret=None)


async def delete_endpoint(db: Db, org_id: int, endpoint_id: int) -> None:
    """Remove an endpoint with its deliveries; nothing more is sent to it."""
    if await db.fetchval(statements.DELETE_WEBHOOK_ENDPOINT, endpoint_id, org_id) is None:
        raise WebhookNotFound()
