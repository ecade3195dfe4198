"""Where every projection stands, for /readyz and metrics (any process can ask)."""

from __future__ import annotations

from datetime import datetime

import asyncpg
import msgspec

from projections import statements


class ProjectionStatus(msgspec.Struct, frozen=True, kw_only=True):
    name: str
    position: int  # its checkpoint
    head: int  # the ledger's last position
    updated_at: datetime  # when the checkpoint last moved
    dead_letters: int
    stuck_at: int | None  # the position of the dead letter it has not got past

    @property
    def lag(self) -> int:
        """Events of the ledger not yet applied."""
        return max(self.head - self.position, 0)

    @property
    def stuck(self) -> bool:
        return self.stuck_at is not None


async def projection_status(conn: asyncpg.Connection | asyncpg.Pool) -> list[ProjectionStatus]:
    return [ProjectionStatus(**row) for row in await conn.fetch(statements.READ_PROJECTION_STATUS)]
