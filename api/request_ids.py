"""The request id: the caller's `X-Request-ID` when it is sane, else a fresh one.

Kept in the ASGI scope so the success envelope, the error envelope, the response header
and every log line of the request use the same id.
"""

from __future__ import annotations

import re
import secrets

from litestar.types import Scope

_SANE = re.compile(rb"^[A-Za-z0-9._-]{1,64}$")


def request_id(scope: Scope) -> str:
    state = scope.setdefault("state", {})
    if "request_id" not in state:
        given = dict(scope.get("headers", [])).get(b"x-request-id", b"")
        state["request_id"] = given.decode() if _SANE.match(given) else secrets.token_hex(8)
    return state["request_id"]
