"""Settings, read once from `LEDGER_*` environment variables and grouped by concern."""

from __future__ import annotations

import os
from pathlib import Path

import msgspec


class DatabaseSettings(msgspec.Struct, frozen=True, kw_only=True):
    url: str | None = None  # None: the embedded PostgreSQL under data_dir
    pool_min: int = 2
    pool_max: int = 20


class NatsSettings(msgspec.Struct, frozen=True, kw_only=True):
    url: str | None = None  # None: the embedded nats-server under data_dir
    stream_replicas: int = 1  # of the LEDGER stream: 3 on a three-node cluster


class HttpSettings(msgspec.Struct, frozen=True, kw_only=True):
    host: str = "127.0.0.1"
    port: int = 8000


class Settings(msgspec.Struct, frozen=True, kw_only=True):
    data_dir: Path = Path(".ledger-data")
    log_format: str = "console"
    database: DatabaseSettings = DatabaseSettings()
    nats: NatsSettings = NatsSettings()
    http: HttpSettings = HttpSettings()

    @classmethod
    def from_env(cls, env: dict[str, str] | None = None) -> Settings:
        env = os.environ if env is None else env
        return cls(
            data_dir=Path(env.get("LEDGER_DATA_DIR", ".ledger-data")),
            log_format=env.get("LEDGER_LOG_FORMAT", "console"),
            database=DatabaseSettings(url=env.get("LEDGER_DATABASE_URL") or None),
            nats=NatsSettings(
                url=env.get("LEDGER_NATS_URL") or None,
                stream_replicas=int(env.get("LEDGER_NATS_STREAM_REPLICAS", "1")),
            ),
            http=HttpSettings(
                host=env.get("LEDGER_HOST", "127.0.0.1"), port=int(env.get("LEDGER_PORT", "8000"))
            ),
        )
