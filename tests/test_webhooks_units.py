"""Webhooks without servers: names, stock.low crossings, signatures, targets, settings."""

from __future__ import annotations

import base64
import hashlib
import hmac
import ipaddress
import json
import time
import uuid
from datetime import UTC, datetime

import pytest
from standardwebhooks import Webhook

from consumers.webhooks import fanout, payloads
from consumers.webhooks.levels import ItemLevel, evolve
from consumers.webhooks.names import EVENT_NAMES, check_event_names, names_of
from consumers.webhooks.settings import DEFAULT_RETRY_SCHEDULE, WebhookSettings
from consumers.webhooks.signing import new_secret, signature_headers
from consumers.webhooks.targets import check_target, check_url, why_forbidden
from ledger.errors import InvalidWebhookUrl, TargetNotAllowed, UnknownWebhookEvent
from schemas import (
    EventEnvelope,
    EventMetadata,
    ItemAttributes,
    ItemCreated,
    ItemUpdated,
    JobCompleted,
    LocationAttributes,
    LocationCreated,
    StockAdded,
    StockAdjusted,
    StockReleased,
    StockRemoved,
    StockReserved,
    TransferredIn,
    TransferredOut,
)


def verify_like_seed_000(payload: bytes, signature: str, secret: str) -> bool:
    """Seed 000's `verifyWebhook`: createHmac('sha256', secret).update(payload).digest('hex') === signature."""
    return hmac.new(secret.encode("utf-8"), payload, hashlib.sha256).hexdigest() == signature


def envelope(event, position: int, org_id: int = 1) -> EventEnvelope:
    stream = f"location-{event.location_id}" if isinstance(event, LocationCreated) else f"item-{event.item_id}"
    return EventEnvelope(
        event_id=uuid.uuid4(), position=position, org_id=org_id, stream=stream, version=position,
        type=type(event).__struct_config__.tag, data=event, metadata=EventMetadata(), recorded_at=datetime.now(UTC),
        prev_hash="", hash="",
    )


# --- names ----------------------------------------------------------------------------


def test_every_movement_is_stock_changed_and_its_own_name():
    transfer = uuid.uuid4()
    cases = {
        StockAdded(item_id=1, location_id=1, quantity=1): "stock.added",
        StockRemoved(item_id=1, location_id=1, quantity=1): "stock.removed",
        StockAdjusted(item_id=1, location_id=1, quantity=-1): "stock.adjusted",
        TransferredOut(item_id=1, location_id=1, to_location_id=2, quantity=1, transfer_id=transfer): "stock.transfer_out",
        TransferredIn(item_id=1, location_id=2, from_location_id=1, quantity=1, transfer_id=transfer): "stock.transfer_in",
        StockReserved(item_id=1, location_id=1, job_id=1, quantity=1): "stock.reserved",
        StockReleased(item_id=1, location_id=1, job_id=1, quantity=1): "stock.released",
        JobCompleted(item_id=1, location_id=1, job_id=1, quantity=1, from_reserved=1): "stock.job_completed",
    }
    for event, name in cases.items():
        assert names_of(event) == ["item.stock_changed", name]
    assert names_of(LocationCreated(location_id=1, attributes=LocationAttributes(location_name="A"))) == ["location.created"]
    assert set(EVENT_NAMES) >= {"item.created", "item.updated", "item.deleted", "location.updated", "stock.low"}


def test_unknown_event_names_are_refused_by_name():
    assert check_event_names(["*", "stock.low", "stock.low"]) == ["*", "stock.low"]
    with pytest.raises(UnknownWebhookEvent) as refused:
        check_event_names(["item.created", "part.created"])
    assert refused.value.code == "unknown_event" and refused.value.extra["unknown"] == ["part.created"]


# --- stock.low ------------------------------------------------------------------------


def test_stock_low_fires_once_per_crossing_from_above():
    attributes = ItemAttributes(part_number="F-1", part_name="Filter", min_stock_level=10)
    unwatched = ItemAttributes(part_number="F-1", part_name="Filter", min_stock_level=0)
    events = [
        (ItemCreated(item_id=7, attributes=attributes), False),  # 0 <= 10, but nothing was stocked yet
        (StockAdded(item_id=7, location_id=1, quantity=20), False),
        (StockRemoved(item_id=7, location_id=1, quantity=5), False),  # 15
        (StockReserved(item_id=7, location_id=1, job_id=1, quantity=10), False),  # on hand unchanged
        # A transfer moves stock between two locations of the item: its total never dips.
        (TransferredOut(item_id=7, location_id=1, to_location_id=2, quantity=10, transfer_id=uuid.uuid4()), False),
        (TransferredIn(item_id=7, location_id=2, from_location_id=1, quantity=10, transfer_id=uuid.uuid4()), False),  # 15
        (StockRemoved(item_id=7, location_id=1, quantity=5), True),  # 10: at the level
        (StockAdded(item_id=7, location_id=1, quantity=5), False),  # 15
        (StockAdjusted(item_id=7, location_id=1, quantity=-6), True),  # 9
        (StockRemoved(item_id=7, location_id=1, quantity=1), False),  # 8: still low, no second fire
        (StockAdded(item_id=7, location_id=1, quantity=3), False),  # 11: above again
        (JobCompleted(item_id=7, location_id=1, job_id=1, quantity=4, from_reserved=4), True),  # 7
        (ItemUpdated(item_id=7, attributes=unwatched, changed=["min_stock_level"]), False),
        (ItemUpdated(item_id=7, attributes=attributes, changed=["min_stock_level"]), True),  # the level raised over 7
    ]
    level = ItemLevel(org_id=1, item_id=7)
    for position, (event, fires) in enumerate(events, start=1):
        level, crossed = evolve(level, envelope(event, position))
        assert crossed is fires, (position, event)
    assert level.quantity_on_hand == 7 and level.low and level.position == len(events)


def test_an_event_already_applied_to_a_level_records_nothing_again():
    item = envelope(ItemCreated(item_id=3, attributes=ItemAttributes(part_number="A", part_name="A", min_stock_level=5)), 1)
    add = envelope(StockAdded(item_id=3, location_id=1, quantity=6), 2)
    remove = envelope(StockRemoved(item_id=3, location_id=1, quantity=2), 3)
    endpoint = fanout.EndpointFilter(endpoint_id=9, org_id=1, events=["*"], created_at=datetime(2000, 1, 1, tzinfo=UTC))
    planned, levels = fanout.plan([item, add, remove], {1: [endpoint]}, {})
    names = [p.event_name for p in planned]
    assert names == ["item.created", "item.stock_changed", "stock.added", "item.stock_changed", "stock.removed", "stock.low"]
    low = json.loads(planned[-1].payload)
    assert low["data"]["quantity_on_hand"] == 4 and low["data"]["min_stock_level"] == 5 and low["data"]["type"] == "Remove"
    again, unchanged = fanout.plan([add, remove], {1: [endpoint]}, levels)  # redelivered
    assert again == [] and unchanged == {}
    # An endpoint made after an event was recorded does not get it.
    late = fanout.EndpointFilter(endpoint_id=10, org_id=1, events=["*"], created_at=datetime.now(UTC))
    assert fanout.plan([item], {1: [late]}, {})[0] == []


# --- payload and signatures -----------------------------------------------------------


def test_a_payload_reserialized_by_javascript_is_the_body_that_was_signed():
    attributes = ItemAttributes(part_number="A", part_name="Ä → filter", cost_per_unit=12.0, price_per_unit=12.5)
    created = envelope(ItemCreated(item_id=1, attributes=attributes), 1)
    delivery = payloads.delivery_id(1, created.event_id, "item.created")
    body = payloads.body(delivery, "item.created", created.recorded_at, 1, 1, payloads.event_data(created, "item.created", None))
    assert list(json.loads(body)) == ["id", "event", "timestamp", "organization_id", "position", "data"]
    # JSON.stringify(JSON.parse(body)) with JavaScript's number formatting (12.0 is `12`):
    assert json.dumps(json.loads(body), separators=(",", ":"), ensure_ascii=False).encode() == body
    assert payloads.delivery_id(1, created.event_id, "item.created") == delivery  # stable


def test_signatures_verify_with_seed_000_and_standard_webhooks_during_rotation():
    old, new, body = new_secret(), new_secret(), b'{"id":"x","event":"stock.added"}'
    assert new.startswith("whsec_") and len(base64.b64decode(new.removeprefix("whsec_"))) == 32
    headers = signature_headers("d-1", "stock.added", body, int(time.time()), new, old)
    assert verify_like_seed_000(body, headers["X-Webhook-Signature"], new)
    assert verify_like_seed_000(body, headers["X-Webhook-Signature-Previous"], old)
    assert len(headers["webhook-signature"].split(" ")) == 2
    for secret in (old, new):
        Webhook(secret).verify(body, headers)
    alone = signature_headers("d-1", "stock.added", body, int(time.time()), new)
    assert "X-Webhook-Signature-Previous" not in alone and " " not in alone["webhook-signature"]


# --- targets --------------------------------------------------------------------------


@pytest.mark.parametrize("address", [
    "127.0.0.1", "10.1.2.3", "172.16.0.1", "192.168.1.1", "169.254.169.254", "0.0.0.0", "224.0.0.1",
    "100.64.0.1", "::1", "::", "fe80::1", "fc00::1", "ff02::1", "::ffff:127.0.0.1", "::ffff:10.0.0.1",
])
def test_internal_addresses_are_forbidden(address):
    assert why_forbidden(ipaddress.ip_address(address)) is not None


@pytest.mark.parametrize("address", ["93.184.216.34", "8.8.8.8", "2606:4700:4700::1111"])
def test_public_addresses_are_allowed(address):
    assert why_forbidden(ipaddress.ip_address(address)) is None


@pytest.mark.parametrize("url", [
    "ftp://example.com/x", "example.com/hook", "http:///nohost", "https://user:pw@example.com/",
    "https://example.com:99999/", "https://exa mple.com/", "https://example.com/" + "a" * 2100,
])
def test_malformed_urls_are_refused(url):
    with pytest.raises(InvalidWebhookUrl):
        check_url(url)


async def test_host_names_are_resolved_before_they_are_judged():
    with pytest.raises(TargetNotAllowed):
        await check_target("http://localhost:8080/hook", allow_private=False)
    with pytest.raises(TargetNotAllowed):
        await check_target("https://[::1]/hook", allow_private=False)
    await check_target("http://localhost:8080/hook", allow_private=True)


def test_settings_come_from_the_environment():
    assert WebhookSettings.from_env({}).retry_schedule == DEFAULT_RETRY_SCHEDULE
    settings = WebhookSettings.from_env({
        "LEDGER_WEBHOOK_ALLOW_PRIVATE": "1", "LEDGER_WEBHOOK_RETRY_SCHEDULE": "0, 0.2,0.2",
        "LEDGER_WEBHOOK_TIMEOUT": "2.5", "LEDGER_WEBHOOK_ENDPOINT_CONCURRENCY": "2",
    })
    assert settings.allow_private and settings.retry_schedule == (0.0, 0.2, 0.2)
    assert settings.timeout == 2.5 and settings.endpoint_concurrency == 2
    with pytest.raises(ValueError):
        WebhookSettings.from_env({"LEDGER_WEBHOOK_RETRY_SCHEDULE": "0,-5"})
