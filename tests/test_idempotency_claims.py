"""An Idempotency-Key whose request died with its database session is free for a retry at
once; one whose request is still running is not; and the late end of a request that lost
its claim changes nothing under the key (api/idempotency.py)."""

from __future__ import annotations

import hashlib
import time
import uuid

import asyncpg
import msgspec

from api import idempotency, statements
from ledger.keys import ensure_organization
from tests.support.api_client import api_client, key_for

V1 = "/api/v1"


def fingerprint(path: str, body: bytes) -> bytes:
    """As the middleware computes it: method, path, query and body."""
    return hashlib.sha256(b"\0".join([b"POST", path.encode(), b"", body])).digest()


async def _world(client, headers) -> tuple[str, bytes]:
    """A location and an item; the path and body of an add of 3 there."""
    location = (await client.post(f"{V1}/locations", json={"location_name": "A"}, headers=headers)).json()["data"]["id"]
    item = (await client.post(f"{V1}/items", json={"part_number": "P-1", "part_name": "p"}, headers=headers)).json()["data"]["id"]
    return f"{V1}/items/{item}/add", msgspec.json.encode({"location_id": location, "quantity": 3})


async def _post(client, headers, path: str, body: bytes, key: str):
    return await client.post(path, content=body, headers={**headers, "Idempotency-Key": key, "Content-Type": "application/json"})


async def _adds(pool, org_id: int) -> int:
    return await pool.fetchval("SELECT count(*) FROM events WHERE org_id = $1 AND type = 'Add'", org_id)


async def test_a_key_whose_request_died_with_its_database_session_is_retaken_at_once(database_url, pool):
    """The claim of an attempt whose session ended (as every session does when the server
    restarts or the API process dies) does not hold a retry back: before the fix, a retry
    waited 10 s and was refused `409 idempotency_key_in_use` for a minute."""
    async with api_client(database_url, projector=False) as client:
        headers = await key_for(pool)
        org_id = await ensure_organization(pool, "acme")
        path, body = await _world(client, headers)
        dead = await asyncpg.connect(database_url)
        assert await dead.fetchval(statements.CLAIM_IDEMPOTENCY_KEY, org_id, "k-1", fingerprint(path, body), uuid.uuid4())
        await dead.close()

        started = time.monotonic()
        r = await _post(client, headers, path, body, "k-1")
        assert r.status_code == 200, r.text
        assert time.monotonic() - started < 2.0
        assert r.json()["data"]["new_quantity"] == 3 and "Idempotent-Replayed" not in r.headers
        again = await _post(client, headers, path, body, "k-1")
        assert again.status_code == 200 and again.headers["Idempotent-Replayed"] == "true"
        assert again.content == r.content
        assert await _adds(pool, org_id) == 1


async def test_a_claim_made_before_the_server_restarted_is_retaken_at_once(database_url, pool):
    """A claim naming a session of an earlier server run: the pid lives again (pids are
    reused), but not the session that started at the claimed time."""
    async with api_client(database_url, projector=False) as client:
        headers = await key_for(pool)
        org_id = await ensure_organization(pool, "acme")
        path, body = await _world(client, headers)
        async with pool.acquire() as conn:  # a live session, claimed as if it had started long ago
            await conn.execute(
                "INSERT INTO idempotency_records (org_id, idempotency_key, fingerprint, claim_token, claimed_by_pid,"
                " claimed_by_started) VALUES ($1, $2, $3, $4, pg_backend_pid(), '2000-01-01T00:00:00Z')",
                org_id, "k-2", fingerprint(path, body), uuid.uuid4(),
            )
        started = time.monotonic()
        r = await _post(client, headers, path, body, "k-2")
        assert r.status_code == 200, r.text
        assert time.monotonic() - started < 2.0
        assert await _adds(pool, org_id) == 1


async def test_a_key_whose_request_is_still_running_is_not_taken(database_url, pool, monkeypatch):
    monkeypatch.setattr(idempotency, "WAIT_SECONDS", 0.3)
    async with api_client(database_url, projector=False) as client:
        headers = await key_for(pool)
        org_id = await ensure_organization(pool, "acme")
        path, body = await _world(client, headers)
        running = await asyncpg.connect(database_url)  # the session of a request still in flight
        try:
            await running.fetchval(statements.CLAIM_IDEMPOTENCY_KEY, org_id, "k-3", fingerprint(path, body), uuid.uuid4())
            r = await _post(client, headers, path, body, "k-3")
            assert r.status_code == 409 and r.json()["error"] == "idempotency_key_in_use", r.text
            assert await _adds(pool, org_id) == 0
        finally:
            await running.close()
        r = await _post(client, headers, path, body, "k-3")  # its session ended: now the retry runs
        assert r.status_code == 200, r.text
        assert await _adds(pool, org_id) == 1


async def test_the_late_end_of_a_request_that_lost_its_claim_changes_nothing(database_url, pool):
    """The dead attempt's `finally` comes late (its process was only cut off): giving the
    key back or storing its response must not touch the claim of the retry that took over."""
    async with api_client(database_url, projector=False) as client:
        headers = await key_for(pool)
        org_id = await ensure_organization(pool, "acme")
        path, body = await _world(client, headers)
        late = uuid.uuid4()
        dead = await asyncpg.connect(database_url)
        await dead.fetchval(statements.CLAIM_IDEMPOTENCY_KEY, org_id, "k-4", fingerprint(path, body), late)
        await dead.close()
        r = await _post(client, headers, path, body, "k-4")
        assert r.status_code == 200, r.text

        await pool.execute(statements.RELEASE_IDEMPOTENCY_KEY, org_id, "k-4", late)
        await pool.execute(statements.COMPLETE_IDEMPOTENCY_RECORD, org_id, "k-4", 500, {}, b"late", late)
        record = await pool.fetchrow(statements.READ_IDEMPOTENCY_RECORD, org_id, "k-4")
        assert record is not None and record["status"] == 200 and record["body"] == r.content
        again = await _post(client, headers, path, body, "k-4")
        assert again.headers["Idempotent-Replayed"] == "true" and again.content == r.content
        assert await _adds(pool, org_id) == 1


async def test_a_retaken_key_whose_command_was_recorded_answers_with_the_recording(database_url, pool):
    """The attempt that died had committed its command (the answer was lost with the
    database): the retry finds the recording by the key's command id and appends nothing."""
    async with api_client(database_url, projector=False) as client:
        headers = await key_for(pool)
        org_id = await ensure_organization(pool, "acme")
        path, body = await _world(client, headers)
        first = await _post(client, headers, path, body, "k-5")
        assert first.status_code == 200
        # As if its response had never been stored: the claim is back in flight, its session gone.
        dead = await asyncpg.connect(database_url)
        await dead.execute("DELETE FROM idempotency_records WHERE org_id = $1 AND idempotency_key = 'k-5'", org_id)
        await dead.fetchval(statements.CLAIM_IDEMPOTENCY_KEY, org_id, "k-5", fingerprint(path, body), uuid.uuid4())
        await dead.close()
        r = await _post(client, headers, path, body, "k-5")
        assert r.status_code == 200, r.text
        assert r.json()["data"]["new_quantity"] == 3
        assert r.headers["X-Ledger-Position"] == first.headers["X-Ledger-Position"]
        assert await _adds(pool, org_id) == 1
