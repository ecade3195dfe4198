"""/metrics: commands by type and outcome, request latency, projection and relay lag."""

from __future__ import annotations

from tests.support.api_client import api_client, key_for


async def test_metrics_count_commands_and_report_lag(database_url, pool):
    headers = await key_for(pool)
    async with api_client(database_url) as client:
        location = (await client.post("/api/v1/locations", json={"location_name": "Main"}, headers=headers)).json()["data"]["id"]
        item = (await client.post("/api/v1/items", json={"part_number": "M-1", "part_name": "m"}, headers=headers)).json()["data"]["id"]
        await client.post(f"/api/v1/items/{item}/add", json={"location_id": location, "quantity": 2}, headers=headers)
        await client.post(f"/api/v1/items/{item}/remove", json={"location_id": location, "quantity": 5}, headers=headers)
        await client.get(f"/api/v1/items/{item}?min_position=3", headers=headers)
        r = await client.get("/metrics")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/plain")
    text = r.text
    assert 'ledger_commands_total{command="AddStock",outcome="accepted"}' in text
    assert 'ledger_commands_total{command="RemoveStock",outcome="insufficient_stock"}' in text
    assert 'ledger_http_request_duration_seconds_count{method="POST",route="/api/v1/items/{item_id}/add",status="200"}' in text
    assert 'ledger_projection_lag_positions{projection="stock"}' in text
