"""Dead letters: events a projection could not apply.

A projection that meets one stops there (its checkpoint stays just before it); it does
not move on, because every later row would be built on a wrong one. The event is parked
with the error, and `projection_status` reports the projection as stuck until a fixed
projector applies it (a projector retries it whenever it takes ownership).
"""

from __future__ import annotations

import traceback
import uuid

import asyncpg

from projections import statements

_MAX_ERROR = 4000  # the error and the end of its traceback; enough to find the bug


async def park(conn: asyncpg.Connection, projection: str, position: int, event_id: uuid.UUID, error: BaseException) -> None:
    await conn.execute(statements.PARK_DEAD_LETTER, projection, position, event_id, describe(error))


def describe(error: BaseException) -> str:
    text = "".join(traceback.format_exception(error))
    return text if len(text) <= _MAX_ERROR else "..." + text[-_MAX_ERROR:]
