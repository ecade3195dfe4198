"""The per-stream hash chain.

hash = sha256(prev_hash || canonical JSON of the event without `hash` and `position`),
chained by version within a stream; the first event of a stream chains to GENESIS.
Canonical JSON is msgspec's compact encoding with keys sorted at every level, so the
same event hashes the same whether it is a fresh Struct or a row decoded from jsonb.
The position is left out because the database draws it inside the append; `verify`
checks separately that positions rise with versions along every stream.
"""

from __future__ import annotations

import hashlib
import uuid
from datetime import datetime
from typing import Any

import msgspec

GENESIS = "0" * 64
_encoder = msgspec.json.Encoder(order="sorted")


def event_hash(
    prev_hash: str,
    *,
    event_id: uuid.UUID,
    org_id: int,
    stream: str,
    version: int,
    type: str,
    data: Any,
    metadata: Any,
    recorded_at: datetime,
) -> str:
    canonical = _encoder.encode(
        {
            "data": data,
            "event_id": event_id,
            "metadata": metadata,
            "org_id": org_id,
            "prev_hash": prev_hash,
            "recorded_at": recorded_at,
            "stream": stream,
            "type": type,
            "version": version,
        }
    )
    return hashlib.sha256(prev_hash.encode() + canonical).hexdigest()
