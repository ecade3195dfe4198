"""`/api/v1/webhooks`: registering endpoints, their checks, scopes and organizations."""

from __future__ import annotations

import base64
import uuid
from datetime import UTC, datetime, timedelta

import pytest

from consumers.webhooks import WebhookSettings, create_endpoint, ping, webhook_status
from consumers.webhooks.statements import PRUNE_WEBHOOK_DELIVERIES
from ledger.settings import Settings
from tests.support.api_client import api_client, key_for

V1 = "/api/v1/webhooks"
PUBLIC_URL = "https://93.184.216.34/hooks/ledger"  # an address literal: no DNS needed


def ok(r, status: int = 200) -> dict:
    assert r.status_code == status, r.text
    body = r.json()
    assert body["success"] is True and body["request_id"], body
    return body["data"]


def refused(r, status: int, code: str) -> dict:
    assert r.status_code == status, f"expected {status} {code}, got {r.status_code}: {r.text}"
    body = r.json()
    assert body["success"] is False and body["error"] == code and body["message"], body
    return body


@pytest.fixture
def allow_private(monkeypatch):
    monkeypatch.setenv("LEDGER_WEBHOOK_ALLOW_PRIVATE", "1")


@pytest.fixture
def refuse_private(monkeypatch):
    monkeypatch.delenv("LEDGER_WEBHOOK_ALLOW_PRIVATE", raising=False)


async def test_a_webhook_is_registered_listed_changed_rotated_and_deleted(database_url, pool, refuse_private):
    async with api_client(database_url, projector=False) as client:
        key = await key_for(pool, scopes=("webhooks:manage",))
        body = {"url": PUBLIC_URL, "events": ["stock.low", "item.created"], "description": "ERP"}
        created = ok(await client.post(V1, json=body, headers=key), 201)
        secret = created["secret"]
        assert secret.startswith("whsec_") and len(base64.b64decode(secret.removeprefix("whsec_"))) == 32
        assert created["url"] == PUBLIC_URL and created["events"] == ["stock.low", "item.created"]
        assert created["enabled"] is True and created["disabled_reason"] is None
        webhook = f"{V1}/{created['id']}"

        listed = ok(await client.get(V1, headers=key))
        assert [w["id"] for w in listed] == [created["id"]] and "secret" not in listed[0]
        shown = ok(await client.get(webhook, headers=key))
        assert "secret" not in shown and shown["description"] == "ERP"

        changed = ok(await client.patch(webhook, json={"events": ["*"], "description": None}, headers=key))
        assert changed["events"] == ["*"] and changed["description"] is None and changed["secret"] is None

        rotated = ok(await client.patch(webhook, json={"rotate_secret": True}, headers=key))
        assert rotated["secret"].startswith("whsec_") and rotated["secret"] != secret
        grace_ends = datetime.fromisoformat(rotated["previous_secret_expires_at"].replace("Z", "+00:00"))
        assert abs(grace_ends - (datetime.now(UTC) + timedelta(hours=24))) < timedelta(minutes=1)

        disabled = ok(await client.patch(webhook, json={"enabled": False}, headers=key))
        assert disabled["enabled"] is False and disabled["disabled_reason"] == "disabled by request"
        enabled = ok(await client.patch(webhook, json={"enabled": True}, headers=key))
        assert enabled["enabled"] is True and enabled["disabled_reason"] is None and enabled["disabled_at"] is None

        refused(await client.patch(webhook, json={}, headers=key), 400, "no_fields")
        assert ok(await client.delete(webhook, headers=key)) == {"id": created["id"], "deleted": True}
        refused(await client.get(webhook, headers=key), 404, "not_found")


async def test_a_ping_is_queued_and_listed_with_its_attempts(database_url, pool, refuse_private):
    async with api_client(database_url, projector=False) as client:
        key = await key_for(pool, scopes=("webhooks:manage",))
        webhook = f"{V1}/{ok(await client.post(V1, json={'url': PUBLIC_URL, 'events': ['*']}, headers=key), 201)['id']}"
        queued = ok(await client.post(f"{webhook}/test", headers=key), 202)
        page = await client.get(f"{webhook}/deliveries", params={"per_page": 10}, headers=key)
        [delivery] = ok(page)
        assert page.json()["pagination"] == {"page": 1, "per_page": 10, "total": 1, "total_pages": 1}
        assert delivery["id"] == queued["delivery_id"] and delivery["event"] == "ping"
        assert delivery["status"] == "pending" and delivery["attempts"] == []
        assert delivery["payload"]["id"] == delivery["id"] and delivery["payload"]["data"]["webhook_id"]
        assert ok(await client.get(f"{webhook}/deliveries", params={"status": "failed"}, headers=key)) == []
        # Still pending: nothing to retry. An unknown delivery is not found.
        refused(await client.post(f"{webhook}/deliveries/{delivery['id']}/retry", headers=key), 409, "delivery_pending")
        refused(await client.post(f"{webhook}/deliveries/{uuid.uuid4()}/retry", headers=key), 404, "not_found")
        ok(await client.patch(webhook, json={"enabled": False}, headers=key))
        refused(await client.post(f"{webhook}/test", headers=key), 409, "webhook_disabled")


async def test_urls_events_and_internal_targets_are_refused_with_their_codes(database_url, pool, refuse_private):
    async with api_client(database_url, projector=False) as client:
        key = await key_for(pool, scopes=("webhooks:manage",))

        async def create(url: str, events=("*",)):
            return await client.post(V1, json={"url": url, "events": list(events)}, headers=key)

        for url in ("ftp://example.com/hook", "not a url", "https://user:secret@example.com/", "https://example.com/" + "x" * 2100):
            refused(await create(url), 400, "invalid_webhook_url")
        for url in ("http://127.0.0.1:9000/hook", "http://localhost/hook", "http://[::1]/hook", "http://10.0.0.7/hook",
                    "http://169.254.169.254/latest/meta-data", "http://0.0.0.0/", "http://[::ffff:127.0.0.1]/"):
            refused(await create(url), 400, "target_not_allowed")
        body = refused(await create(PUBLIC_URL, ["item.created", "part.created"]), 400, "unknown_event")
        assert body["unknown"] == ["part.created"]
        refused(await create(PUBLIC_URL, []), 400, "validation_failed")
        refused(await client.post(V1, json={"url": PUBLIC_URL, "events": ["*"], "secret": "mine"}, headers=key), 400, "validation_failed")

        webhook = f"{V1}/{ok(await create(PUBLIC_URL), 201)['id']}"
        refused(await client.patch(webhook, json={"url": "http://127.0.0.1/"}, headers=key), 400, "target_not_allowed")
        refused(await client.patch(webhook, json={"events": ["nope"]}, headers=key), 400, "unknown_event")


async def test_internal_targets_are_accepted_when_the_operator_allows_them(database_url, pool, allow_private):
    webhooks = Settings.from_env().webhooks()  # read as `ledger serve` reads it, and handed to the API
    async with api_client(database_url, projector=False, webhooks=webhooks) as client:
        key = await key_for(pool, scopes=("webhooks:manage",))
        ok(await client.post(V1, json={"url": "http://127.0.0.1:9000/hook", "events": ["*"]}, headers=key), 201)


async def test_webhook_routes_need_the_webhooks_manage_scope(database_url, pool, refuse_private):
    async with api_client(database_url, projector=False) as client:
        key = await key_for(pool, scopes=("inventory:write", "keys:manage"))
        refused(await client.get(V1, headers=key), 403, "insufficient_scope")
        refused(await client.post(V1, json={"url": PUBLIC_URL, "events": ["*"]}, headers=key), 403, "insufficient_scope")
        refused(await client.get(V1), 401, "unauthorized")


async def test_another_organizations_webhooks_are_not_found(database_url, pool, refuse_private):
    async with api_client(database_url, projector=False) as client:
        acme = await key_for(pool, "acme", scopes=("webhooks:manage",))
        other = await key_for(pool, "globex", scopes=("webhooks:manage",))
        webhook = f"{V1}/{ok(await client.post(V1, json={'url': PUBLIC_URL, 'events': ['*']}, headers=acme), 201)['id']}"
        delivery = ok(await client.post(f"{webhook}/test", headers=acme), 202)["delivery_id"]

        assert ok(await client.get(V1, headers=other)) == []
        for method, path, body in (
            ("GET", webhook, None), ("PATCH", webhook, {"enabled": False}), ("PATCH", webhook, {"rotate_secret": True}),
            ("DELETE", webhook, None), ("GET", f"{webhook}/deliveries", None), ("POST", f"{webhook}/test", None),
            ("POST", f"{webhook}/deliveries/{delivery}/retry", None),
        ):
            refused(await client.request(method, path, json=body, headers=other), 404, "not_found")
        assert ok(await client.get(webhook, headers=acme))["enabled"] is True  # untouched


async def test_an_idempotent_replay_of_a_creation_does_not_show_the_secret_again(database_url, pool, refuse_private):
    async with api_client(database_url, projector=False) as client:
        key = {**await key_for(pool, scopes=("webhooks:manage",)), "Idempotency-Key": "create-hook-1"}
        body = {"url": PUBLIC_URL, "events": ["*"]}
        first = ok(await client.post(V1, json=body, headers=key), 201)
        replay = await client.post(V1, json=body, headers=key)
        assert replay.headers.get("Idempotent-Replayed") == "true"
        again = ok(replay, 201)
        assert again["id"] == first["id"] and first["secret"] and again["secret"] is None
        assert len(ok(await client.get(V1, headers=key))) == 1


async def test_settled_deliveries_are_forgotten_after_their_retention_and_status_counts_what_is_owed(pool, org_id):
    endpoint = await create_endpoint(pool, org_id, WebhookSettings(), url=PUBLIC_URL, events=["*"])
    old, recent, owed = [await ping(pool, org_id, endpoint.endpoint_id) for _ in range(3)]
    await pool.execute(
        "UPDATE webhook_deliveries SET status = 'failed', created_at = now() - interval '31 days' WHERE delivery_id = $1", old
    )
    await pool.execute("UPDATE webhook_deliveries SET status = 'delivered' WHERE delivery_id = $1", recent)
    await pool.execute("UPDATE webhook_deliveries SET created_at = now() - interval '40 days' WHERE delivery_id = $1", owed)
    await pool.execute(PRUNE_WEBHOOK_DELIVERIES, WebhookSettings().retention)
    left = {r["delivery_id"] for r in await pool.fetch("SELECT delivery_id FROM webhook_deliveries")}
    assert left == {recent, owed}  # a pending delivery is never forgotten
    status = await webhook_status(pool)
    assert status["pending"] == 1 and status["disabled_endpoints"] == 0 and status["emitter_lag"] == 0
