"""Serving the app with uvicorn inside a process that has more to do after it stops."""

from __future__ import annotations

import contextlib
import signal

import uvicorn


class GracefulServer(uvicorn.Server):
    """uvicorn's server, except that a stop signal ends `serve()` normally.

    uvicorn re-raises SIGINT/SIGTERM once it has shut down, which would kill the process
    before it checkpoints its workers and stops the embedded PostgreSQL and NATS.
    """

    @contextlib.contextmanager
    def capture_signals(self):
        handled = (signal.SIGINT, signal.SIGTERM)
        original = {sig: signal.signal(sig, self.handle_exit) for sig in handled}
        try:
            yield
        finally:
            for sig, handler in original.items():
                signal.signal(sig, handler)
