"""The OpenAPI document: every operation named and summarised; generated requests never 5xx.

schemathesis generates requests from the document (bounded: a few examples per
operation) against a real `ledger serve api` process, and checks that no response is a
5xx and every response conforms to the document.
"""

from __future__ import annotations

import asyncio
import tempfile
import time
import uuid
from pathlib import Path

import asyncpg
import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import (
    content_type_conformance,
    negative_data_rejection,
    not_a_server_error,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)
from schemathesis.config import SchemathesisConfig

from api.app import create_app
from api.settings import ApiSettings
from ledger.cli import SCHEMA_PACKAGES
from ledger.keys import ALL_SCOPES, create_key, ensure_organization
from ledger.migrate import migrate_dsn
from tests.conftest import with_database
from tests.support.processes import LedgerProcess, free_port, ledger_env

DOCUMENT = create_app(ApiSettings(database_url="postgresql://unused")).openapi_schema.to_schema()
schema = schemathesis.openapi.from_dict(DOCUMENT)


def test_every_operation_has_an_operation_id_and_a_summary():
    for path, operations in DOCUMENT["paths"].items():
        for method, operation in operations.items():
            if method in {"get", "post", "put", "patch", "delete"}:
                assert operation.get("operationId"), f"{method.upper()} {path} has no operationId"
                assert operation.get("summary") or operation.get("description"), f"{method.upper()} {path} has no summary"


@pytest.fixture(scope="module")
def live_api(postgres_url):
    name = f"ledger_openapi_{uuid.uuid4().hex[:12]}"

    async def prepare() -> tuple[str, str]:
        admin = await asyncpg.connect(postgres_url)
        await admin.execute(f'CREATE DATABASE "{name}"')
        await admin.close()
        url = with_database(postgres_url, name)
        await migrate_dsn(url, SCHEMA_PACKAGES)
        pool = await asyncpg.create_pool(url, min_size=1, max_size=2)
        org_id = await ensure_organization(pool, "acme")
        key = (await create_key(pool, org_id, list(ALL_SCOPES)))[0].key
        await pool.close()
        return url, key

    url, key = asyncio.run(prepare())
    port = free_port()
    env = {**ledger_env(url, "nats://127.0.0.1:1"), "LEDGER_PORT": str(port), "LEDGER_RATE_LIMIT": "1000000"}
    log_dir = Path(tempfile.mkdtemp())
    api = LedgerProcess("openapi-api", ["serve", "api", "--workers", "1"], env, log_dir).start()
    # Reads wait for the read models to reach the writes before them: a projector must run.
    projector = LedgerProcess("openapi-projector", ["serve", "projector"], env, log_dir).start()
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while True:
        try:
            if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                break
        except httpx.HTTPError:
            pass
        assert time.monotonic() < deadline, api.output()
        time.sleep(0.1)
    yield base, key
    api.kill()
    projector.kill()

    async def drop() -> None:
        admin = await asyncpg.connect(postgres_url)
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()

    asyncio.run(drop())


def call_and_validate(case, live_api) -> None:
    base, key = live_api
    response = case.call(base_url=base, headers={"X-API-Key": key}, timeout=10)
    case.validate_response(
        response,
        checks=[
            not_a_server_error,
            status_code_conformance,  # every status answered is documented for its operation
            content_type_conformance,
            response_headers_conformance,
            response_schema_conformance,  # success and error bodies match their schemas
            negative_data_rejection,  # a request the document forbids is refused with a 4xx
        ],
    )


@pytest.mark.slow  # every operation: half a minute or more
@schema.parametrize()
@settings(max_examples=20, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)
def test_generated_requests_get_no_5xx_and_responses_match_the_document(case, live_api):
    call_and_validate(case, live_api)


# For the fast loop (`pytest -m "not slow"`): one operation of each kind of route (a body,
# a path, a query, a command, a batch, seed 004's /inventory, webhooks, the feed), with
# fewer examples and without the coverage phase (its boundary cases are most of the time).
QUICK = ["createItem", "getItem", "listItems", "transferStock", "reserveStock", "executeBatch", "inventoryGet",
         "createWebhook", "listEvents"]
QUICK_CONFIG = SchemathesisConfig()
QUICK_CONFIG.projects.default.phases.update(phases=["examples", "fuzzing"])
quick_schema = schemathesis.openapi.from_dict(DOCUMENT, config=QUICK_CONFIG).include(operation_id=QUICK)


@quick_schema.parametrize()
@settings(max_examples=10, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)
def test_generated_requests_to_a_few_operations_get_no_5xx_and_match_the_document(case, live_api):
    call_and_validate(case, live_api)
