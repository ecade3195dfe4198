"""The reader never skips an event, even one whose transaction commits late."""

from __future__ import annotations

import asyncio
import random

from ledger.commands import AddStock
from ledger.reader import LedgerReader
from ledger.store import EventStore
from tests.support.world import make_item, make_location


async def _append_in_open_transaction(pool, org_id, item, location, hold: asyncio.Event, result: list):
    """Append and keep the transaction open until `hold` is set (a writer that commits late)."""
    async with pool.acquire() as conn, conn.transaction():
        recorded = await EventStore(conn).execute(org_id, AddStock(item_id=item, location_id=location, quantity=1))
        result.append(recorded.position)
        await hold.wait()


async def test_an_event_that_commits_after_a_later_position_is_still_read_in_order(store, org_id, pool):
    location = await make_location(store, org_id)
    slow_item, fast_item = await make_item(store, org_id), await make_item(store, org_id)
    reader = LedgerReader(pool)
    seen = [e.position for e in await reader.poll()]

    hold, slow = asyncio.Event(), []
    slow_writer = asyncio.create_task(_append_in_open_transaction(pool, org_id, slow_item, location, hold, slow))
    while not slow:
        await asyncio.sleep(0.01)
    fast = await store.execute(org_id, AddStock(item_id=fast_item, location_id=location, quantity=1))
    assert fast.position > slow[0]  # the later position is committed first

    for _ in range(5):
        seen += [e.position for e in await reader.poll()]
    assert fast.position not in seen, "the reader moved past a position still in flight"

    hold.set()
    await slow_writer
    ledger = [r["position"] for r in await pool.fetch("SELECT position FROM events ORDER BY position")]
    # Transactions of other databases on the same server count as in flight too, so the
    # horizon may take a few polls to pass them: poll until caught up, within a bound.
    deadline = asyncio.get_running_loop().time() + 10
    while len(seen) < len(ledger) and asyncio.get_running_loop().time() < deadline:
        seen += [e.position for e in await reader.poll()]
        await asyncio.sleep(0.01)
    assert seen == ledger


async def test_a_rolled_back_append_leaves_a_gap_the_reader_passes(store, org_id, pool):
    location = await make_location(store, org_id)
    item = await make_item(store, org_id)
    async with pool.acquire() as conn:
        tx = conn.transaction()
        await tx.start()
        await EventStore(conn).execute(org_id, AddStock(item_id=item, location_id=location, quantity=1))
        await tx.rollback()
    after = await store.execute(org_id, AddStock(item_id=item, location_id=location, quantity=2))
    reader = LedgerReader(pool)
    seen = []
    deadline = asyncio.get_running_loop().time() + 10
    while (not seen or seen[-1] != after.position) and asyncio.get_running_loop().time() < deadline:
        seen += [e.position for e in await reader.poll()]
        await asyncio.sleep(0.01)
    assert seen[-1] == after.position


async def test_a_reader_polling_under_concurrent_out_of_order_commits_sees_the_exact_ledger(store, org_id, pool):
    """Many writers, some holding their transaction open for a random while after the
    append, so commits land out of position order; a reader polls all along."""
    location = await make_location(store, org_id)
    items = [await make_item(store, org_id) for _ in range(16)]
    reader = LedgerReader(pool, batch_size=7)  # small pages: the reader crosses many horizons
    seen: list[int] = []
    writing = True
    rng = random.Random(7)

    committed = 0

    async def writer(item: int) -> None:
        nonlocal committed
        for _ in range(15):
            async with pool.acquire() as conn:
                tx = conn.transaction()
                await tx.start()
                await EventStore(conn).execute(org_id, AddStock(item_id=item, location_id=location, quantity=1))
                if rng.random() < 0.5:
                    await asyncio.sleep(rng.random() * 0.03)
                if rng.random() < 0.1:  # a command that fails after its append: a gap
                    await tx.rollback()
                else:
                    await tx.commit()
                    committed += 1

    async def poller() -> None:
        while writing:
            seen.extend(e.position for e in await reader.poll())
            await asyncio.sleep(0.002)

    polling = asyncio.create_task(poller())
    await asyncio.gather(*(writer(item) for item in items))
    writing = False
    await polling
    ledger = [r["position"] for r in await pool.fetch("SELECT position FROM events ORDER BY position")]
    deadline = asyncio.get_running_loop().time() + 10
    while len(seen) < len(ledger) and asyncio.get_running_loop().time() < deadline:
        seen.extend(e.position for e in await reader.poll())
        await asyncio.sleep(0.01)
    assert seen == ledger
    assert len(ledger) == 1 + 16 + committed


async def test_a_long_transaction_in_another_database_does_not_hold_the_reader_back(store, org_id, pool, postgres_url):
    import asyncpg

    location = await make_location(store, org_id)
    item = await make_item(store, org_id)
    elsewhere = await asyncpg.connect(postgres_url)  # the server's own database, not the test's
    try:
        async with elsewhere.transaction():
            await elsewhere.fetchval("SELECT pg_current_xact_id()")  # holds a transaction id open
            written = await store.execute(org_id, AddStock(item_id=item, location_id=location, quantity=1))
            reader = LedgerReader(pool)
            seen = []
            for _ in range(3):
                seen += [e.position for e in await reader.poll()]
            assert seen and seen[-1] == written.position
    finally:
        await elsewhere.close()


async def test_a_long_transaction_that_is_not_an_append_does_not_hold_the_reader_back(store, org_id, pool):
    location = await make_location(store, org_id)
    item = await make_item(store, org_id)
    async with pool.acquire() as other, other.transaction():
        await other.execute("CREATE TEMP TABLE scratch (n int) ON COMMIT DROP; INSERT INTO scratch VALUES (1)")
        written = await store.execute(org_id, AddStock(item_id=item, location_id=location, quantity=1))
        reader = LedgerReader(pool)
        seen = []
        for _ in range(3):
            seen += [e.position for e in await reader.poll()]
        assert seen and seen[-1] == written.position
