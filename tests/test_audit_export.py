"""`ledger export`: the ledger out as NDJSON or CSV, enough to check every hash outside the service."""

from __future__ import annotations

import csv
import io
import json
import uuid
from datetime import datetime

from ledger.commands import AddStock, TransferStock
from ledger.hashing import event_hash
from ledger.keys import ensure_organization
from tests.support.world import make_item, make_location
from tests.test_audit_verify import run_ledger


async def two_organizations(store, pool, org_id) -> int:
    other_org = await ensure_organization(pool, "globex")
    for org in (org_id, other_org):
        main, van = await make_location(store, org, "Main"), await make_location(store, org, "Van")
        item = await make_item(store, org)
        await store.execute(org, AddStock(item_id=item, location_id=main, quantity=10, notes='a "quoted", note'))
        await store.execute(org, TransferStock(item_id=item, from_location_id=main, to_location_id=van, quantity=4))
    return other_org


async def test_ndjson_round_trips_event_ids_positions_and_hashes(store, pool, org_id, database_url):
    await two_organizations(store, pool, org_id)
    stored = await pool.fetch("SELECT event_id, position, org_id FROM events ORDER BY position")
    exported = await run_ledger(database_url, "export", "--format", "ndjson")
    assert exported.returncode == 0, exported.stderr
    lines = [json.loads(line) for line in exported.stdout.splitlines()]
    assert [(uuid.UUID(e["event_id"]), e["position"]) for e in lines] == [(r["event_id"], r["position"]) for r in stored]
    assert f"exported {len(stored)} events" in exported.stderr
    for e in lines:  # everything needed to recompute the chain is in the export
        assert e["hash"] == event_hash(
            e["prev_hash"], event_id=uuid.UUID(e["event_id"]), org_id=e["org_id"], stream=e["stream"],
            version=e["version"], type=e["type"], data=e["data"], metadata=e["metadata"],
            recorded_at=datetime.fromisoformat(e["recorded_at"]),
        )

    mine = await run_ledger(database_url, "export", "--format", "ndjson", "--org", "acme", "--after", str(stored[3]["position"]))
    assert [json.loads(line)["position"] for line in mine.stdout.splitlines()] == [
        r["position"] for r in stored[4:] if r["org_id"] == org_id]


async def test_csv_has_a_header_and_one_row_per_event(store, pool, org_id, database_url):
    await two_organizations(store, pool, org_id)
    exported = await run_ledger(database_url, "export", "--format", "csv", "--org", "globex")
    assert exported.returncode == 0, exported.stderr
    rows = list(csv.DictReader(io.StringIO(exported.stdout)))
    stored = await pool.fetch("SELECT * FROM events WHERE org_id <> $1 ORDER BY position", org_id)
    assert [int(r["position"]) for r in rows] == [r["position"] for r in stored]
    adds = [r for r in rows if r["type"] == "Add"]
    assert json.loads(adds[0]["data"])["notes"] == 'a "quoted", note'
    refused = await run_ledger(database_url, "export", "--format", "csv", "--org", "nobody")
    assert refused.returncode != 0 and "no organization named 'nobody'" in refused.stderr
