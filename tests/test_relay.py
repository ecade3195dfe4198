"""The relay: every event, in order, into JetStream, acknowledged, nothing lost or doubled."""

from __future__ import annotations

import asyncio
import random
import uuid
from collections import defaultdict

import nats
import pytest

from consumers.relay import Relay
from consumers.subscriber import LedgerSubscriber
from consumers.wire import STREAM
from ledger.commands import AddStock, RemoveStock, TransferStock
from ledger.errors import LedgerError
from tests.support.world import make_item, make_location


async def _write(store, org_id, items, locations, commands: int, seed: int) -> None:
    rng = random.Random(seed)
    for _ in range(commands):
        item, a, b = rng.choice(items), *rng.sample(locations, 2)
        command = rng.choice([
            AddStock(item_id=item, location_id=a, quantity=rng.randint(1, 5)),
            RemoveStock(item_id=item, location_id=a, quantity=1),
            TransferStock(item_id=item, from_location_id=a, to_location_id=b, quantity=1, transfer_id=str(uuid.uuid4())),
        ])
        try:
            await store.execute(org_id, command)
        except LedgerError:
            pass


async def _world(store, org_id):
    locations = [await make_location(store, org_id, f"L{n}") for n in range(3)]
    items = [await make_item(store, org_id) for _ in range(6)]
    return items, locations


async def _stream_messages(url: str) -> list:
    """Every message in LEDGER, in stream order, read directly (subject, headers, data)."""
    nc = await nats.connect(url)
    try:
        js = nc.jetstream()
        info = await js.stream_info(STREAM)
        return [await js.get_msg(STREAM, seq) for seq in range(info.state.first_seq, info.state.last_seq + 1)]
    finally:
        await nc.close()


async def _wait_for(predicate, timeout: float = 30.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not await predicate():
        assert asyncio.get_running_loop().time() < deadline, f"timed out: {predicate}"
        await asyncio.sleep(0.05)


async def _head(pool) -> int:
    return await pool.fetchval("SELECT coalesce(max(position), 0) FROM events")


# (commands per writer, events the ledger must hold): full, and quick for the fast loop.
@pytest.mark.parametrize("commands, events", [pytest.param(150, 2000, marks=pytest.mark.slow, id="full"),
                                              pytest.param(25, 300, id="quick")])
async def test_concurrent_writers_reach_a_subscriber_exactly_once_in_order(
    store, org_id, pool, database_url, private_nats, commands, events
):
    items, locations = await _world(store, org_id)
    relay = Relay(database_url, private_nats.url)
    relay.start()
    received = []

    async def handler(event):
        received.append(event)

    nc = await nats.connect(private_nats.url)
    try:
        await _wait_for(lambda: _true(relay.owner))
        subscriber = LedgerSubscriber(nc.jetstream(), durable="test", handler=handler)
        subscriber.start()
        await asyncio.gather(*(_write(store, org_id, items, locations, commands, seed) for seed in range(16)))
        head = await _head(pool)
        await _wait_for(lambda: _true(relay.position == head))
        count = await pool.fetchval("SELECT count(*) FROM events")  # positions have gaps (races, rollbacks)
        await _wait_for(lambda: _true(len(received) >= count))
        await subscriber.stop()
    finally:
        await relay.stop()
        await nc.close()

    ledger = await pool.fetch("SELECT position, event_id, stream, version FROM events ORDER BY position")
    assert len(ledger) > events
    assert [e.event_id for e in received] == [r["event_id"] for r in ledger]  # once each, in position order
    messages = await _stream_messages(private_nats.url)
    assert [m.headers["Nats-Msg-Id"] for m in messages] == [str(r["event_id"]) for r in ledger]
    assert [int(m.headers["Ledger-Position"]) for m in messages] == [r["position"] for r in ledger]
    versions = defaultdict(list)
    for m, row in zip(messages, ledger, strict=True):
        kind, _, stream_id = row["stream"].partition("-")
        assert m.subject == f"ledger.{org_id}.{kind}.{stream_id}.{m.headers['Ledger-Type']}"
        versions[row["stream"]].append(row["version"])
    assert all(v == list(range(1, len(v) + 1)) for v in versions.values())


async def _true(value: bool) -> bool:
    return value


async def test_commands_go_on_while_nats_is_down_and_the_relay_catches_up_in_order(store, org_id, pool, database_url, private_nats):
    items, locations = await _world(store, org_id)
    relay = Relay(database_url, private_nats.url, ack_timeout=1.0)
    relay.start()
    try:
        writers = [asyncio.create_task(_write(store, org_id, items, locations, 250, seed)) for seed in range(8)]
        await asyncio.sleep(0.3)
        private_nats.stop()  # under load
        stopped_at = await _head(pool)
        await asyncio.sleep(1.0)
        assert await _head(pool) > stopped_at, "commands must go on while NATS is down"
        private_nats.restart()
        await asyncio.gather(*writers)
        head = await _head(pool)
        await _wait_for(lambda: _true(relay.position == head), timeout=60)
    finally:
        await relay.stop()
    messages = await _stream_messages(private_nats.url)
    ledger = [str(r["event_id"]) for r in await pool.fetch("SELECT event_id FROM events ORDER BY position")]
    assert [m.headers["Nats-Msg-Id"] for m in messages] == ledger  # nothing lost, reordered or doubled


async def test_a_relay_killed_between_publish_and_checkpoint_is_deduplicated_by_jetstream(store, org_id, pool, database_url, private_nats):
    items, locations = await _world(store, org_id)
    await _write(store, org_id, items, locations, 50, seed=1)
    head = await _head(pool)
    relay = Relay(database_url, private_nats.url)
    relay.start()
    await _wait_for(lambda: _true(relay.position == head))
    await relay.stop()
    # As if it died after the acks but before writing its checkpoint: it starts again from 0.
    await pool.execute("UPDATE relay_checkpoints SET position = 0")
    again = Relay(database_url, private_nats.url)
    again.start()
    await _wait_for(lambda: _true(again.position == head))
    await again.stop()
    messages = await _stream_messages(private_nats.url)
    assert len(messages) == await pool.fetchval("SELECT count(*) FROM events")
    assert [m.headers["Nats-Msg-Id"] for m in messages] == [
        str(r["event_id"]) for r in await pool.fetch("SELECT event_id FROM events ORDER BY position")
    ]


async def test_a_standby_relay_takes_over_when_the_owner_dies(store, org_id, pool, database_url, private_nats):
    items, locations = await _world(store, org_id)
    first, second = Relay(database_url, private_nats.url), Relay(database_url, private_nats.url, claim_interval=0.1)
    first.start()
    await _wait_for(lambda: _true(first.owner))
    second.start()
    await _write(store, org_id, items, locations, 30, seed=2)
    head = await _head(pool)
    await _wait_for(lambda: _true(first.position == head))
    assert not second.owner
    first._task.cancel()  # the owner dies: its connection closes and the lock is free
    with pytest.raises(asyncio.CancelledError):
        await first._task
    await _write(store, org_id, items, locations, 30, seed=3)
    head = await _head(pool)
    await _wait_for(lambda: _true(second.position == head), timeout=10)
    await second.stop()
    messages = await _stream_messages(private_nats.url)
    assert [m.headers["Nats-Msg-Id"] for m in messages] == [
        str(r["event_id"]) for r in await pool.fetch("SELECT event_id FROM events ORDER BY position")
    ]
