"""A long-running loop as one asyncio task, stopped between two units of its work.

The projector, the relay, the webhook emitter, the typed subscriber and the reservation
expiry all run this way: `start()` creates the task, `run()` loops while
`self._stopping` is not set, and `stop()` sets it and waits until the loop has finished
the unit in hand (written its checkpoint, acknowledged its batch). `_sleep()` waits
between units and wakes at once on `stop()`. Those that hold connections run
`_retrying()`: their `_run_connected()` again and again, backing off after a failure.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable

import structlog


class BackgroundLoop:
    def __init__(self, task_name: str) -> None:
        self.task_name = task_name
        self._stopping = asyncio.Event()
        self._task: asyncio.Task | None = None

    def start(self) -> asyncio.Task:
        self._task = asyncio.create_task(self.run(), name=self.task_name)
        return self._task

    async def stop(self) -> None:
        """Finish the unit of work in hand, then return once the loop has ended."""
        self._stopping.set()
        if self._task is not None:
            await self._task

    async def run(self) -> None:
        raise NotImplementedError

    async def _retrying(
        self, run_connected: Callable[[], Awaitable[None]], transient: tuple[type[BaseException], ...],
        log: structlog.typing.FilteringBoundLogger, what: str, **context: Callable[[], object],
    ) -> None:
        """`run_connected()` until stopped; after one of the `transient` failures (a lost
        connection, a lost ownership), again after 0.1 s, doubling up to 5 s. `context`:
        fields for the warning, read when it is logged."""
        backoff = 0.1
        while not self._stopping.is_set():
            try:
                await run_connected()
                backoff = 0.1
            except transient as exc:
                log.warning(f"{what} interrupted; retrying", error=repr(exc), retry_in=backoff,
                            **{name: read() for name, read in context.items()})
                await self._sleep(backoff)
                backoff = min(backoff * 2, 5.0)

    async def _sleep(self, seconds: float) -> bool:
        """Sleep unless stopping; True if stopping."""
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(seconds):
                await self._stopping.wait()
        return self._stopping.is_set()
