"""The objects every request of the app shares, and how handlers and middleware get them.

Route handlers name them as parameters (`store: shared.Store`, `reads: shared.Reads`, ...)
and litestar injects them (`dependencies()`, set on the app); injected parameters are
not request parameters, so the OpenAPI document does not show them. Middleware runs
before injection: it reads them from the scope, through `of_scope` only.

A route that takes two of them pays for it: litestar resolves the dependencies of one
route that do not depend on each other in a task group, about 70 us a request against 1
us for one. The hot routes take one each (commands the store, reads `Reads`); only rare
ones (revoking a key, registering a webhook, /readyz) take two.
"""

from __future__ import annotations

from typing import Any

import asyncpg
from litestar.datastructures import State
from litestar.di import NamedDependency, Provide
from litestar.params import SkipValidation
from litestar.types import Scope

from api import auth, consistency, nats_link
from api import settings as api_settings
from consumers.webhooks import settings as webhook_settings
from ledger.store import EventStore
from projections.watch import CheckpointWatch


class Shared:
    """Made by the app's lifespan (api/app.py), closed by it."""

    __slots__ = ("checkpoints", "key_cache", "nats", "pool", "reads", "store")

    def __init__(self) -> None:
        self.pool: asyncpg.Pool | None = None
        self.store: EventStore | None = None
        self.key_cache: auth.KeyCache | None = None
        self.checkpoints: CheckpointWatch | None = None
        self.reads: consistency.Reads | None = None  # the pool and the checkpoints, for the reads
        self.nats: nats_link.NatsLink | None = None  # None without a NATS url


def state(shared: Shared) -> State:
    """The app's state: where middleware finds the shared objects."""
    return State({"shared": shared})


def of_scope(scope: Scope) -> Shared:
    """For middleware, which dependency injection does not reach."""
    return scope["app"].state.shared


# Handler parameter types. Injected by name; not validated per request (SkipValidation):
# they are the app's own objects, not a caller's input.
Pool = NamedDependency[SkipValidation[asyncpg.Pool]]
Store = NamedDependency[SkipValidation[EventStore]]
KeyCache = NamedDependency[SkipValidation[auth.KeyCache]]
Reads = NamedDependency[SkipValidation[consistency.Reads]]
Nats = NamedDependency[SkipValidation[nats_link.NatsLink | None]]
Settings = NamedDependency[SkipValidation[api_settings.ApiSettings]]
WebhookSettings = NamedDependency[SkipValidation[webhook_settings.WebhookSettings]]


def dependencies(shared: Shared, settings: api_settings.ApiSettings) -> dict[str, Provide]:
    """Each shared object under its parameter name, for `Litestar(dependencies=...)`.

    Providers run on every request that asks for them, so each is a plain function called
    in the event loop (`sync_to_thread=False`: litestar would otherwise send each to a
    worker thread, a thread hop per dependency per request). The settings exist before the
    app and never change: cached (`use_cache`), they cost one attribute test. The others
    are made by the lifespan, so each is looked up (one attribute read): a cached one
    would outlive a lifespan run again on the same app.
    """

    def made_by_lifespan(name: str) -> Provide:
        def provide() -> Any:
            return getattr(shared, name)

        provide.__name__ = f"provide_{name}"
        return Provide(provide, sync_to_thread=False)

    def fixed(value: Any) -> Provide:
        return Provide(lambda: value, use_cache=True, sync_to_thread=False)

    return {
        **{name: made_by_lifespan(name) for name in ("pool", "store", "key_cache", "reads", "nats")},
        "settings": fixed(settings),
        "webhook_settings": fixed(settings.webhooks),
    }
