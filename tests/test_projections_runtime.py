"""The projector runtime: exactly once across crashes, one owner with takeover, dead letters."""

from __future__ import annotations

import asyncio
import math
import time
import uuid

import pytest

from ledger.commands import AddStock, UpdateItem
from projections import Items, Projector, projection_status, read_models, wait_for_position
from schemas import ItemAttributes
from tests.support.world import make_item, make_location
from tests.test_projections import TABLES, folded_read_models, head, make_world, table_rows, write_concurrently

ALL = [p.name for p in read_models()]


class Recording:
    """A test projection that records each position it applies (no key: a repeat would show).

    It can be told to block inside its Nth batch (so the test can kill the projector
    mid-batch) or to fail on some events, a given number of times.
    """

    tables = ()

    def __init__(self, name: str = "recording", *, block_on_call: int | None = None, fail_on=None,
                 fail_times: float = math.inf):
        self.name = name
        self.block_on_call, self.fail_on, self.fail_times = block_on_call, fail_on, fail_times
        self.calls = self.failures = 0
        self.entered = asyncio.Event()

    async def apply(self, conn, events) -> None:
        self.calls += 1
        await conn.execute(
            "INSERT INTO applied (projection, position) SELECT $1, unnest($2::bigint[])",
            self.name, [e.position for e in events],
        )
        if self.calls == self.block_on_call:
            self.entered.set()
            await conn.execute("SELECT pg_sleep(60)")  # until the test kills the session
        for e in events:
            if self.fail_on and self.fail_on(e) and self.failures < self.fail_times:
                self.failures += 1
                raise ValueError(f"cannot apply {e.type} at position {e.position}")


@pytest.fixture
async def applied(pool):
    await pool.execute("CREATE TABLE applied (projection text NOT NULL, position bigint NOT NULL)")

    async def positions(name: str = "recording") -> list[int]:
        return [r["position"] for r in await pool.fetch(
            "SELECT position FROM applied WHERE projection = $1 ORDER BY position", name)]

    return positions


async def ledger_positions(pool) -> list[int]:
    return [r["position"] for r in await pool.fetch("SELECT position FROM events ORDER BY position")]


async def assert_read_models_match_the_ledger(pool) -> None:
    expected = await folded_read_models(pool)
    for table in TABLES:
        assert await table_rows(pool, "projections", table) == expected[table], table


async def eventually(condition, timeout: float = 5.0) -> float:
    """Seconds until `condition()` held; fails after `timeout`."""
    started = time.monotonic()
    while not condition():
        assert time.monotonic() - started < timeout, "condition not reached in time"
        await asyncio.sleep(0.01)
    return time.monotonic() - started


# Seconds of writing around the kill: the full run, and a quick one for the fast loop.
@pytest.mark.parametrize("seconds", [pytest.param(2.0, marks=pytest.mark.slow, id="full"), pytest.param(0.5, id="quick")])
async def test_a_projector_killed_mid_batch_resumes_without_applying_any_event_twice_or_skipping_one(
    store, pool, org_id, database_url, applied, seconds
):
    world = await make_world(store, [org_id])
    recording = Recording(block_on_call=3)
    projector = Projector(pool, database_url, [*read_models(), recording], batch_size=20)
    projector.start()
    writing = asyncio.create_task(write_concurrently(store, world, writers=8, seconds=seconds))
    try:
        await asyncio.wait_for(recording.entered.wait(), 5)
        # The batch's read-model rows are written, its checkpoint not yet: kill the session.
        killed = projector.backend_pid
        assert await pool.fetchval("SELECT pg_terminate_backend($1)", killed)
        await writing
        assert await wait_for_position(pool, await head(pool), timeout=15, projections=[*ALL, "recording"])
        assert projector.backend_pid not in (None, killed)  # it came back on a new session
    finally:
        await projector.stop()
    assert await applied() == await ledger_positions(pool)  # each event once, none skipped
    await assert_read_models_match_the_ledger(pool)


async def test_a_batch_that_fails_once_is_applied_again_whole_with_nothing_parked(
    store, pool, org_id, database_url, applied
):
    world = await make_world(store, [org_id])
    recording = Recording(fail_on=lambda e: True, fail_times=1)
    projector = Projector(pool, database_url, [*read_models(), recording], batch_size=10)
    projector.start()
    try:
        await write_concurrently(store, world, writers=4, seconds=0.5)
        assert await wait_for_position(pool, await head(pool), timeout=10, projections=[*ALL, "recording"])
    finally:
        await projector.stop()
    assert recording.failures == 1 and projector.dead_letters == 0 and not projector.stuck
    assert await pool.fetchval("SELECT count(*) FROM projection_dead_letters") == 0
    assert await applied() == await ledger_positions(pool)
    await assert_read_models_match_the_ledger(pool)


async def test_a_standby_takes_over_within_seconds_when_the_owners_session_dies(
    store, pool, org_id, database_url
):
    world = await make_world(store, [org_id])
    owner = Projector(pool, database_url, read_models())
    owner_task = owner.start()
    await eventually(lambda: owner.owned == set(ALL))
    standby = Projector(pool, database_url, read_models())
    standby.start()
    try:
        await write_concurrently(store, world, writers=4, seconds=0.5)
        assert await wait_for_position(pool, await head(pool), timeout=5)
        assert standby.owned == set()  # one owner per projection, however many projectors run

        # The owner dies: its session is killed, and its process with it.
        assert await pool.fetchval("SELECT pg_terminate_backend($1)", owner.backend_pid)
        owner_task.cancel()
        writing = asyncio.create_task(write_concurrently(store, world, writers=4, seconds=1.0))
        took = await eventually(lambda: standby.owned == set(ALL), timeout=3)
        await writing
        assert await wait_for_position(pool, await head(pool), timeout=5)
    finally:
        await standby.stop()
        with pytest.raises(asyncio.CancelledError):
            await owner_task
    assert took < 3
    await assert_read_models_match_the_ledger(pool)  # resumed from the checkpoint, exactly once


async def test_two_projectors_never_own_one_projection_at_once_and_stop_hands_over(
    store, pool, org_id, database_url
):
    world = await make_world(store, [org_id])
    first, second = (Projector(pool, database_url, read_models()) for _ in range(2))
    first.start()
    second.start()
    try:
        await eventually(lambda: first.owned | second.owned == set(ALL))
        writing = asyncio.create_task(write_concurrently(store, world, writers=4, seconds=1.0))
        while not writing.done():
            assert not first.owned & second.owned
            await asyncio.sleep(0.01)
        await first.stop()  # finishes its batch and lets go
        took = await eventually(lambda: second.owned == set(ALL), timeout=3)
        assert await wait_for_position(pool, await head(pool), timeout=5)
    finally:
        await first.stop()
        await second.stop()
    assert took < 5  # hand-over within seconds, even on a loaded machine
    # This database's advisory locks only: other tests' databases on a shared server may hold theirs.
    held = await pool.fetchval(
        "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory'"
        " AND database = (SELECT oid FROM pg_database WHERE datname = current_database())"
    )
    assert held == 0  # stopped projectors hold nothing
    await assert_read_models_match_the_ledger(pool)


async def test_a_poison_event_is_parked_and_its_projection_stops_just_before_it(
    store, pool, org_id, database_url, applied
):
    location = await make_location(store, org_id)
    good, bad = await make_item(store, org_id), await make_item(store, org_id, "BAD-1")
    await store.execute(org_id, AddStock(item_id=good, location_id=location, quantity=5))
    poison = await store.execute(org_id, UpdateItem(item_id=bad, attributes=ItemAttributes(
        part_number="BAD-1", part_name="renamed")))
    poison_position = poison.position
    await store.execute(org_id, AddStock(item_id=good, location_id=location, quantity=7))

    def is_poison(e) -> bool:
        return e.type == "ItemUpdated" and e.data.item_id == bad

    projector = Projector(pool, database_url, [Items(), Recording("fragile", fail_on=is_poison)])
    projector.start()
    try:
        assert await wait_for_position(pool, await head(pool), timeout=5, projections=["items"])
        await eventually(lambda: "fragile" in projector.stuck)
        later = await store.execute(org_id, AddStock(item_id=good, location_id=location, quantity=1))
        assert await wait_for_position(pool, later.position, timeout=5, projections=["items"])  # the others go on
        assert not await wait_for_position(pool, later.position, timeout=0.2, projections=["fragile"])
    finally:
        await projector.stop()

    positions = await ledger_positions(pool)
    before = [p for p in positions if p < poison_position]
    assert projector.stuck == {} and projector.dead_letters == 1  # (stuck is cleared on stop)
    assert await applied("fragile") == before  # nothing at or after the poison event
    [letter] = await pool.fetch("SELECT * FROM projection_dead_letters")
    assert (letter["projection"], letter["position"], letter["event_id"]) == (
        "fragile", poison_position, poison.events[0].event_id)
    assert "ValueError: cannot apply ItemUpdated" in letter["error"]
    status = {s.name: s for s in await projection_status(pool)}
    assert (status["fragile"].position, status["fragile"].stuck_at, status["fragile"].dead_letters) == (
        before[-1], poison_position, 1)
    assert status["fragile"].stuck and status["fragile"].lag == positions[-1] - before[-1]
    assert not status["items"].stuck and status["items"].lag == 0

    # Fixed and restarted, the projection applies the parked event and moves on.
    projector = Projector(pool, database_url, [Items(), Recording("fragile")])
    projector.start()
    try:
        assert await wait_for_position(pool, positions[-1], timeout=5, projections=["fragile"])
    finally:
        await projector.stop()
    assert await applied("fragile") == positions
    status = {s.name: s for s in await projection_status(pool)}
    assert not status["fragile"].stuck and status["fragile"].dead_letters == 1  # kept as a record


async def test_an_event_that_does_not_decode_is_parked_for_every_projection(
    store, pool, org_id, database_url, applied
):
    await make_location(store, org_id)
    await pool.execute(
        """INSERT INTO events (event_id, org_id, stream, version, type, data, metadata, recorded_at, prev_hash, hash)
           VALUES ($1, $2, 'item-999999', 1, 'Mystery', '{"type": "Mystery"}', '{}', now(), '', '')""",
        uuid.uuid4(), org_id,
    )
    mystery = await head(pool)
    projector = Projector(pool, database_url, [Items(), Recording()])
    projector.start()
    try:
        await eventually(lambda: set(projector.stuck) == {"items", "recording"})
    finally:
        await projector.stop()
    letters = await pool.fetch("SELECT projection, position, error FROM projection_dead_letters ORDER BY projection")
    assert [(r["projection"], r["position"]) for r in letters] == [("items", mystery), ("recording", mystery)]
    assert all("Mystery" in r["error"] for r in letters)
    assert await applied() == [p for p in await ledger_positions(pool) if p < mystery] != []


def test_a_projector_idle_for_hours_polls_at_its_idle_pace_and_never_overflows():
    """The back-off between empty polls grows as 1.5 ** quiet polls; an idle service's
    projector used to reach an exponent past a float's range after about 90 s and crash
    (then start over), every 90 s."""
    projector = Projector(None, "", [], fast_poll=0.005, idle_poll=0.05)  # type: ignore[arg-type]  # no database needed to pace polls
    pauses = [projector._pause(n) for n in (0, 20, 21, 40, 2_000, 10**9)]
    assert pauses[:2] == [0.005, 0.005]  # fast for a while after the last events
    assert 0.005 < pauses[2] < 0.05
    assert pauses[3:] == [0.05, 0.05, 0.05]
