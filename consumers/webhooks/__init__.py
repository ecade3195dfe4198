"""Webhooks (DESIGN 8): endpoints an organization registers, the emitter that turns ledger
events (from NATS) into deliveries, and the deliverer that sends them, signed, retried.

Words: an *endpoint* is a registered URL (the API's `/webhooks/{id}`); a *delivery* is one
webhook event name for one endpoint, with a stable id; an *attempt* is one HTTP POST of a
delivery. The API manages endpoints and deliveries through the functions here; `ledger
serve` runs a `WebhookWorker`.
"""

from consumers.webhooks.deliveries import (
    Attempt,
    Delivery,
    list_deliveries,
    ping,
    retry_delivery,
)
from consumers.webhooks.endpoints import (
    Endpoint,
    create_endpoint,
    delete_endpoint,
    get_endpoint,
    list_endpoints,
    update_endpoint,
)
from consumers.webhooks.metrics import webhook_status
from consumers.webhooks.names import ALL, EVENT_NAMES
from consumers.webhooks.settings import WebhookSettings
from consumers.webhooks.worker import WebhookWorker

__all__ = [
    "ALL",
    "EVENT_NAMES",
    "Attempt",
    "Delivery",
    "Endpoint",
    "WebhookSettings",
    "WebhookWorker",
    "create_endpoint",
    "delete_endpoint",
    "get_endpoint",
    "list_deliveries",
    "list_endpoints",
    "ping",
    "retry_delivery",
    "update_endpoint",
    "webhook_status",
]
