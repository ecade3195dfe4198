"""Webhook secrets and the signature headers of a delivery.

Two schemes, both over the exact body bytes:
- `X-Webhook-Signature`: hex HMAC-SHA256 keyed with the whole secret string as UTF-8,
  exactly what seed 000's snippet recomputes (`createHmac('sha256', secret)`).
- Standard Webhooks: `webhook-signature: v1,<base64 HMAC-SHA256>` of
  `"<id>.<timestamp>.<body>"`, keyed with the base64-decoded bytes after `whsec_`, with
  one `v1,...` per valid secret (space-separated) while a rotated-out secret is in grace.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets

PREFIX = "whsec_"


def new_secret() -> str:
    """`whsec_` and 32 random bytes in base64: the Standard Webhooks format."""
    return PREFIX + base64.b64encode(secrets.token_bytes(32)).decode()


def hex_signature(secret: str, body: bytes) -> str:
    return hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def standard_signature(secret: str, message_id: str, timestamp: int, body: bytes) -> str:
    key = base64.b64decode(secret.removeprefix(PREFIX))
    digest = hmac.new(key, f"{message_id}.{timestamp}.".encode() + body, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode()


def signature_headers(
    delivery_id: str, event_name: str, body: bytes, timestamp: int, secret: str, previous_secret: str | None = None
) -> dict[str, str]:
    """Every header a delivery attempt carries. `timestamp` is the attempt's (unix seconds):
    Standard Webhooks receivers refuse one more than 5 minutes off, so a captured delivery
    cannot be sent to them again later."""
    valid = [secret] + ([previous_secret] if previous_secret else [])
    headers = {
        "Content-Type": "application/json",
        "X-Webhook-Id": delivery_id,
        "X-Webhook-Timestamp": str(timestamp),
        "X-Webhook-Event": event_name,
        # One value, as seed 000's receiver compares the header whole: the current secret's.
        "X-Webhook-Signature": hex_signature(secret, body),
        "webhook-id": delivery_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": " ".join(standard_signature(s, delivery_id, timestamp, body) for s in valid),
    }
    if previous_secret:
        # During a rotation's grace a receiver still holding the old secret can check this.
        headers["X-Webhook-Signature-Previous"] = hex_signature(previous_secret, body)
    return headers
