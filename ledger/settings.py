"""Settings, read once from `LEDGER_*` environment variables and grouped by concern.

`Settings.from_env` is the one reader of the environment: the CLI calls it, and hands
each part on (the API gets its own `ApiSettings` made from it, api/settings.py).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING

import msgspec

if TYPE_CHECKING:
    from consumers.webhooks.settings import WebhookSettings


class DatabaseSettings(msgspec.Struct, frozen=True, kw_only=True):
    url: str | None = None  # None: the embedded PostgreSQL under data_dir
    # Connections per API process. The projector's (4) and the relay's (2) pools are fixed
    # in the code: they need no more whatever the load.
    pool_max: int = 20


class NatsSettings(msgspec.Struct, frozen=True, kw_only=True):
    url: str | None = None  # None: the embedded nats-server under data_dir
    stream_replicas: int = 1  # of the LEDGER stream: 3 on a three-node cluster


class HttpSettings(msgspec.Struct, frozen=True, kw_only=True):
    host: str = "127.0.0.1"
    port: int = 8000
    rate_limit: int = 6000  # requests per rate_limit_unit per key (or per address without one)
    rate_limit_unit: str = "minute"


class Settings(msgspec.Struct, frozen=True, kw_only=True):
    data_dir: Path = Path(".ledger-data")
    log_format: str = "console"
    database: DatabaseSettings = DatabaseSettings()
    nats: NatsSettings = NatsSettings()
    http: HttpSettings = HttpSettings()
    # The LEDGER_WEBHOOK_* variables as found, parsed by `webhooks()` when a command needs
    # them: importing the webhook package here would cost every command 0.4 s.
    webhook_variables: dict[str, str] = {}

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if env is None else env
        return cls(
            data_dir=Path(env.get("LEDGER_DATA_DIR", ".ledger-data")),
            log_format=env.get("LEDGER_LOG_FORMAT", "console"),
            database=DatabaseSettings(
                url=env.get("LEDGER_DATABASE_URL") or None,
                pool_max=int(env.get("LEDGER_DB_POOL_MAX", "20")),
            ),
            nats=NatsSettings(
                url=env.get("LEDGER_NATS_URL") or None,
                stream_replicas=int(env.get("LEDGER_NATS_STREAM_REPLICAS", "1")),
            ),
            http=HttpSettings(
                host=env.get("LEDGER_HOST", "127.0.0.1"), port=int(env.get("LEDGER_PORT", "8000")),
                rate_limit=int(env.get("LEDGER_RATE_LIMIT", "6000")),
                rate_limit_unit=env.get("LEDGER_RATE_LIMIT_UNIT", "minute"),
            ),
            webhook_variables={k: v for k, v in env.items() if k.startswith("LEDGER_WEBHOOK_")},
        )

    def webhooks(self) -> WebhookSettings:
        from consumers.webhooks.settings import WebhookSettings

        return WebhookSettings.from_env(self.webhook_variables)
