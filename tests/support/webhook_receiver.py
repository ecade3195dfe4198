"""A real HTTP receiver for webhook tests: an asyncio server on 127.0.0.1, a random port.

It speaks just enough HTTP/1.1 for a client such as httpx (keep-alive, Content-Length
bodies), records every request with the time it arrived, and answers with whatever
status `respond` returns (which may sleep first, to play a slow endpoint).
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import time
from collections.abc import Awaitable, Callable

import msgspec


class Received(msgspec.Struct, kw_only=True):
    path: str
    headers: dict[str, str]  # names in lower case
    body: bytes
    at: float  # time.time() when the body was in

    def json(self):
        return msgspec.json.decode(self.body)


Respond = Callable[[Received], int | Awaitable[int]]


class Receiver:
    def __init__(self, respond: Respond | None = None):
        self.respond: Respond = respond or (lambda r: 200)
        self.received: list[Received] = []
        self.url = ""
        self._server: asyncio.base_events.Server | None = None
        self._arrived = asyncio.Event()
        self._handlers: set[asyncio.Task] = set()

    async def __aenter__(self) -> Receiver:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        port = self._server.sockets[0].getsockname()[1]
        self.url = f"http://127.0.0.1:{port}/hook"
        return self

    async def __aexit__(self, *exc) -> None:
        self._server.close()
        for task in list(self._handlers):  # a slow answer still asleep
            task.cancel()
        await asyncio.gather(*self._handlers, return_exceptions=True)

    async def wait_for(self, predicate: Callable[[list[Received]], bool], timeout: float = 15.0) -> list[Received]:
        deadline = time.monotonic() + timeout
        while not predicate(self.received):
            remaining = deadline - time.monotonic()
            assert remaining > 0, f"receiver timed out with {len(self.received)} requests"
            self._arrived.clear()
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(min(remaining, 0.2)):
                    await self._arrived.wait()
        return self.received

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._handlers.add(task := asyncio.current_task())
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                lines = head.decode("latin-1").split("\r\n")
                _method, path, _version = lines[0].split(" ", 2)
                headers = {}
                for line in lines[1:]:
                    if ":" in line:
                        name, _, value = line.partition(":")
                        headers[name.strip().lower()] = value.strip()
                body = await reader.readexactly(int(headers.get("content-length", "0")))
                request = Received(path=path, headers=headers, body=body, at=time.time())
                self.received.append(request)
                self._arrived.set()
                status = self.respond(request)
                if inspect.isawaitable(status):
                    status = await status
                writer.write(f"HTTP/1.1 {status} Status\r\nContent-Length: 2\r\n\r\nok".encode())
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError, asyncio.LimitOverrunError):
            pass
        finally:
            writer.close()
            self._handlers.discard(task)
