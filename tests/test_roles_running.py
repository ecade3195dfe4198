"""The loops of one `ledger serve` process (ledger/roles.py `running`), here in the test's
process: each started and doing its work, each stopped when the block ends. `ledger serve`
runs them in processes of their own in the slow tests (test_failover.py,
test_read_your_writes.py); test_roles.py says which loops run where."""

from __future__ import annotations

from consumers.webhooks import WebhookSettings
from ledger.roles import Loops, running
from tests.support.processes import wait_until
from tests.support.world import make_location

EVERY_LOOP = Loops(projector=True, relay=True, webhooks=True)


async def _every_loop_at(pool, position: int) -> bool:
    """The read models, the relay and the webhook emitter have all reached `position`."""
    projected = [r["position"] for r in await pool.fetch("SELECT position FROM projection_checkpoints")]
    published = await pool.fetchval("SELECT position FROM relay_checkpoints WHERE name = 'ledger'")
    emitted = await pool.fetchval("SELECT max(position) FROM webhook_emitter_checkpoints")
    return len(projected) == 4 and set(projected) == {position} and published == emitted == position


async def test_every_loop_of_a_process_runs_until_its_block_ends(store, org_id, pool, database_url, private_nats):
    async with running(EVERY_LOOP, database_url, private_nats.url, webhook_settings=WebhookSettings(allow_private=True)):
        await make_location(store, org_id)
        position = await pool.fetchval("SELECT max(position) FROM events")
        await wait_until(lambda: _every_loop_at(pool, position), 15, "every loop to reach the ledger's head")
    # Each loop stopped: none holds its lock (projections, relay, emitter, expiry) any more.
    held = await pool.fetchval("SELECT count(*) FROM pg_locks l JOIN pg_database d ON d.oid = l.database"
                               " WHERE l.locktype = 'advisory' AND d.datname = current_database()")
    assert held == 0
