"""Webhook endpoints of the caller's organization, their deliveries, retries and pings.

Another organization's webhook or delivery is `404 not_found`, as if it did not exist.
"""

from __future__ import annotations

import uuid
from typing import Annotated

import msgspec
from litestar import Controller, Request, Response, delete, get, patch, post
from litestar.params import JSONBody, Parameter, QueryParameter

from api import shared
from api.responses import listed, ok
from api.routes.params import Page, PerPage
from consumers import webhooks
from ledger import errors
from schemas.api import Envelope, ListEnvelope
from schemas.events import MAX_QUANTITY
from schemas.webhooks import (
    AttemptView,
    DeliveryQueued,
    DeliveryStatus,
    DeliveryView,
    WebhookCreate,
    WebhookPatch,
    WebhookView,
    WebhookWithSecret,
)

MANAGE = {"scope": "webhooks:manage"}
WebhookId = Annotated[int, Parameter(ge=1, le=MAX_QUANTITY, description="Webhook id")]
DeliveryId = Annotated[uuid.UUID, Parameter(description="Delivery id (the payload's id)")]
StatusFilter = Annotated[DeliveryStatus | None, QueryParameter(description="pending, delivered or failed")]
_VIEW_FIELDS = [f for f in WebhookView.__struct_fields__ if f != "id"]


def view(endpoint: webhooks.Endpoint) -> WebhookView:
    return WebhookView(id=endpoint.endpoint_id, **{f: getattr(endpoint, f) for f in _VIEW_FIELDS})


def with_secret(endpoint: webhooks.Endpoint) -> WebhookWithSecret:
    return WebhookWithSecret(id=endpoint.endpoint_id, secret=endpoint.secret, **{f: getattr(endpoint, f) for f in _VIEW_FIELDS})


def delivery_view(d: webhooks.Delivery) -> DeliveryView:
    return DeliveryView(
        id=d.delivery_id, event=d.event_name, status=d.status, event_id=d.event_id, position=d.position,  # type: ignore[arg-type]  # the stored status is one of the literals (the table's CHECK)
        next_attempt_at=d.next_attempt_at if d.status == "pending" else None, delivered_at=d.delivered_at,
        created_at=d.created_at, attempts=[AttemptView(**msgspec.structs.asdict(a)) for a in d.attempt_log],
        payload=msgspec.json.decode(d.payload),
    )


class WebhookController(Controller):
    path = "/webhooks"
    tags = ["webhooks"]

    # The secret is shown once: an idempotent replay of this response has `secret: null`.
    @post("/", opt={**MANAGE, "secret_fields": ("secret",)}, operation_id="createWebhook", status_code=201)
    async def create(
        self, request: Request, pool: shared.Pool, webhook_settings: shared.WebhookSettings,
        data: JSONBody[WebhookCreate],
    ) -> Response[Envelope[WebhookWithSecret]]:
        """Register a webhook endpoint; its signing secret is in this response only."""
        endpoint = await webhooks.create_endpoint(
            pool, request.user.org_id, webhook_settings,
            url=data.url, events=data.events, description=data.description,
        )
        return ok(request, with_secret(endpoint), status=201)

    @get("/", opt=MANAGE, operation_id="listWebhooks")
    async def list_webhooks(self, request: Request, pool: shared.Pool) -> Response[Envelope[list[WebhookView]]]:
        """List your organization's webhook endpoints (never their secrets)."""
        found = await webhooks.list_endpoints(pool, request.user.org_id)
        return ok(request, [view(e) for e in found])

    @get("/{webhook_id:int}", opt=MANAGE, operation_id="getWebhook")
    async def get_webhook(self, request: Request, pool: shared.Pool, webhook_id: WebhookId) -> Response[Envelope[WebhookView]]:
        """One webhook endpoint, with whether (and why) it is disabled."""
        return ok(request, view(await webhooks.get_endpoint(pool, request.user.org_id, webhook_id)))

    @patch("/{webhook_id:int}", opt=MANAGE, operation_id="updateWebhook")
    async def change(
        self, request: Request, pool: shared.Pool, webhook_settings: shared.WebhookSettings, webhook_id: WebhookId,
        data: JSONBody[WebhookPatch],
    ) -> Response[Envelope[WebhookWithSecret]]:
        """Change url, events, description or enabled; `rotate_secret: true` returns a new secret once."""
        given = {f: v for f in ("url", "events", "description", "enabled") if (v := getattr(data, f)) is not msgspec.UNSET}
        if not given and not data.rotate_secret:
            raise errors.ValidationFailed("No recognized fields in the request body", code="no_fields")
        endpoint = await webhooks.update_endpoint(
            pool, request.user.org_id, webhook_id, webhook_settings,
            rotate_secret=data.rotate_secret, **given,
        )
        return ok(request, with_secret(endpoint))

    @delete("/{webhook_id:int}", opt=MANAGE, operation_id="deleteWebhook", status_code=200)
    async def remove(self, request: Request, pool: shared.Pool, webhook_id: WebhookId) -> Response[Envelope[dict]]:
        """Delete a webhook endpoint and its deliveries; nothing more is sent to it."""
        await webhooks.delete_endpoint(pool, request.user.org_id, webhook_id)
        return ok(request, {"id": webhook_id, "deleted": True})

    @get("/{webhook_id:int}/deliveries", opt=MANAGE, operation_id="listWebhookDeliveries")
    async def deliveries(
        self, request: Request, pool: shared.Pool, webhook_id: WebhookId, status: StatusFilter = None, page: Page = 1,
        per_page: PerPage = 50,
    ) -> Response[ListEnvelope[DeliveryView]]:
        """An endpoint's deliveries, newest first, each with every attempt (time, status or error, duration)."""
        found, total = await webhooks.list_deliveries(
            pool, request.user.org_id, webhook_id, status=status, page=page, per_page=per_page
        )
        return listed(request, [delivery_view(d) for d in found], page=page, per_page=per_page, total=total)

    @post("/{webhook_id:int}/deliveries/{delivery_id:uuid}/retry", opt=MANAGE, operation_id="retryWebhookDelivery",
          status_code=202)
    async def retry(
        self, request: Request, pool: shared.Pool, webhook_id: WebhookId, delivery_id: DeliveryId
    ) -> Response[Envelope[DeliveryQueued]]:
        """Attempt a failed (or delivered) delivery once more, now, with the same id and body."""
        await webhooks.retry_delivery(pool, request.user.org_id, webhook_id, delivery_id)
        return ok(request, DeliveryQueued(delivery_id=delivery_id), status=202)

    @post("/{webhook_id:int}/test", opt=MANAGE, operation_id="testWebhook", status_code=202)
    async def test(self, request: Request, pool: shared.Pool, webhook_id: WebhookId) -> Response[Envelope[DeliveryQueued]]:
        """Send a `ping` delivery to the endpoint (one attempt; see its deliveries for the outcome)."""
        delivery_id = await webhooks.ping(pool, request.user.org_id, webhook_id)
        return ok(request, DeliveryQueued(delivery_id=delivery_id), status=202)
