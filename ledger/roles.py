"""Which loops run in which process of a `ledger serve`: the one place that decides.

A role says what to run (`all`, or one of the others); `--workers` how many processes
serve the API. The projector (with the reservation expiry), the relay and the webhook
worker run once, never once per API worker: several API workers leave them to one
process spawned beside the workers. Any number of processes may run each role against
the same database and NATS (each loop takes its work over by advisory lock or lease).
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass

ROLES = ("all", "api", "projector", "relay", "webhooks")


@dataclass(frozen=True)
class Loops:
    """The loops a process runs besides the API."""

    projector: bool = False  # the read models, and the reservation expiry (it runs where projectors run)
    relay: bool = False  # the ledger to NATS
    webhooks: bool = False  # NATS to webhook deliveries

    def names(self) -> list[str]:
        return [name for name in ("projector", "relay", "webhooks") if getattr(self, name)]


@dataclass(frozen=True)
class Plan:
    """Where each loop of one `ledger serve` runs.

    `api_workers`: 0, no API; 1, the API in this process; more, that many uvicorn worker
    processes, each the API alone. `loops` run in this process, or, beside several API
    workers, in one process spawned for them (`loops_apart`).
    """

    api_workers: int
    # The process that serves the API runs the projector and the expiry inside the API's
    # lifespan, on the API's pool (`ApiSettings.run_projector`): no pool of their own.
    api_projector: bool
    loops: Loops

    @property
    def loops_apart(self) -> bool:
        return self.api_workers > 1


def plan(role: str, workers: int) -> Plan:
    if role not in ROLES:
        raise ValueError(f"unknown role {role!r}; roles are {', '.join(ROLES)}")
    every = role == "all"
    api = every or role == "api"
    projector = every or role == "projector"
    loops = Loops(projector=projector, relay=every or role == "relay", webhooks=every or role == "webhooks")
    if not api:
        return Plan(api_workers=0, api_projector=False, loops=loops)
    if workers > 1:
        return Plan(api_workers=workers, api_projector=False, loops=loops)
    return Plan(api_workers=1, api_projector=projector, loops=Loops(relay=loops.relay, webhooks=loops.webhooks))


@contextlib.asynccontextmanager
async def running(
    loops: Loops, database_url: str, nats_url: str | None = None, *, pool=None, stream_replicas: int = 1,
    webhook_settings=None,
) -> AsyncIterator[None]:
    """Run `loops` until the block ends, then stop them, last started first; each
    finishes its batch, so its checkpoint is written. The projector and the expiry use
    `pool` when given (the API's), else a small pool of their own."""
    async with contextlib.AsyncExitStack() as stack:
        if loops.relay:
            from consumers.relay import Relay

            relay = Relay(database_url, nats_url, replicas=stream_replicas)  # type: ignore[arg-type]  # given when these loops run
            relay.start()
            stack.push_async_callback(relay.stop)
        if loops.webhooks:
            from consumers.webhooks import WebhookWorker

            worker = WebhookWorker(database_url, nats_url, webhook_settings)  # type: ignore[arg-type]  # given when these loops run
            worker.start()
            stack.push_async_callback(worker.stop)
        if loops.projector:
            from ledger.expiry import ExpiryScheduler
            from projections import Projector, read_models

            if pool is None:
                from ledger.db import create_pool

                pool = await create_pool(database_url, min_size=1, max_size=4)
                stack.push_async_callback(pool.close)
            projector = Projector(pool, database_url, read_models())  # type: ignore[arg-type]  # a ReadModel is a Projection
            projector.start()
            stack.push_async_callback(projector.stop)
            expiry = ExpiryScheduler(pool)  # releases expired holds
            expiry.start()
            stack.push_async_callback(expiry.stop)
        yield
