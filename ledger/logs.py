"""Logging: structlog, readable in a terminal, JSON lines in production.

Secrets never reach a log line: values under key-like names are masked, and any string
that looks like an API key or a webhook secret is masked wherever it appears.
"""

from __future__ import annotations

import logging
import re
import sys

import msgspec
import structlog

_SECRET_NAMES = {"authorization", "x-api-key", "api_key", "key", "secret", "password", "token"}
_SECRET_VALUE = re.compile(r"\b(ldg_|whsec_)[A-Za-z0-9_\-+/=]{8,}")


def _mask(value):
    if isinstance(value, str):
        return _SECRET_VALUE.sub(lambda m: m.group(1) + "***", value)
    if isinstance(value, dict):
        return {k: "***" if str(k).lower() in _SECRET_NAMES else _mask(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return type(value)(_mask(v) for v in value)
    return value


def redact_secrets(_, __, event_dict: dict) -> dict:
    return _mask(event_dict)


# msgspec: a few times faster than json.dumps on every request's line; what it cannot
# encode is written as str().
_to_json = msgspec.json.Encoder(enc_hook=str).encode


def _json(event_dict: dict, **_) -> str:
    return _to_json(event_dict).decode()


def configure_logging(log_format: str = "console", level: int = logging.INFO, stream=None) -> None:
    stream = stream or sys.stderr
    renderer = (
        structlog.processors.JSONRenderer(serializer=_json)
        if log_format == "json"
        else structlog.dev.ConsoleRenderer(colors=stream.isatty())
    )
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.format_exc_info,
            redact_secrets,  # type: ignore[list-item]  # structlog's processor protocol is looser than its stub
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(level),
        logger_factory=structlog.PrintLoggerFactory(stream),
        cache_logger_on_first_use=False,
    )
