"""Request and response bodies of `/api/v1/webhooks` (DESIGN 6 and 8).

The URL and the event names are checked by the webhooks themselves, each refusal with its
own code (`invalid_webhook_url`, `target_not_allowed`, `unknown_event`), so here they
are only bounded in count; the body size limit bounds the rest.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any, Literal

import msgspec
from msgspec import UNSET, UnsetType

from schemas.api import NO_NUL, Body  # NO_NUL: PostgreSQL text cannot hold NUL

EventName = Annotated[str, msgspec.Meta(max_length=100, pattern=NO_NUL)]
EventNames = Annotated[list[EventName], msgspec.Meta(min_length=1, max_length=50)]
Description = Annotated[str, msgspec.Meta(max_length=500, pattern=NO_NUL)]
DeliveryStatus = Literal["pending", "delivered", "failed"]


class WebhookCreate(Body):
    url: str
    events: EventNames  # webhook event names, or ["*"] for all
    description: Description | None = None


class WebhookPatch(Body):
    url: str | UnsetType = UNSET
    events: EventNames | UnsetType = UNSET
    description: Description | None | UnsetType = UNSET
    enabled: bool | UnsetType = UNSET  # true re-enables an endpoint that was disabled
    rotate_secret: bool = False  # a new secret, in this response only; the old one signs on for a grace period


class WebhookView(msgspec.Struct, kw_only=True):
    id: int
    url: str
    events: list[str]
    description: str | None
    enabled: bool
    disabled_at: datetime | None
    disabled_reason: str | None  # why it was disabled (e.g. failing for days)
    failing_since: datetime | None  # the first failed attempt of the current run of failures
    previous_secret_expires_at: datetime | None  # after a rotation: until when the old secret also signs
    created_at: datetime
    updated_at: datetime


class WebhookWithSecret(WebhookView):
    secret: str | None  # shown once: on creation and on rotation (null otherwise and on replays)


class AttemptView(msgspec.Struct, kw_only=True):
    attempt: int
    attempted_at: datetime
    status_code: int | None  # null: no response (timeout, connection refused, address not allowed)
    error: str | None
    duration_ms: float


class DeliveryView(msgspec.Struct, kw_only=True):
    id: uuid.UUID  # the payload's id and X-Webhook-Id / webhook-id, the same on every attempt
    event: str
    status: DeliveryStatus
    event_id: uuid.UUID | None  # the ledger event (null for a ping)
    position: int | None
    next_attempt_at: datetime | None  # while pending
    delivered_at: datetime | None
    created_at: datetime
    attempts: list[AttemptView]
    payload: dict[str, Any]


class DeliveryQueued(msgspec.Struct, kw_only=True):
    delivery_id: uuid.UUID
    status: DeliveryStatus = "pending"
