"""The writer process (ledger/writer.py): API workers send their units of work over a Unix
socket to one process whose group commit records them all, against a real PostgreSQL.

A command answers through the writer exactly as it would in the worker's own process
(results, refusals with their codes and fields, batches); two workers' commands on the
same hot items never race each other in the database; a worker that cannot reach the
writer records the command itself; a writer that goes away with a command in flight is
a 503 for that command, never a second recording. The process-level test kills the
writer of `ledger serve api --workers 2` under load.
"""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import signal
import tempfile
import uuid
from collections import Counter
from pathlib import Path

import httpx
import pytest
import pytest_asyncio

from ledger import errors, writer
from ledger.commands import AddStock, Line, RemoveStock, ReserveStock, TransferStock
from ledger.keys import create_key, ensure_organization
from ledger.store import EventStore
from tests.support.processes import LedgerProcess, free_port, ledger_env, wait_for_http, wait_until
from tests.support.world import make_item, make_location, stocked


@pytest.fixture
def socket_dir():
    path = tempfile.mkdtemp(prefix="ledger-writer-test-")  # short: a socket path has ~100 bytes
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest_asyncio.fixture(loop_scope="session")
async def the_writer(pool, socket_dir):
    """The writer's own store, serving on a socket; `worker()` makes a worker's store."""
    decider = EventStore(pool)
    path = os.path.join(socket_dir, "writer.sock")
    server = await writer.serve(decider, path)
    links: list[writer.WriterLink] = []

    def worker() -> EventStore:
        links.append(writer.WriterLink(path))
        return EventStore(pool, writer=links[-1])

    yield decider, worker
    for link in links:
        await link.close()
    server.close()
    await server.wait_closed()


async def _stock(pool, item_id: int, location_id: int) -> tuple[int, int]:
    row = await pool.fetchrow("SELECT quantity, reserved FROM stock_state WHERE item_id = $1 AND location_id = $2",
                              item_id, location_id)
    return (row["quantity"], row["reserved"]) if row else (0, 0)


def _refusal(exc: errors.LedgerError) -> tuple:
    return type(exc), exc.code, exc.status, exc.message, exc.extra


async def test_commands_batches_and_refusals_answer_through_the_writer_as_in_process(the_writer, pool, org_id):
    decider, worker = the_writer
    remote, local = worker(), EventStore(pool)
    warehouse, van = await make_location(remote, org_id, "Warehouse"), await make_location(remote, org_id, "Van")
    item = await make_item(remote, org_id)
    added = await remote.execute(org_id, AddStock(item_id=item, location_id=warehouse, quantity=10))
    assert [e.type for e in added.events] == ["Add"] and added.position > 0
    assert added.snapshot.item(item).level(warehouse).quantity == 10  # the state the command left, typed
    assert decider._groups.units == 4 and remote._groups.units == 0  # recorded by the writer, not the worker

    too_many = RemoveStock(item_id=item, location_id=warehouse, quantity=11)
    with pytest.raises(errors.InsufficientStock) as through_writer:
        await remote.execute(org_id, too_many)
    with pytest.raises(errors.InsufficientStock) as in_process:
        await local.execute(org_id, too_many)
    assert _refusal(through_writer.value) == _refusal(in_process.value)
    with pytest.raises(errors.VersionConflict) as stale:
        await remote.execute(org_id, AddStock(item_id=item, location_id=warehouse, quantity=1), expected_version=1)
    assert stale.value.extra == {"current_version": 2} and stale.value.status == 412

    lines = [TransferStock(item_id=item, from_location_id=warehouse, to_location_id=van, quantity=4),
             RemoveStock(item_id=item, location_id=van, quantity=9),  # refused: the van holds 4
             ReserveStock(job_id=7, lines=[Line(item_id=item, location_id=warehouse, quantity=2)]),
             errors.NotFound("no item has part number X-1", code="item_not_found")]  # refused before deciding
    atomic = await remote.execute_batch(org_id, lines, atomic=True)
    assert [(r.index, r.error.code if r.error else None) for r in atomic] == [
        (0, None), (1, "insufficient_stock"), (2, None), (3, "item_not_found")]
    assert await _stock(pool, item, van) == (0, 0)  # atomic: nothing recorded
    command_id = uuid.uuid4()
    by_line = await remote.execute_batch(org_id, lines, atomic=False, command_id=command_id)
    assert [r.error.code if r.error else [e.type for e in r.result.events] for r in by_line] == [
        ["Transfer_out", "Transfer_in"], "insufficient_stock", ["Reserve"], "item_not_found"]
    assert await _stock(pool, item, van) == (4, 0) and await _stock(pool, item, warehouse) == (6, 2)
    again = await remote.execute_batch(org_id, lines, atomic=False, command_id=command_id)
    assert [r.result.replayed for r in again if r.result] == [True, True]  # found, not recorded twice
    assert await _stock(pool, item, van) == (4, 0)


async def test_two_workers_commands_on_two_hot_items_never_race_in_the_database(the_writer, pool, org_id):
    decider, worker = the_writer
    workers = [worker(), worker()]
    warehouse = await make_location(decider, org_id)
    items = [await make_item(decider, org_id) for _ in range(2)]
    for item in items:
        await stocked(decider, org_id, item, warehouse, 1_000)

    async def client(n: int) -> None:
        store, item = workers[n % 2], items[n % 3 % 2]
        for k in range(25):
            command = (AddStock if k % 2 else RemoveStock)(item_id=item, location_id=warehouse, quantity=k + 1)
            await store.execute(org_id, command)

    await asyncio.gather(*(client(n) for n in range(16)))
    assert decider.lost_races == 0 and all(w.lost_races == 0 and w._groups.units == 0 for w in workers)
    assert decider._groups.groups < decider._groups.units  # the two workers' commands went together
    # Each client removed 1+3+...+25 = 169 and added 2+4+...+24 = 156: 13 net per client.
    per_item = {item: sum(1 for n in range(16) if items[n % 3 % 2] == item) for item in items}
    for item in items:
        assert await _stock(pool, item, warehouse) == (1_000 - 13 * per_item[item], 0)


async def test_a_worker_that_cannot_reach_the_writer_records_the_command_itself(pool, org_id, socket_dir):
    link = writer.WriterLink(os.path.join(socket_dir, "nobody-listens.sock"))
    store = EventStore(pool, writer=link)
    location = await make_location(store, org_id)
    item = await make_item(store, org_id)
    await stocked(store, org_id, item, location, 5)
    assert store._groups.units == 3 and await _stock(pool, item, location) == (5, 0)
    await link.close()


async def test_a_writer_gone_before_answering_is_a_503_and_never_a_second_recording(pool, org_id, socket_dir):
    store = EventStore(pool)
    location, item = await make_location(store, org_id), await make_item(store, org_id)
    path = os.path.join(socket_dir, "vanishing.sock")
    taken = asyncio.Event()

    async def takes_and_vanishes(reader: asyncio.StreamReader, stream: asyncio.StreamWriter) -> None:
        await reader.readexactly(4)  # a unit arrives; the writer dies before answering
        taken.set()
        stream.close()

    server = await asyncio.start_unix_server(takes_and_vanishes, path=path)
    link = writer.WriterLink(path)
    worker = EventStore(pool, writer=link)
    try:
        with pytest.raises(errors.DatabaseUnavailable) as lost:
            await worker.execute(org_id, AddStock(item_id=item, location_id=location, quantity=3))
        assert taken.is_set() and lost.value.status == 503 and "Idempotency-Key" in lost.value.message
        assert worker._groups.units == 0 and await _stock(pool, item, location) == (0, 0)  # not retried here
    finally:
        server.close()
        await server.wait_closed()
    os.unlink(path)  # the writer is gone for good: the next command is recorded by the worker
    await asyncio.sleep(writer.RECONNECT_SECONDS)
    await worker.execute(org_id, AddStock(item_id=item, location_id=location, quantity=3))
    assert worker._groups.units == 1 and await _stock(pool, item, location) == (3, 0)
    await link.close()


@pytest.mark.slow
async def test_killing_the_writer_of_serve_api_loses_no_acknowledged_command(database_url, nats_url, pool):
    """`ledger serve api --workers 2` under 16 concurrent clients on two hot items: the
    writer is killed (SIGKILL) twice. Every command answered 2xx is in the ledger once,
    a 503 ones is in it at most once (its caller may not know), the stock is exactly what
    the recorded ones leave, and the supervisor starts the writer again."""
    port = free_port()
    api = LedgerProcess("api", ["serve", "api", "--workers", "2"], ledger_env(database_url, nats_url, LEDGER_PORT=str(port)),
                        Path(tempfile.mkdtemp(prefix="ledger-writer-kill-")))
    api.start()
    try:
        org_id = await ensure_organization(pool, "writer-kill")
        key = (await create_key(pool, org_id, ["inventory:read", "inventory:write"]))[0].key
        await wait_for_http(f"http://127.0.0.1:{port}")
        seeding = EventStore(pool)
        warehouse = await make_location(seeding, org_id)
        items = [await make_item(seeding, org_id) for _ in range(2)]
        answers: dict[str, int] = {}
        stop = asyncio.Event()

        async def client(n: int, http: httpx.AsyncClient) -> None:
            k = 0
            while not stop.is_set():
                request_id = f"c{n}-{k}"
                try:
                    r = await http.post(f"/api/v1/items/{items[n % 2]}/add", headers={"X-Request-ID": request_id},
                                        json={"location_id": warehouse, "quantity": 1})
                    answers[request_id] = r.status_code
                except httpx.TransportError:
                    answers[request_id] = 0
                k += 1

        def writer_pid() -> int | None:  # the latest writer's, from its log line
            pids = [re.search(r"pid\W+(\d+)", line) for line in api.output().splitlines() if "writer.listening" in line]
            return int(pids[-1][1]) if pids and pids[-1] else None

        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", headers={"X-API-Key": key}, timeout=30) as http:
            clients = [asyncio.create_task(client(n, http)) for n in range(16)]
            try:
                killed = []
                for _ in range(2):
                    await asyncio.sleep(1.5)
                    pid = writer_pid()
                    assert pid is not None, api.output()[-3000:]
                    os.kill(pid, signal.SIGKILL)
                    killed.append(pid)
                    async def restarted() -> bool:
                        return writer_pid() not in (None, *killed)

                    await wait_until(restarted, 30, "a new writer")
                await asyncio.sleep(1.5)
            finally:
                stop.set()
                await asyncio.gather(*clients)
        rows = await pool.fetch("SELECT metadata->>'request_id' AS rid, count(*) AS n FROM events WHERE org_id = $1"
                                " AND type = 'Add' GROUP BY 1", org_id)
        recorded = {r["rid"]: r["n"] for r in rows}
        assert {s for s in answers.values()} <= {200, 503, 0}, Counter(answers.values())
        assert max(recorded.values()) == 1  # nothing recorded twice
        acknowledged = {rid for rid, status in answers.items() if 200 <= status < 300}
        assert acknowledged <= set(recorded)  # nothing acknowledged lost
        assert len(acknowledged) > 100
        total = sum(q for q, _ in [await _stock(pool, item, warehouse) for item in items])
        assert total == len(recorded)
    finally:
        api.stop()
