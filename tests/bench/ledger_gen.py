"""A valid ledger of any size, fast: random commands decided by the real `decide`, folded
by the real `evolve`, hashed by the real chain, and written with COPY.

Validity matters: `ledger verify` must find every chain sound and the write model equal
to a re-fold, so the events come out of `decide` (no invariant can be broken), each is
hashed exactly as the store hashes it, and the write model written at the end is the
fold of what was generated. Only the transport differs from the store: rows go in by
binary COPY in large batches with positions assigned here (the database is otherwise
idle), which is what makes a million events take seconds rather than an hour.
"""

from __future__ import annotations

import asyncio
import random
import uuid
from datetime import UTC, datetime, timedelta

import asyncpg
import msgspec

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
    UpdateItem,
    UpdateLocation,
)
from ledger.decide import decide, evolve
from ledger.hashing import GENESIS, event_hash
from ledger.keys import ensure_organization
from ledger.state import ItemState, LocationState, Snapshot
from schemas import EventMetadata, ItemAttributes, ItemCreated, LocationAttributes, LocationCreated, stream_of

_COLUMNS = ("position", "event_id", "org_id", "stream", "version", "type", "data", "metadata", "recorded_at",
            "prev_hash", "hash")
_BATCH = 20_000
_encode = msgspec.json.encode
EXPIRES = datetime(2099, 1, 1, tzinfo=UTC)  # holds that never expire during a benchmark


class Generator:
    def __init__(self, org_id: int, *, items: int, locations: int, jobs: int, seed: int, start: datetime):
        self.org_id, self.rng = org_id, random.Random(seed)
        self.jobs = jobs
        self.item_ids = list(range(1, items + 1))
        self.location_ids = list(range(1, locations + 1))
        self.items: dict[int, ItemState] = {}
        self.locations: dict[int, LocationState] = {}
        self.heads: dict[str, tuple[int, str]] = {}
        self.position = 0
        self.clock = start
        self.metadata = EventMetadata(user_name="bench")
        self._metadata_json = _encode(self.metadata)
        self.rows: list[tuple] = []

    # --- events ------------------------------------------------------------------------

    def record(self, events) -> None:
        self.clock += timedelta(microseconds=self.rng.randint(50, 500))
        for event in events:
            stream = stream_of(event)
            version, prev_hash = self.heads.get(stream, (0, GENESIS))
            version += 1
            event_id = uuid.UUID(int=self.rng.getrandbits(128), version=4)
            tag = event.__struct_config__.tag
            hash_ = event_hash(prev_hash, event_id=event_id, org_id=self.org_id, stream=stream, version=version,
                               type=tag, data=event, metadata=self.metadata, recorded_at=self.clock)
            self.heads[stream] = (version, hash_)
            self.position += 1
            self.rows.append((self.position, event_id, self.org_id, stream, version, tag, _encode(event),
                              self._metadata_json, self.clock, prev_hash, hash_))
            if stream.startswith("item-"):
                self.items[event.item_id] = evolve(self.items.get(event.item_id) or ItemState(item_id=event.item_id), event)
            else:
                location = self.locations.get(event.location_id) or LocationState(location_id=event.location_id)
                self.locations[event.location_id] = evolve(location, event)

    def decide(self, item_id: int | None, command) -> None:
        items = {item_id: self.items[item_id]} if item_id else {}
        try:
            self.record(decide(Snapshot(items=items, locations=self.locations), command))
        except errors.LedgerError:
            pass  # a command the state refuses: it records nothing, as in the service

    # --- the command mix ---------------------------------------------------------------

    def setup(self) -> None:
        for location_id in self.location_ids:
            kind = "warehouse" if location_id <= 3 else self.rng.choice(["vehicle", "technician", "job_site"])
            self.record([LocationCreated(location_id=location_id, attributes=LocationAttributes(
                location_name=f"Location {location_id}", location_type=kind))])
        for item_id in self.item_ids:
            self.record([ItemCreated(item_id=item_id, attributes=ItemAttributes(
                part_number=f"BN-{item_id:06d}", part_name=f"Bench part {item_id}", category=f"C{item_id % 17}",
                min_stock_level=self.rng.randrange(0, 40), price_per_unit=round(self.rng.uniform(1, 99), 2)))])

    def step(self) -> None:  # noqa: C901 - one branch per command of the mix
        rng = self.rng
        item_id = rng.choice(self.item_ids)
        item = self.items[item_id]
        stocked = [(loc, level) for loc, level in item.stock.items() if level.available > 0]
        held = [(loc, job, hold.quantity) for loc, level in item.stock.items() for job, hold in level.holds.items()]
        roll = rng.random()
        if roll < 0.30 or not stocked:
            self.decide(item_id, AddStock(item_id=item_id, location_id=rng.choice(self.location_ids),
                                          quantity=rng.randint(5, 60), notes=rng.choice([None, "PO"])))
            return
        location_id, level = rng.choice(stocked)
        n = rng.randint(1, min(level.available, 12))
        if roll < 0.42:
            self.decide(item_id, RemoveStock(item_id=item_id, location_id=location_id, quantity=n))
        elif roll < 0.62:
            target = rng.choice([loc for loc in self.location_ids if loc != location_id])
            self.decide(item_id, TransferStock(item_id=item_id, from_location_id=location_id, to_location_id=target,
                                               quantity=n, transfer_id=str(uuid.UUID(int=rng.getrandbits(128), version=4))))
        elif roll < 0.67:
            self.decide(item_id, AdjustStock(item_id=item_id, location_id=location_id, quantity=rng.choice([-n, n]),
                                             reason="cycle count"))
        elif roll < 0.79 or not held:
            self.decide(item_id, ReserveStock(job_id=rng.randint(1, self.jobs), expires_at=rng.choice([None, EXPIRES]),
                                              lines=[Line(item_id=item_id, location_id=location_id, quantity=n)]))
        elif roll < 0.88:
            location_id, job, quantity = rng.choice(held)
            self.decide(item_id, ReleaseStock(job_id=job, lines=[
                Line(item_id=item_id, location_id=location_id, quantity=rng.randint(1, quantity))]))
        elif roll < 0.97:
            location_id, job, quantity = rng.choice(held)
            self.decide(item_id, CompleteJob(job_id=job, lines=[
                Line(item_id=item_id, location_id=location_id, quantity=rng.randint(1, quantity))]))
        elif roll < 0.995:
            a = item.attributes
            self.decide(item_id, UpdateItem(item_id=item_id, changes={
                "min_stock_level": rng.randrange(0, 40), "price_per_unit": round(rng.uniform(1, 99), 2),
                "part_name": f"{a.part_name.split(' (')[0]} (rev {rng.randrange(99)})"}))
        else:
            location_id = rng.choice(self.location_ids)
            self.decide(None, UpdateLocation(location_id=location_id, changes={"location_name": f"Site {rng.randrange(999)}"}))


async def generate(conn: asyncpg.Connection, events: int, *, org: str = "bench", items: int = 2000,
                   locations: int = 40, jobs: int = 500, seed: int = 1, report=None) -> int:
    """Append about `events` valid events (a command's events are never split) to an idle
    ledger, with the write model to match; returns the last position."""
    org_id = await ensure_organization(conn, org)
    start_at = await conn.fetchval("SELECT coalesce(max(position), 0) FROM events")
    gen = Generator(org_id, items=items, locations=locations, jobs=jobs, seed=seed,
                    start=datetime.now(UTC) - timedelta(days=30))
    gen.position = start_at
    # Ids after any already taken, so a generated world can join an existing one.
    item_base = await conn.fetchval("SELECT coalesce(max(item_id), 0) FROM item_state")
    location_base = await conn.fetchval("SELECT coalesce(max(location_id), 0) FROM location_state")
    gen.item_ids = [i + item_base for i in gen.item_ids]
    gen.location_ids = [loc + location_base for loc in gen.location_ids]
    gen.setup()
    # The server writes one batch while the next is generated: COPY as a task, and a yield
    # now and then so its data goes out while Python is busy deciding.
    copying: asyncio.Task | None = None
    steps = 0
    while gen.position - start_at < events:
        gen.step()
        steps += 1
        if steps % 500 == 0:
            await asyncio.sleep(0)
        if len(gen.rows) >= _BATCH:
            if copying:
                await copying
            copying = asyncio.create_task(_copy(conn, gen.rows, gen.position, report))
            gen.rows = []
    if copying:
        await copying
    await _copy(conn, gen.rows, gen.position, report)
    await _write_model(conn, gen)
    return gen.position


async def _copy(conn, rows: list[tuple], position: int, report) -> None:
    if rows:
        await conn.copy_records_to_table("events", columns=_COLUMNS, records=rows)
        if report:
            report(position)


async def _write_model(conn, gen: Generator) -> None:
    """The write model as the store would have left it: the fold of every event."""
    org = gen.org_id
    await conn.copy_records_to_table("streams", columns=("org_id", "stream", "version", "last_hash"),
                                     records=[(org, s, v, h) for s, (v, h) in gen.heads.items()])
    await conn.copy_records_to_table("location_state", columns=("location_id", "org_id", "attributes"),
                                     records=[(loc.location_id, org, _encode(loc.attributes)) for loc in gen.locations.values()])
    await conn.copy_records_to_table(
        "item_state", columns=("item_id", "org_id", "part_number", "attributes", "deleted"),
        records=[(i.item_id, org, i.attributes.part_number, _encode(i.attributes), i.deleted) for i in gen.items.values()])
    stock, holds = [], []
    for item in gen.items.values():
        for location_id, level in item.stock.items():
            stock.append((item.item_id, location_id, org, level.quantity, level.reserved))
            holds += [(item.item_id, location_id, job, org, hold.quantity, hold.expires_at) for job, hold in level.holds.items()]
    await conn.copy_records_to_table("stock_state", columns=("item_id", "location_id", "org_id", "quantity", "reserved"),
                                     records=stock)
    await conn.copy_records_to_table(
        "reservation_state", columns=("item_id", "location_id", "job_id", "org_id", "quantity", "expires_at"), records=holds)
    await conn.execute("SELECT setval('event_position_seq', $1), setval('item_id_seq', $2), setval('location_id_seq', $3)",
                       gen.position, max(gen.item_ids), max(gen.location_ids))
