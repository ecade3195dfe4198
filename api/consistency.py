"""Read-after-write: a read may ask to see the ledger at least up to a position.

`min_position` (query) or `X-Ledger-Min-Position` (header), typically the
`X-Ledger-Position` of the caller's last command. The read waits briefly for the read
models to reach it; if they do not in time it is refused (`503 not_caught_up`, with
Retry-After), never answered from a model that is behind what the caller asked for.
"""

from __future__ import annotations

from litestar import Request

from ledger import errors, statements
from projections import wait_for_position

WAIT_SECONDS = 3.0


class NotCaughtUp(errors.LedgerError):
    code = "not_caught_up"
    status = 503
    default_message = "The read models have not reached the requested position yet; retry shortly"


async def caught_up(request: Request, min_position: int | None) -> None:
    wanted = min_position
    header = request.headers.get("x-ledger-min-position")
    if header is not None:
        try:
            asked = int(header)
        except ValueError:
            asked = -1
        if not 0 <= asked < 2**63:  # checked before max(): a negative header is refused, not ignored
            raise errors.ValidationFailed("X-Ledger-Min-Position must be a ledger position (an integer)")
        wanted = max(wanted or 0, asked)
    if not wanted:
        return
    if not 0 <= wanted < 2**63:
        raise errors.ValidationFailed("min_position must be a ledger position")
    pool = request.app.state.pool
    # A position no command was ever given cannot be waited for: the caller's mistake.
    if wanted > await pool.fetchval(statements.READ_LAST_POSITION):
        raise errors.ValidationFailed("min_position is beyond the ledger's last position", code="unknown_position")
    if not await wait_for_position(pool, wanted, timeout=WAIT_SECONDS):
        raise NotCaughtUp(position=wanted)
