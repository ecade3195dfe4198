"""The litestar application: `create_app()` and the lifespan that owns the pool."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

from litestar import Litestar, Router
from litestar.middleware import DefineMiddleware

from api import shared as shared_objects
from api.auth import KeyCache, require_scope
from api.bodies import strict_body
from api.consistency import Reads
from api.errors import handle_exception
from api.idempotency import IdempotencyMiddleware
from api.metrics import metrics
from api.nats_link import NatsLink
from api.openapi import document_errors, openapi_config
from api.request_pass import add_request_id, request_pass
from api.routes.audit import AuditController
from api.routes.batches import execute_batch
from api.routes.compat import InventoryController
from api.routes.events import EventController
from api.routes.health import healthz, readyz
from api.routes.items import ItemController
from api.routes.jobs import JobController
from api.routes.keys import ApiKeyController
from api.routes.locations import LocationController
from api.routes.reads import ItemReadController, LocationReadController, get_job, low_stock
from api.routes.stock import StockController
from api.routes.transfers import TransferController
from api.routes.webhooks import WebhookController
from api.settings import ApiSettings, handed_over
from ledger import roles
from ledger.db import create_pool
from ledger.logs import configure_logging
from ledger.store import EventStore
from projections.watch import CheckpointWatch


def create_app(settings: ApiSettings) -> Litestar:
    shared = shared_objects.Shared()

    @contextlib.asynccontextmanager
    async def lifespan(app: Litestar) -> AsyncIterator[None]:
        pool = await create_pool(settings.database_url, min_size=settings.pool_min, max_size=settings.pool_max,
                                 timeout=settings.db_timeout)
        shared.pool, shared.store, shared.key_cache = pool, EventStore(pool), KeyCache()
        shared.checkpoints = CheckpointWatch(pool, settings.database_url)
        shared.checkpoints.start()
        shared.reads = Reads(pool, shared.checkpoints)
        shared.nats = NatsLink(settings.nats_url) if settings.nats_url else None
        if shared.nats:
            shared.nats.start()
        try:
            async with roles.running(roles.Loops(projector=settings.run_projector), settings.database_url, pool=pool):
                yield
        finally:
            if shared.nats:
                await shared.nats.close()
            await shared.checkpoints.stop()
            await pool.close()

    api = Router(
        path="/api/v1",
        route_handlers=[
            ItemController, ItemReadController, StockController, TransferController, JobController,
            LocationController, LocationReadController, low_stock, get_job, ApiKeyController,
            InventoryController, WebhookController, EventController, AuditController, execute_batch,
        ],
        guards=[require_scope],
        before_request=strict_body,  # bodies strictly typed (api/bodies.py)
    )
    app = Litestar(
        route_handlers=[api, healthz, readyz, metrics],
        lifespan=[lifespan],
        dependencies=shared_objects.dependencies(shared, settings),
        state=shared_objects.state(shared),
        middleware=[
            request_pass(settings.rate_limit, settings.rate_limit_unit),  # request id, rate limit, key, log line
            DefineMiddleware(IdempotencyMiddleware, max_body_size=settings.max_body_size),
        ],
        exception_handlers={Exception: handle_exception},
        before_send=[add_request_id],
        request_max_body_size=settings.max_body_size,
        openapi_config=openapi_config(),
        debug=False,
    )
    document_errors(app)
    return app


def worker_app() -> Litestar:
    """The app of an API worker process (`ledger serve --workers N`): uvicorn's factory."""
    settings, log_format = handed_over()
    configure_logging(log_format)
    return create_app(settings)
