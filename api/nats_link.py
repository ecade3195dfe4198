"""The API's connection to NATS, for readiness only: kept trying, never in a command's way.

Commands never wait for NATS (the relay publishes from the ledger); the API only reports
whether NATS is reachable. The first connect is retried in the background, so an API
started while NATS is down comes up and turns ready once NATS is back.
"""

from __future__ import annotations

import asyncio
import contextlib

import nats

from consumers.wire import nats_servers


class NatsLink:
    def __init__(self, url: str):
        self.url = url
        self.client: nats.NATS | None = None
        self._task: asyncio.Task | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._connect(), name="nats-link")

    async def _connect(self) -> None:
        delay = 0.5
        while self.client is None:
            with contextlib.suppress(Exception):
                self.client = await nats.connect(nats_servers(self.url), connect_timeout=2, max_reconnect_attempts=-1, name="ledger-api")
                return
            await asyncio.sleep(delay)
            delay = min(delay * 2, 10)

    @property
    def connected(self) -> bool:
        return self.client is not None and self.client.is_connected

    async def close(self) -> None:
        if self._task:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        if self.client is not None:
            with contextlib.suppress(Exception):
                await self.client.close()
