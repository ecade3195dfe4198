"""The litestar application: `create_app()` and the lifespan that owns the pool."""

from __future__ import annotations

import contextlib
import os
from collections.abc import AsyncIterator

from litestar import Litestar, Router
from litestar.middleware import DefineMiddleware

from api.auth import KeyCache, require_scope
from api.bodies import strict_body
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
from api.settings import ApiSettings
from ledger.db import create_pool
from ledger.expiry import ExpiryScheduler
from ledger.logs import configure_logging
from ledger.store import EventStore
from projections import Projector, read_models
from projections.watch import CheckpointWatch


def create_app(settings: ApiSettings | None = None) -> Litestar:
    if settings is None:  # an API worker process started from the environment (serve --workers)
        configure_logging(os.environ.get("LEDGER_LOG_FORMAT", "console"))
        settings = ApiSettings.from_env()

    @contextlib.asynccontextmanager
    async def lifespan(app: Litestar) -> AsyncIterator[None]:
        pool = await create_pool(settings.database_url, min_size=settings.pool_min, max_size=settings.pool_max,
                                 timeout=settings.db_timeout)
        app.state.pool = pool
        app.state.store = EventStore(pool)
        app.state.key_cache = KeyCache()
        app.state.checkpoints = CheckpointWatch(pool, settings.database_url)  # reads wait on it
        app.state.checkpoints.start()
        app.state.nats = NatsLink(settings.nats_url) if settings.nats_url else None
        if app.state.nats:
            app.state.nats.start()
        projector = Projector(pool, settings.database_url, read_models()) if settings.run_projector else None
        expiry = ExpiryScheduler(pool) if settings.run_projector else None  # runs where projectors run
        if projector:
            projector.start()
            expiry.start()
        try:
            yield
        finally:
            if projector:
                await expiry.stop()
                await projector.stop()  # finishes its batch: the checkpoint is written
            if app.state.nats:
                await app.state.nats.close()
            await app.state.checkpoints.stop()
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
