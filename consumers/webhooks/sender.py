"""One attempt of one delivery: an HTTP POST, signed, bounded in time, and how it went.

It speaks through httpcore (the transport under httpx) directly: an attempt needs none of
httpx's request and response models, cookies, auth or redirects, and skipping them
costs a third less CPU per attempt, which at hundreds of deliveries a second is most of
a core. Redirects are not followed (a 3xx is a failed attempt): following one would send
the delivery to an address nobody checked. No proxy from the environment is used: the
request must go to the address that was checked.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from datetime import UTC, datetime
from urllib.parse import urlsplit

import httpcore
import msgspec

from consumers.webhooks.settings import WebhookSettings
from consumers.webhooks.signing import signature_headers
from consumers.webhooks.targets import pin
from ledger.errors import LedgerError

USER_AGENT = "inventory-ledger-webhooks/1"
_MAX_POOLS = 256  # idle connection pools kept, one per origin
_MAX_ANSWER = 65536  # bytes of a receiver's answer read (and thrown away) to keep its connection
_FAILURES = (httpcore.NetworkError, httpcore.ProtocolError, httpcore.UnsupportedProtocol, httpcore.TimeoutException, OSError)


class Outcome(msgspec.Struct, frozen=True, kw_only=True):
    attempted_at: datetime
    duration_ms: float
    status_code: int | None = None  # None: no response came
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.status_code is not None and 200 <= self.status_code < 300


class Sender:
    """Sends attempts, with one connection pool per origin (scheme, host, port).

    Requests go to the checked address with the host name kept for Host and TLS; a pool
    shared between host names would reuse a TLS connection verified for one name to send
    to another that resolves to the same address, so pools are never shared."""

    def __init__(self, settings: WebhookSettings):
        self.settings = settings
        self._ssl = httpcore.default_ssl_context()  # loading the CA bundle is slow: once
        self._pools: dict[str, httpcore.AsyncConnectionPool] = {}
        self._users: Counter[str] = Counter()

    async def send(self, *, delivery_id: str, event_name: str, url: str, payload: bytes,
                   secret: str, previous_secret: str | None) -> Outcome:
        attempted_at, started = datetime.now(UTC), time.perf_counter()

        def outcome(**fields) -> Outcome:
            return Outcome(attempted_at=attempted_at, duration_ms=(time.perf_counter() - started) * 1000, **fields)

        try:
            # One bound for the whole attempt: resolution, connection, and a receiver that
            # answers slowly byte by byte (a transport's own timeouts are per read).
            async with asyncio.timeout(self.settings.timeout):
                target = await pin(url, allow_private=self.settings.allow_private)
                headers = signature_headers(delivery_id, event_name, payload, int(time.time()), secret, previous_secret)
                headers["User-Agent"] = USER_AGENT
                if target.host:
                    headers["Host"] = target.host
                extensions = {"sni_hostname": target.sni_hostname} if target.sni_hostname else {}
                status = await self._post(url, target.url, payload, headers, extensions)
        except TimeoutError:
            return outcome(error=f"timed out after {self.settings.timeout:g} s")
        except LedgerError as exc:  # the URL is no longer acceptable, or does not resolve
            return outcome(error=f"{exc.code}: {exc.message}")
        except _FAILURES as exc:
            return outcome(error=f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__)
        return outcome(status_code=status)

    async def _post(self, url: str, target: str, payload: bytes, headers: dict[str, str], extensions: dict) -> int:
        parts = urlsplit(url)
        origin = f"{parts.scheme}://{parts.netloc}"
        pool = self._pools.pop(origin, None) or self._new_pool()
        self._pools[origin] = pool  # most recently used last
        self._users[origin] += 1
        try:
            async with pool.stream("POST", target, headers=list(headers.items()), content=payload,
                                   extensions=extensions) as response:
                # Only the status counts, but a connection is reused only once its answer
                # has been read to the end: read a small one, drop a large one (and its connection).
                read = 0
                async for chunk in response.aiter_stream():
                    read += len(chunk)
                    if read > _MAX_ANSWER:
                        break
                return response.status
        finally:
            self._users[origin] -= 1
            await self._prune()

    def _new_pool(self) -> httpcore.AsyncConnectionPool:
        return httpcore.AsyncConnectionPool(
            ssl_context=self._ssl, max_connections=self.settings.endpoint_concurrency * 4, keepalive_expiry=30.0,
        )

    async def _prune(self) -> None:
        """Close the least recently used idle pools beyond the bound."""
        idle = [o for o in self._pools if self._users[o] <= 0]
        for origin in idle[: max(len(self._pools) - _MAX_POOLS, 0)]:
            pool = self._pools.pop(origin)
            del self._users[origin]
            await pool.aclose()

    async def close(self) -> None:
        pools, self._pools = list(self._pools.values()), {}
        for pool in pools:
            await pool.aclose()
