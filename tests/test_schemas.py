"""The exported JSON Schema and AsyncAPI document: current, and true of what is published."""

from __future__ import annotations

import asyncio
import json
import re
import uuid

import jsonschema
import nats

from consumers.relay import Relay
from consumers.wire import STREAM
from ledger.commands import AddStock, AdjustStock, CompleteJob, Line, ReserveStock, TransferStock, UpdateLocation
from schemas.export import GENERATED, asyncapi_document, documents, encode, event_json_schema
from tests.support.world import make_item, make_location


def test_the_checked_in_documents_are_what_the_definitions_generate():
    for name, document in documents().items():
        assert (GENERATED / name).read_bytes() == encode(document), f"run `python -m schemas.export` ({name} is stale)"


def test_the_event_schema_is_a_valid_json_schema_covering_every_event_type():
    schema = event_json_schema()
    jsonschema.Draft202012Validator.check_schema(schema)
    tags = {d["properties"]["type"]["enum"][0] for d in schema["$defs"].values() if "type" in d.get("properties", {}) and "enum" in d["properties"]["type"]}
    from schemas import EVENT_TYPES

    assert set(EVENT_TYPES) <= tags


async def test_every_published_message_matches_the_documents(store, org_id, pool, database_url, private_nats):
    warehouse, van = await make_location(store, org_id), await make_location(store, org_id, "Van")
    item = await make_item(store, org_id, cost_per_unit=12.5)
    await store.execute(org_id, AddStock(item_id=item, location_id=warehouse, quantity=10, notes="ünïcode"))
    await store.execute(org_id, TransferStock(item_id=item, from_location_id=warehouse, to_location_id=van, quantity=2, transfer_id=str(uuid.uuid4())))
    await store.execute(org_id, AdjustStock(item_id=item, location_id=van, quantity=-1, reason="broken"))
    await store.execute(org_id, ReserveStock(job_id=9, lines=[Line(item_id=item, location_id=warehouse, quantity=3)]))
    await store.execute(org_id, CompleteJob(job_id=9, lines=[Line(item_id=item, location_id=warehouse, quantity=1)]))
    await store.execute(org_id, UpdateLocation(location_id=van, changes={"is_active": False}))
    count = await pool.fetchval("SELECT count(*) FROM events")

    relay = Relay(database_url, private_nats.url)
    relay.start()
    try:
        for _ in range(200):
            if relay.published >= count:
                break
            await asyncio.sleep(0.05)
    finally:
        await relay.stop()

    envelope_schema = event_json_schema()
    asyncapi = asyncapi_document()
    message = asyncapi["components"]["messages"]["event"]
    payload_schema = {**message["payload"], "components": asyncapi["components"]}
    address = asyncapi["channels"]["ledgerEvent"]["address"]
    pattern = re.compile("^" + re.sub(r"\{(\w+)\}", r"(?P<\1>[^.]+)", re.escape(address).replace(r"\{", "{").replace(r"\}", "}")) + "$")
    nc = await nats.connect(private_nats.url)
    try:
        js = nc.jetstream()
        info = await js.stream_info(STREAM)
        assert info.state.messages == count
        types = set()
        for seq in range(info.state.first_seq, info.state.last_seq + 1):
            msg = await js.get_msg(STREAM, seq)
            body = json.loads(msg.data)
            jsonschema.validate(body, envelope_schema)
            jsonschema.validate(body, payload_schema)
            jsonschema.validate(dict(msg.headers), message["headers"])
            match = pattern.match(msg.subject)
            assert match and match["type"] == body["type"] == body["data"]["type"]
            assert match["org_id"] == str(body["org_id"]) and f"{match['stream_kind']}-{match['stream_id']}" == body["stream"]
            types.add(body["type"])
        assert {"LocationCreated", "ItemCreated", "Add", "Transfer_out", "Transfer_in", "Adjust", "Reserve", "Job_complete", "Release", "LocationUpdated"} <= types
    finally:
        await nc.close()
