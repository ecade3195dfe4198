"""A long-running loop as one asyncio task, stopped between two units of its work.

The projector, the relay, the webhook emitter, the typed subscriber and the hold
expiry all run this way: `start()` creates the task, `run()` loops while
`self._stopping` is not set, and `stop()` sets it and waits until the loop has finished
the unit in hand (written its checkpoint, acknowledged its batch). `_sleep()` waits
between units and wakes at once on `stop()`. Those that hold connections run
`_retrying()`: their `_run_connected()` again and again, backing off after a failure
with the one `Backoff` every reconnecting loop uses (the projector's too).
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import time
from collections.abc import Awaitable, Callable

import structlog


class Backoff:
    """How long to wait before connecting again: `first`, doubling up to `ceiling`.

    Each delay is jittered (between half and all of it), so processes that lost the same
    server at the same moment do not come back in lockstep. An attempt that ran for at
    least `healthy` seconds before it failed was a success, and the next delay starts
    from `first` again: a connection that worked for hours is retried at once.
    """

    def __init__(self, first: float = 0.1, ceiling: float = 5.0, *, healthy: float = 30.0):
        self.first, self.ceiling, self.healthy = first, ceiling, healthy
        self._delay = first

    def reset(self) -> None:
        self._delay = self.first

    def next(self, ran_for: float = 0.0) -> float:
        """The delay before the next attempt, after one that ran for `ran_for` seconds."""
        if ran_for >= self.healthy:
            self.reset()
        delay, self._delay = self._delay, min(self._delay * 2, self.ceiling)
        return random.uniform(delay / 2, delay)


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
        connection, a lost ownership), again after a `Backoff`. `context`: fields for the
        warning, read when it is logged."""
        backoff = Backoff()
        while self._running():
            started = time.monotonic()
            try:
                await run_connected()
                backoff.reset()
            except transient as exc:
                delay = backoff.next(ran_for=time.monotonic() - started)
                log.warning(f"{what} interrupted; retrying", error=repr(exc), retry_in=round(delay, 3),
                            **{name: read() for name, read in context.items()})
                await self._sleep(delay)
            task = asyncio.current_task()
            if task is not None and task.cancelling():
                # Cancelled while a library's cleanup swallowed the CancelledError (nats-py's
                # close does): end as cancelled instead of starting another round forever.
                raise asyncio.CancelledError()

    def _running(self) -> bool:
        """Until stopped, or cancelled: also when a library's cleanup swallowed the
        CancelledError (nats-py's close does), which would otherwise leave the loop
        going round forever."""
        task = asyncio.current_task()
        return not self._stopping.is_set() and not (task is not None and task.cancelling())

    async def _sleep(self, seconds: float) -> bool:
        """Sleep unless stopping; True if stopping."""
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(seconds):
                await self._stopping.wait()
        return self._stopping.is_set()
