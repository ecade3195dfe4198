"""Webhooks end to end: commands recorded in PostgreSQL, published by the real relay to a
private nats-server, turned into deliveries by the emitter, and sent by the deliverer to
a real HTTP receiver on 127.0.0.1 (tests/support/webhook_receiver.py).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import json
import time
import uuid
from collections import Counter
from datetime import datetime

import msgspec
import pytest
from standardwebhooks import Webhook
from standardwebhooks.webhooks import WebhookVerificationError

from consumers.relay import Relay
from consumers.webhooks import (
    WebhookSettings,
    WebhookWorker,
    create_endpoint,
    update_endpoint,
)
from ledger.commands import (
    AddStock,
    AdjustStock,
    CompleteJob,
    Line,
    ReleaseStock,
    RemoveStock,
    ReserveStock,
    TransferStock,
)
from tests.support.api_client import api_client, key_for
from tests.support.webhook_receiver import Received, Receiver
from tests.support.world import make_item, make_location, stocked

# Tests deliver to 127.0.0.1, so they allow internal targets; retries come fast.
FAST = WebhookSettings(allow_private=True, retry_schedule=(0.0, 0.2, 0.2), timeout=2.0, poll_interval=0.2)


@contextlib.asynccontextmanager
async def running(database_url: str, nats_url: str, settings: WebhookSettings = FAST, workers: int = 1):
    relay = Relay(database_url, nats_url)
    relay.start()
    started = [WebhookWorker(database_url, nats_url, settings) for _ in range(workers)]
    for worker in started:
        worker.start()
    try:
        yield started
    finally:
        for worker in started:
            await worker.stop()
        await relay.stop()


def seed_000_verifies(payload: bytes, signature: str, secret: str) -> bool:
    """Seed 000's snippet in Python: createHmac('sha256', secret).update(payload).digest('hex') === signature."""
    return hmac.new(secret.encode("utf-8"), payload, hashlib.sha256).hexdigest() == signature


def javascript_restringified(body: bytes) -> bytes:
    """What seed 000's Express receiver signs: JSON.stringify(req.body)."""
    return json.dumps(json.loads(body), separators=(",", ":"), ensure_ascii=False).encode()


async def wait_until(predicate, timeout: float = 15.0, interval: float = 0.05):
    deadline = time.monotonic() + timeout
    while not (result := await predicate()):
        assert time.monotonic() < deadline, f"timed out waiting for {predicate}"
        await asyncio.sleep(interval)
    return result


async def delivery_statuses(pool, endpoint_id: int) -> list[str]:
    return [r["status"] for r in await pool.fetch("SELECT status FROM webhook_deliveries WHERE endpoint_id = $1", endpoint_id)]


def names(received: list[Received]) -> list[str]:
    return [r.json()["event"] for r in received]


async def test_deliveries_are_signed_as_seed_000_and_standard_webhooks_verify(store, org_id, pool, database_url, private_nats):
    async with Receiver() as everything, Receiver() as removals:
        endpoint = await create_endpoint(pool, org_id, FAST, url=everything.url, events=["*"])
        only_removals = await create_endpoint(pool, org_id, FAST, url=removals.url, events=["stock.removed"])
        async with running(database_url, private_nats.url):
            warehouse, van = await make_location(store, org_id, "Warehouse"), await make_location(store, org_id, "Van")
            item = await make_item(store, org_id, min_stock_level=5, cost_per_unit=12.0, price_per_unit=19.5)
            await stocked(store, org_id, item, warehouse, 10)
            for command in (
                RemoveStock(item_id=item, location_id=warehouse, quantity=2),
                AdjustStock(item_id=item, location_id=warehouse, quantity=-1, reason="count"),
                TransferStock(item_id=item, from_location_id=warehouse, to_location_id=van, quantity=2, transfer_id=str(uuid.uuid4())),
                ReserveStock(job_id=7, lines=[Line(item_id=item, location_id=warehouse, quantity=3)]),
                ReleaseStock(job_id=7, lines=[Line(item_id=item, location_id=warehouse, quantity=1)]),
                CompleteJob(job_id=7),  # consumes the 2 still held: 10-2-1-2 = 5 on hand, at its level
                # (the transfer moved 2 between locations: the total never dipped)
            ):
                await store.execute(org_id, command)
            expected = [
                "location.created", "location.created", "item.created",
                "item.stock_changed", "stock.added", "item.stock_changed", "stock.removed",
                "item.stock_changed", "stock.adjusted", "item.stock_changed", "stock.transfer_out",
                "item.stock_changed", "stock.transfer_in", "item.stock_changed", "stock.reserved",
                "item.stock_changed", "stock.released", "item.stock_changed", "stock.job_completed", "stock.low",
            ]
            await everything.wait_for(lambda r: len(r) >= len(expected))
            await removals.wait_for(lambda r: len(r) >= 1)
            await asyncio.sleep(0.5)  # nothing more comes

    assert Counter(names(everything.received)) == Counter(expected)
    assert names(removals.received) == ["stock.removed"]
    events = {r["event_id"]: r for r in await pool.fetch("SELECT event_id, position, recorded_at FROM events")}
    for request, secret in [(r, endpoint.secret) for r in everything.received] + [(r, only_removals.secret) for r in removals.received]:
        headers, payload = request.headers, request.json()
        assert list(payload) == ["id", "event", "timestamp", "organization_id", "position", "data"]
        assert headers["content-type"] == "application/json"
        assert headers["x-webhook-id"] == headers["webhook-id"] == payload["id"]
        assert headers["x-webhook-event"] == payload["event"]
        assert headers["x-webhook-timestamp"] == headers["webhook-timestamp"]
        assert abs(int(headers["webhook-timestamp"]) - time.time()) < 30
        assert seed_000_verifies(request.body, headers["x-webhook-signature"], secret)
        assert seed_000_verifies(javascript_restringified(request.body), headers["x-webhook-signature"], secret)
        assert Webhook(secret).verify(request.body, headers) == payload
        event = events[uuid.UUID(payload["data"]["event_id"])]
        assert payload["organization_id"] == org_id and payload["position"] == event["position"]
        assert datetime.fromisoformat(payload["timestamp"].replace("Z", "+00:00")) == event["recorded_at"]
    with pytest.raises(WebhookVerificationError):
        Webhook(only_removals.secret).verify(everything.received[0].body, everything.received[0].headers)
    low = next(r.json() for r in everything.received if r.json()["event"] == "stock.low")
    assert low["data"]["item_id"] == item and low["data"]["quantity_on_hand"] == 5 and low["data"]["min_stock_level"] == 5
    assert low["data"]["type"] == "Job_complete" and low["data"]["part_number"]
    # Deliveries to one endpoint may arrive in any order; each carries the item's total after its event.
    changed = sorted((r.json()["position"], r.json()["data"]["quantity_on_hand"])
                     for r in everything.received if r.json()["event"] == "item.stock_changed")
    assert [quantity for _, quantity in changed] == [10, 8, 7, 7, 7, 7, 7, 5]


async def test_a_failing_endpoint_is_retried_with_the_same_id_and_every_attempt_is_recorded(store, org_id, pool, database_url, private_nats):
    answers = iter([500, 500, 200])
    async with Receiver(lambda r: next(answers)) as receiver:
        endpoint = await create_endpoint(pool, org_id, FAST, url=receiver.url, events=["location.created"])
        async with running(database_url, private_nats.url):
            await make_location(store, org_id)
            await receiver.wait_for(lambda r: len(r) >= 3)
            await wait_until(lambda: _equals(delivery_statuses(pool, endpoint.endpoint_id), ["delivered"]))
        first, second, third = receiver.received
        assert first.headers["webhook-id"] == second.headers["webhook-id"] == third.headers["webhook-id"]
        assert first.body == second.body == third.body
        for request in receiver.received:
            Webhook(endpoint.secret).verify(request.body, request.headers)
        assert second.at - first.at >= 0.15 and third.at - second.at >= 0.15  # 0.2 s each, less 10% jitter

        async with api_client(database_url, projector=False) as client:
            headers = await key_for(pool, scopes=("webhooks:manage",))
            page = (await client.get(f"/api/v1/webhooks/{endpoint.endpoint_id}/deliveries", headers=headers)).json()
    [delivery] = page["data"]
    assert delivery["id"] == first.headers["webhook-id"] and delivery["status"] == "delivered"
    assert [a["attempt"] for a in delivery["attempts"]] == [1, 2, 3]
    assert [a["status_code"] for a in delivery["attempts"]] == [500, 500, 200]
    assert all(a["error"] is None and a["duration_ms"] > 0 for a in delivery["attempts"])
    times = [a["attempted_at"] for a in delivery["attempts"]]
    assert times == sorted(times) and delivery["delivered_at"] and delivery["next_attempt_at"] is None


async def _equals(awaitable, expected) -> bool:
    return await awaitable == expected


@pytest.mark.slow  # 3 s of commands while one endpoint times out
async def test_a_slow_endpoint_never_delays_another(store, org_id, pool, database_url, private_nats):
    settings = msgspec.structs.replace(FAST, timeout=1.0, endpoint_concurrency=2, retry_schedule=(0.0, 0.2))

    async def hang(request: Received) -> int:
        await asyncio.sleep(30)
        return 200

    async with Receiver(hang) as slow, Receiver() as prompt:
        slow_endpoint = await create_endpoint(pool, org_id, settings, url=slow.url, events=["stock.added"])
        prompt_endpoint = await create_endpoint(pool, org_id, settings, url=prompt.url, events=["stock.added"])
        async with running(database_url, private_nats.url, settings):
            location, item = await make_location(store, org_id), await make_item(store, org_id)
            for _ in range(40):  # 3 s, while the slow endpoint times out twice a second
                await stocked(store, org_id, item, location, 1)
                await asyncio.sleep(0.075)
            await prompt.wait_for(lambda r: len(r) >= 40)
            slow_attempts = await pool.fetch(
                "SELECT a.error FROM webhook_attempts a JOIN webhook_deliveries d USING (delivery_id) WHERE d.endpoint_id = $1",
                slow_endpoint.endpoint_id,
            )
    recorded = {str(r["delivery_id"]): r["created_at"].timestamp() for r in await pool.fetch(
        "SELECT delivery_id, created_at FROM webhook_deliveries WHERE endpoint_id = $1", prompt_endpoint.endpoint_id)}
    waits = sorted(r.at - recorded[r.headers["webhook-id"]] for r in prompt.received)
    # From recorded to received: the slow endpoint's backlog is never in the way.
    assert waits[-1] < 0.5, f"the prompt endpoint waited up to {waits[-1]:.3f} s (median {waits[len(waits) // 2]:.3f} s)"
    assert 2 <= len(slow.received) < 15 and len(slow_attempts) >= 2
    assert all(a["error"] == "timed out after 1 s" for a in slow_attempts)


async def test_a_failed_delivery_retried_by_hand_succeeds_with_the_same_id(store, org_id, pool, database_url, private_nats):
    settings = msgspec.structs.replace(FAST, retry_schedule=(0.0,))
    status = {"answer": 503}
    async with Receiver(lambda r: status["answer"]) as receiver:
        endpoint = await create_endpoint(pool, org_id, settings, url=receiver.url, events=["item.created"])
        async with running(database_url, private_nats.url, settings), api_client(database_url, projector=False) as client:
            headers = await key_for(pool, scopes=("webhooks:manage",))
            deliveries = f"/api/v1/webhooks/{endpoint.endpoint_id}/deliveries"
            await make_item(store, org_id)
            await wait_until(lambda: _equals(delivery_statuses(pool, endpoint.endpoint_id), ["failed"]))
            [failed] = (await client.get(deliveries, params={"status": "failed"}, headers=headers)).json()["data"]
            assert [a["status_code"] for a in failed["attempts"]] == [503]

            status["answer"] = 200
            r = await client.post(f"{deliveries}/{failed['id']}/retry", headers=headers)
            assert r.status_code == 202 and r.json()["data"] == {"delivery_id": failed["id"], "status": "pending"}
            await wait_until(lambda: _equals(delivery_statuses(pool, endpoint.endpoint_id), ["delivered"]))
            [delivered] = (await client.get(deliveries, headers=headers)).json()["data"]
    assert delivered["id"] == failed["id"] and [a["status_code"] for a in delivered["attempts"]] == [503, 200]
    assert [r.headers["webhook-id"] for r in receiver.received] == [failed["id"], failed["id"]]
    assert receiver.received[0].body == receiver.received[1].body


async def test_an_internal_address_is_refused_again_at_delivery_time(store, org_id, pool, database_url, private_nats):
    # Registered while allowed (or while its name resolved elsewhere); refused when sent.
    strict = msgspec.structs.replace(FAST, allow_private=False, retry_schedule=(0.0,))
    async with Receiver() as receiver:
        endpoint = await create_endpoint(pool, org_id, FAST, url=receiver.url.replace("127.0.0.1", "localhost"), events=["*"])
        async with running(database_url, private_nats.url, strict):
            await make_location(store, org_id)
            await wait_until(lambda: _equals(delivery_statuses(pool, endpoint.endpoint_id), ["failed"]))
    [attempt] = await pool.fetch("SELECT status_code, error FROM webhook_attempts")
    assert attempt["status_code"] is None and attempt["error"].startswith("target_not_allowed: ")
    assert receiver.received == []


@pytest.mark.slow  # the crossings themselves: test_webhooks_units.py; here end to end, 0.5 s of silence
async def test_stock_low_fires_once_per_crossing(store, org_id, pool, database_url, private_nats):
    async with Receiver() as receiver:
        await create_endpoint(pool, org_id, FAST, url=receiver.url, events=["stock.low"])
        async with running(database_url, private_nats.url):
            location, item = await make_location(store, org_id), await make_item(store, org_id, min_stock_level=10)
            for change in (20, -5, -6, -1, +10, -9, +2, -2):  # 20 15 [9] 8 18 [9] 11 [9]
                command = AddStock if change > 0 else RemoveStock
                await store.execute(org_id, command(item_id=item, location_id=location, quantity=abs(change)))
            await receiver.wait_for(lambda r: len(r) >= 3)
            await asyncio.sleep(0.5)  # and no more
    lows = [r.json()["data"] for r in receiver.received]
    assert [(d["quantity_on_hand"], d["min_stock_level"]) for d in lows] == [(9, 10)] * 3
    assert len({r.headers["webhook-id"] for r in receiver.received}) == 3


@pytest.mark.slow  # waits out a 4 s grace period (signing with both secrets: test_webhooks_units.py)
async def test_during_a_secret_rotation_both_secrets_sign(store, org_id, pool, database_url, private_nats):
    # Long enough that the first delivery is inside it even on a loaded machine (at 1 s
    # it once was not); the second waits for its end.
    grace = msgspec.structs.replace(FAST, secret_grace=4.0)
    async with Receiver() as receiver:
        old = await create_endpoint(pool, org_id, grace, url=receiver.url, events=["location.created"])
        new = await update_endpoint(pool, org_id, old.endpoint_id, grace, rotate_secret=True)
        grace_ends = time.monotonic() + grace.secret_grace
        async with running(database_url, private_nats.url):
            await make_location(store, org_id, "During")
            [during] = await receiver.wait_for(lambda r: len(r) >= 1)
            await asyncio.sleep(max(0.0, grace_ends - time.monotonic()) + 0.1)  # the grace period ends
            await make_location(store, org_id, "After")
            after = (await receiver.wait_for(lambda r: len(r) >= 2))[1]
    assert len(during.headers["webhook-signature"].split(" ")) == 2
    for secret in (old.secret, new.secret):
        Webhook(secret).verify(during.body, during.headers)
    assert seed_000_verifies(during.body, during.headers["x-webhook-signature"], new.secret)
    assert seed_000_verifies(during.body, during.headers["x-webhook-signature-previous"], old.secret)
    Webhook(new.secret).verify(after.body, after.headers)
    with pytest.raises(WebhookVerificationError):
        Webhook(old.secret).verify(after.body, after.headers)
    assert "x-webhook-signature-previous" not in after.headers


async def test_an_endpoint_failing_for_too_long_is_disabled_until_enabled_again(store, org_id, pool, database_url, private_nats):
    settings = msgspec.structs.replace(FAST, disable_after=0.6, retry_schedule=(0.0,) + (0.2,) * 20)
    status = {"answer": 500}
    async with Receiver(lambda r: status["answer"]) as receiver:
        endpoint = await create_endpoint(pool, org_id, settings, url=receiver.url, events=["location.created"])
        async with running(database_url, private_nats.url, settings), api_client(database_url, projector=False) as client:
            headers = await key_for(pool, scopes=("webhooks:manage",))
            webhook = f"/api/v1/webhooks/{endpoint.endpoint_id}"
            await make_location(store, org_id)

            async def disabled():
                shown = (await client.get(webhook, headers=headers)).json()["data"]
                return shown if not shown["enabled"] else None

            shown = await wait_until(disabled)
            assert "every attempt failed" in shown["disabled_reason"] and shown["disabled_at"] and shown["failing_since"]
            attempts = len(receiver.received)
            await make_location(store, org_id, "While disabled")  # not even recorded for it
            await asyncio.sleep(0.5)
            assert len(receiver.received) == attempts

            status["answer"] = 200
            enabled = (await client.patch(webhook, json={"enabled": True}, headers=headers)).json()["data"]
            assert enabled["enabled"] and enabled["disabled_reason"] is None and enabled["failing_since"] is None
            # The delivery it still owed goes out now.
            await wait_until(lambda: _equals(delivery_statuses(pool, endpoint.endpoint_id), ["delivered"]))
    assert len(await pool.fetch("SELECT 1 FROM webhook_deliveries")) == 1


@pytest.mark.slow  # two runs of the workers (one level applied again: test_webhooks_units.py)
async def test_events_handled_again_record_and_send_nothing_twice(store, org_id, pool, database_url, private_nats):
    async with Receiver() as receiver:
        await create_endpoint(pool, org_id, FAST, url=receiver.url, events=["*"])
        location, item = await make_location(store, org_id), await make_item(store, org_id, min_stock_level=3)
        await stocked(store, org_id, item, location, 5)
        await store.execute(org_id, RemoveStock(item_id=item, location_id=location, quantity=3))  # stock.low
        async with running(database_url, private_nats.url):
            await receiver.wait_for(lambda r: len(r) >= 7)
        levels = await pool.fetch("SELECT * FROM webhook_item_levels")
        # As if the emitter lost its checkpoint (or the stream was replayed): read everything again.
        await pool.execute("UPDATE webhook_emitter_checkpoints SET stream_sequence = 0, event_id = NULL, position = 0")
        async with running(database_url, private_nats.url) as [worker]:
            await wait_until(lambda: _true(worker.emitter.sequence >= 4))  # the four events again
            await store.execute(org_id, AddStock(item_id=item, location_id=location, quantity=1))
            await receiver.wait_for(lambda r: len(r) >= 9)
            await asyncio.sleep(0.5)
    assert names(receiver.received)[7:] == ["item.stock_changed", "stock.added"]
    assert len({r.headers["webhook-id"] for r in receiver.received}) == 9 == await pool.fetchval("SELECT count(*) FROM webhook_deliveries")
    after = {r["item_id"]: r for r in await pool.fetch("SELECT * FROM webhook_item_levels")}
    assert after[item]["quantity_on_hand"] == levels[0]["quantity_on_hand"] + 1 and after[item]["low"] is True


async def _true(value: bool) -> bool:
    return value


@pytest.mark.slow  # 60 deliveries by three workers (one emitter owner: the standby test below)
async def test_several_workers_deliver_each_delivery_once(store, org_id, pool, database_url, private_nats):
    async with Receiver() as receiver:
        await create_endpoint(pool, org_id, FAST, url=receiver.url, events=["stock.added"])
        async with running(database_url, private_nats.url, workers=3) as workers:
            location, item = await make_location(store, org_id), await make_item(store, org_id)
            await asyncio.gather(*(stocked(store, org_id, item, location, 1) for _ in range(60)))
            await receiver.wait_for(lambda r: len(r) >= 60)
            await asyncio.sleep(0.5)
            assert sum(w.emitter.owner for w in workers) == 1  # one emitter, the others stand by
    assert len(receiver.received) == 60 and len({r.headers["webhook-id"] for r in receiver.received}) == 60
    assert sum(w.deliverer.attempted for w in workers) == 60


@pytest.mark.slow  # NATS stopped and started again under load
async def test_nothing_is_lost_or_doubled_when_nats_restarts(store, org_id, pool, database_url, private_nats):
    async with Receiver() as receiver:
        await create_endpoint(pool, org_id, FAST, url=receiver.url, events=["stock.added"])
        async with running(database_url, private_nats.url):
            location, item = await make_location(store, org_id), await make_item(store, org_id)
            for round_ in range(3):
                for _ in range(20):
                    await stocked(store, org_id, item, location, 1)
                if round_ == 0:
                    await receiver.wait_for(lambda r: len(r) >= 5)
                    private_nats.stop()  # commands go on; the relay and the emitter wait
                elif round_ == 1:
                    private_nats.restart()
            await receiver.wait_for(lambda r: len(r) >= 60, timeout=60)
            await asyncio.sleep(0.5)
    assert len(receiver.received) == 60 == len({r.headers["webhook-id"] for r in receiver.received})


async def test_a_standby_emitter_takes_over_from_its_checkpoint(store, org_id, pool, database_url, private_nats):
    async with Receiver() as receiver:
        await create_endpoint(pool, org_id, FAST, url=receiver.url, events=["stock.added"])
        async with running(database_url, private_nats.url, workers=2) as workers:
            location, item = await make_location(store, org_id), await make_item(store, org_id)
            await wait_until(lambda: _true(any(w.emitter.owner for w in workers)))
            owner = next(w for w in workers if w.emitter.owner)
            for n in range(40):
                await stocked(store, org_id, item, location, 1)
                if n == 15:  # the owner dies: its connection closes, the lock is free
                    owner.emitter._task.cancel()
                    # Bounded: a cancellation a library swallowed once left this waiting forever.
                    with contextlib.suppress(asyncio.CancelledError):
                        async with asyncio.timeout(10):
                            await owner.emitter._task
                    owner.emitter._task = None
            await receiver.wait_for(lambda r: len(r) >= 40, timeout=30)
            await asyncio.sleep(0.5)
            assert next(w for w in workers if w is not owner).emitter.owner
    assert len(receiver.received) == 40 == len({r.headers["webhook-id"] for r in receiver.received})
