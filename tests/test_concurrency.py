"""Many concurrent writers on a few hot items: the invariants hold, nothing is half-written."""

from __future__ import annotations

import asyncio
import random
import time
import uuid
from collections import Counter, defaultdict

import msgspec
import pytest

from ledger import errors
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
from ledger.store import EventStore
from ledger.verify import verify_all
from tests.support.world import make_item, make_location

WRITERS = 32
SECONDS = 4.0
MIN_COMMANDS = 15  # per writer, however slow the machine: the race must have happened

# Signed effect on quantity of each stock event type, for the balance check.
_SIGN = {"Add": 1, "Remove": -1, "Adjust": 1, "Transfer_in": 1, "Transfer_out": -1, "Job_complete": -1}


# The full run writes for SECONDS; the quick one only its MIN_COMMANDS per writer, which is
# race enough for every assertion below (the fast loop, `pytest -m "not slow"`).
@pytest.mark.parametrize("seconds", [pytest.param(SECONDS, marks=pytest.mark.slow, id="full"),
                                     pytest.param(0.0, id="quick")])
async def test_32_writers_on_two_hot_items_keep_every_invariant(store, org_id, pool, seconds):
    # Four stores stand for four API processes: within one, commands on the same item
    # take turns in memory (ledger/stream_queues.py); across them, they race in the
    # database, which must settle every race.
    stores = [EventStore(pool) for _ in range(4)]
    locations = [await make_location(store, org_id, f"L{n}") for n in range(3)]
    items = [await make_item(store, org_id) for _ in range(2)]
    outcomes: Counter[str] = Counter()
    deadline = time.monotonic() + seconds

    def random_command(rng: random.Random):
        item, location = rng.choice(items), rng.choice(locations)
        n = rng.randint(1, 8)
        job = rng.randint(1, 4)
        match rng.randrange(8):
            case 0 | 1:
                return AddStock(item_id=item, location_id=location, quantity=n * 2)
            case 2:
                return RemoveStock(item_id=item, location_id=location, quantity=n)
            case 3:
                return AdjustStock(item_id=item, location_id=location, quantity=rng.choice([-n, n]))
            case 4:
                target = rng.choice([loc for loc in locations if loc != location])
                return TransferStock(item_id=item, from_location_id=location, to_location_id=target,
                                     quantity=n, transfer_id=str(uuid.uuid4()))
            case 5:
                other = rng.choice(items)
                return ReserveStock(job_id=job, lines=[Line(item_id=item, location_id=location, quantity=n),
                                                       Line(item_id=other, location_id=location, quantity=1)])
            case 6:
                return ReleaseStock(job_id=job)
            case _:
                return CompleteJob(job_id=job, lines=rng.choice([None, [Line(item_id=item, location_id=location, quantity=n)]]))

    async def writer(seed: int) -> None:
        rng = random.Random(seed)
        done = 0
        while time.monotonic() < deadline or done < MIN_COMMANDS:
            done += 1
            command = random_command(rng)
            try:
                await stores[seed % len(stores)].execute(org_id, command)
                outcomes["accepted"] += 1
            except errors.LedgerError as refused:
                assert refused.status < 500, refused
                outcomes[refused.code] += 1

    await asyncio.gather(*(writer(seed) for seed in range(WRITERS)))
    assert outcomes["accepted"] > 0.25 * sum(outcomes.values()), outcomes
    assert outcomes["insufficient_stock"] > 0, outcomes  # the race was real
    assert sum(s.lost_races for s in stores) > 0  # and so were lost races in the database

    stock = await pool.fetch("SELECT * FROM stock_state WHERE org_id = $1", org_id)
    assert all(0 <= r["reserved"] <= r["quantity"] for r in stock)
    holds = await pool.fetch("SELECT * FROM reservation_state WHERE org_id = $1", org_id)
    held = defaultdict(int)
    for h in holds:
        assert h["quantity"] > 0
        held[h["item_id"], h["location_id"]] += h["quantity"]
    assert all(held[r["item_id"], r["location_id"]] == r["reserved"] for r in stock)

    events = await pool.fetch("SELECT type, data FROM events WHERE org_id = $1 ORDER BY position", org_id)
    balance = defaultdict(int)
    transfers = defaultdict(list)
    for e in events:
        data = msgspec.json.decode(e["data"])
        if e["type"] in _SIGN:
            balance[data["item_id"], data["location_id"]] += _SIGN[e["type"]] * data["quantity"]
        if e["type"].startswith("Transfer_"):
            transfers[data["transfer_id"]].append((e["type"], data["quantity"]))
    assert {k: v for k, v in balance.items()} == {(r["item_id"], r["location_id"]): r["quantity"] for r in stock}
    for pair in transfers.values():  # never half a transfer
        assert sorted(t for t, _ in pair) == ["Transfer_in", "Transfer_out"] and pair[0][1] == pair[1][1]

    reports = await verify_all(pool, org_id)
    assert [p for r in reports for p in r.problems] == []
