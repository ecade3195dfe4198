"""JSON Schema for every event and an AsyncAPI document for the NATS subjects, generated
from the msgspec definitions (so they cannot drift from what is published).

    python -m schemas.export      # rewrites schemas/generated/*.json

The files are checked in for readers and other languages' code generators; a test fails
when they differ from what this module generates.
"""

from __future__ import annotations

from pathlib import Path

import msgspec

from schemas.events import EVENT_TYPES, EventEnvelope, LedgerEvent

GENERATED = Path(__file__).parent / "generated"
_REF_TEMPLATE = "#/components/schemas/{name}"


def event_json_schema() -> dict:
    """One JSON Schema document: the envelope, with every event type under `$defs`."""
    return msgspec.json.schema(EventEnvelope)


def asyncapi_document() -> dict:
    (envelope, *_), components = msgspec.json.schema_components([EventEnvelope, LedgerEvent], ref_template=_REF_TEMPLATE)
    headers = {
        "type": "object",
        "required": ["Nats-Msg-Id", "Ledger-Position", "Ledger-Org", "Ledger-Type"],
        "properties": {
            "Nats-Msg-Id": {"type": "string", "format": "uuid", "description": "The event id (JetStream de-duplication)"},
            "Ledger-Position": {"type": "string", "description": "The event's ledger position, decimal"},
            "Ledger-Org": {"type": "string", "description": "The organization id, decimal"},
            "Ledger-Type": {"type": "string", "enum": list(EVENT_TYPES)},
        },
    }
    parameters = {
        "org_id": {"description": "Organization id"},
        "stream_kind": {"enum": ["item", "location"], "description": "What the stream is about"},
        "stream_id": {"description": "The item or location id"},
        "type": {"enum": list(EVENT_TYPES), "description": "The event type"},
    }
    return {
        "asyncapi": "3.0.0",
        "info": {
            "title": "Inventory ledger events",
            "version": "1.0.0",
            "description": (
                "Every event of the ledger, in ledger order, on the JetStream stream LEDGER (subjects ledger.>). "
                "PostgreSQL is the source of truth; the relay publishes each event once it is committed, waits "
                "for the publish ack, and may publish an event again after a crash (same Nats-Msg-Id): "
                "consumers skip event ids they have handled."
            ),
        },
        "channels": {
            "ledgerEvent": {
                "address": "ledger.{org_id}.{stream_kind}.{stream_id}.{type}",
                "parameters": parameters,
                "messages": {"event": {"$ref": "#/components/messages/event"}},
            }
        },
        "operations": {
            "receiveLedgerEvent": {
                "action": "receive",
                "channel": {"$ref": "#/channels/ledgerEvent"},
                "messages": [{"$ref": "#/channels/ledgerEvent/messages/event"}],
            }
        },
        "components": {
            "messages": {
                "event": {
                    "name": "event",
                    "contentType": "application/json",
                    "headers": headers,
                    "payload": envelope,
                }
            },
            "schemas": components,
        },
    }


def documents() -> dict[str, dict]:
    return {"events.schema.json": event_json_schema(), "asyncapi.json": asyncapi_document()}


def encode(document: dict) -> bytes:
    return msgspec.json.format(msgspec.json.encode(document), indent=2) + b"\n"


def main() -> None:
    GENERATED.mkdir(exist_ok=True)
    for name, document in documents().items():
        (GENERATED / name).write_bytes(encode(document))
        print(f"wrote {GENERATED / name}")


if __name__ == "__main__":
    main()
