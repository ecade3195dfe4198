"""An API client for tests: the real app on the test's database, keys made as needed."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

from litestar.testing import AsyncTestClient

from api.app import create_app
from api.settings import ApiSettings
from ledger.keys import ALL_SCOPES, create_key, ensure_organization


@contextlib.asynccontextmanager
async def api_client(database_url: str, *, projector: bool = True, **settings) -> AsyncIterator[AsyncTestClient]:
    """The app on the test's database, with a projector keeping the read models current."""
    app = create_app(ApiSettings(database_url=database_url, run_projector=projector, **settings))
    async with AsyncTestClient(app) as client:
        yield client


async def key_for(pool, org: str = "acme", scopes: tuple[str, ...] = ALL_SCOPES, **options) -> dict[str, str]:
    """Headers carrying a fresh key of `org` with `scopes`."""
    org_id = await ensure_organization(pool, org)
    created, _ = await create_key(pool, org_id, list(scopes), **options)
    return {"X-API-Key": created.key}
