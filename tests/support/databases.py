"""Fresh databases for tests: clones of the migrated template, made ahead, dropped behind.

`CREATE DATABASE ... TEMPLATE` copies the template through the WAL and waits for its
flush, and `DROP DATABASE` waits for the files to go: together 0.3-1.5 s on a busy 2-core
machine, several times the length of a typical test. The server does that work just as
well while a test runs, so the clone for the next test is asked for as soon as one is
handed out, and a used database is dropped in the background. Every test still gets a
database no other test has touched; the session waits for every drop at its end.
"""

from __future__ import annotations

import asyncio
import uuid
from collections import deque
from urllib.parse import urlsplit, urlunsplit

import asyncpg


def with_database(url: str, name: str) -> str:
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path=f"/{name}"))


class Clones:
    """Databases cloned from `template` on the server at `postgres_url`, `ahead` made in advance."""

    def __init__(self, admin: asyncpg.Pool, postgres_url: str, template: str, ahead: int = 1):
        self.admin, self.postgres_url, self.template, self.ahead = admin, postgres_url, template, ahead
        self._ready: deque[asyncio.Future[str]] = deque()
        self._drops: list[asyncio.Future[None]] = []

    async def _create(self) -> str:
        name = f"ledger_test_{uuid.uuid4().hex[:16]}"
        await self.admin.execute(f'CREATE DATABASE "{name}" TEMPLATE "{self.template}"')
        return name

    async def _drop(self, name: str) -> None:
        # FORCE: a test may leave a session behind (a killed process's, a leaked pool's).
        await self.admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    async def take(self) -> str:
        """The URL of a new clone; the next one is under way when this returns."""
        if not self._ready:
            self._ready.append(asyncio.ensure_future(self._create()))
        name = await self._ready.popleft()
        while len(self._ready) < self.ahead:
            self._ready.append(asyncio.ensure_future(self._create()))
        return with_database(self.postgres_url, name)

    def give_back(self, url: str) -> None:
        """Drop the clone at `url` without waiting for it."""
        self._drops.append(asyncio.ensure_future(self._drop(urlsplit(url).path.lstrip("/"))))

    async def close(self) -> None:
        """Drop the clones made ahead and wait for every drop."""
        made = await asyncio.gather(*self._ready, return_exceptions=True)
        self._ready.clear()
        for name in made:
            if isinstance(name, str):  # a failed creation left nothing to drop
                self.give_back(with_database(self.postgres_url, name))
        results = await asyncio.gather(*self._drops, return_exceptions=True)
        failed = [r for r in results if isinstance(r, BaseException)]
        if failed:
            raise failed[0]
