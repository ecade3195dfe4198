"""`WebhookWorker`: the emitter and a deliverer, run together (`ledger serve webhooks`).

    worker = WebhookWorker(database_url, nats_url, WebhookSettings.from_env())
    worker.start()
    ...
    await worker.stop()

Any number of workers may run against the same database and NATS: one emitter is active
at a time (the others stand by and take over when it dies), and every deliverer sends.
"""

from __future__ import annotations

from consumers.webhooks.deliverer import Deliverer
from consumers.webhooks.emitter import Emitter
from consumers.webhooks.settings import WebhookSettings


class WebhookWorker:
    def __init__(self, dsn: str, nats_url: str, settings: WebhookSettings | None = None):
        self.settings = settings or WebhookSettings.from_env()
        self.deliverer = Deliverer(dsn, self.settings)
        # The emitter wakes the deliverer beside it directly: no wait for the notification.
        self.emitter = Emitter(dsn, nats_url, self.settings, on_recorded=self.deliverer.wake)

    def start(self) -> None:
        self.emitter.start()
        self.deliverer.start()

    async def stop(self) -> None:
        """The emitter commits and acks its batch in hand; attempts in flight finish."""
        await self.emitter.stop()
        await self.deliverer.stop()
