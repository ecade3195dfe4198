"""Webhook refusals, in the one error hierarchy (`ledger.errors`), each with its API code."""

from __future__ import annotations

from ledger import errors


class InvalidWebhookUrl(errors.BadRequest):
    code = "invalid_webhook_url"
    default_message = "The webhook URL must be an absolute http or https URL"


class TargetNotAllowed(errors.BadRequest):
    code = "target_not_allowed"
    default_message = "The webhook URL resolves to a private, loopback or otherwise internal address"


class TargetUnresolvable(errors.BadRequest):
    code = "target_unresolvable"
    default_message = "The webhook URL's host name does not resolve"


class UnknownEvent(errors.BadRequest):
    code = "unknown_event"
    default_message = "Unknown webhook event name"


class TooManyWebhooks(errors.Conflict):
    code = "too_many_webhooks"
    default_message = "Your organization has as many webhooks as it may have"


class WebhookDisabled(errors.Conflict):
    code = "webhook_disabled"
    default_message = "The webhook is disabled; enable it first (PATCH enabled: true)"


class DeliveryPending(errors.Conflict):
    code = "delivery_pending"
    default_message = "The delivery is still pending; it will be attempted as scheduled"
