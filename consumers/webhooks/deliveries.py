"""An endpoint's deliveries as the API shows them, a retry by hand, and a test ping."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import TypeAlias

import asyncpg
import msgspec

from consumers.webhooks import payloads, statements
from consumers.webhooks.endpoints import get_endpoint
from consumers.webhooks.names import PING
from ledger.errors import DeliveryNotFound, DeliveryPending, WebhookDisabled

Db: TypeAlias = asyncpg.Connection | asyncpg.Pool


class Attempt(msgspec.Struct, frozen=True, kw_only=True):
    attempt: int
    attempted_at: datetime
    status_code: int | None  # None: no response (timeout, refused, not allowed, ...)
    error: str | None
    duration_ms: float


class Delivery(msgspec.Struct, frozen=True, kw_only=True):
    delivery_id: uuid.UUID
    event_name: str
    status: str  # pending | delivered | failed
    event_id: uuid.UUID | None
    position: int | None
    payload: bytes  # the exact body sent
    attempts: int
    max_attempts: int
    next_attempt_at: datetime
    delivered_at: datetime | None
    created_at: datetime
    attempt_log: list[Attempt]


_attempts = msgspec.json.Decoder(list[Attempt]).decode


async def list_deliveries(
    db: Db, org_id: int, endpoint_id: int, *, status: str | None = None, page: int = 1, per_page: int = 50
) -> tuple[list[Delivery], int]:
    """A page of an endpoint's deliveries, newest first, every attempt with each; and the total."""
    await get_endpoint(db, org_id, endpoint_id)  # 404 for someone else's
    total = await db.fetchval(statements.COUNT_WEBHOOK_DELIVERIES, endpoint_id, org_id, status)
    rows = await db.fetch(
        statements.LIST_WEBHOOK_DELIVERIES, endpoint_id, org_id, status, per_page, (page - 1) * per_page
    )
    found = [Delivery(**{**dict(r), "attempt_log": _attempts(r["attempt_log"])}) for r in rows]
    return found, total


async def retry_delivery(db: Db, org_id: int, endpoint_id: int, delivery_id: uuid.UUID) -> None:
    """Attempt a delivery that is no longer pending once more, now, with the same id."""
    row = await db.fetchrow(statements.READ_WEBHOOK_DELIVERY, delivery_id, endpoint_id, org_id)
    if row is None:
        raise DeliveryNotFound()
    if not row["enabled"]:
        raise WebhookDisabled()
    if await db.fetchval(statements.RETRY_WEBHOOK_DELIVERY, delivery_id, endpoint_id, org_id) is None:
        raise DeliveryPending()


async def ping(db: Db, org_id: int, endpoint_id: int) -> uuid.UUID:
    """Queue one `ping` delivery to an endpoint (one attempt, no retries); its id."""
    endpoint = await get_endpoint(db, org_id, endpoint_id)
    if not endpoint.enabled:
        raise WebhookDisabled()
    delivery_id = uuid.uuid4()
    data = {"webhook_id": endpoint_id, "message": "A test delivery from the inventory ledger"}
    body = payloads.body(delivery_id, PING, datetime.now(UTC), org_id, None, data)
    await db.fetchval(statements.INSERT_WEBHOOK_PING, delivery_id, endpoint_id, org_id, body)
    return delivery_id
