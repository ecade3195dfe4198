"""Schema migrations: numbered `.sql` files in `ledger/migrations/`, each applied once.

Safe when several processes migrate at once: a session advisory lock lets one apply
while the others wait, then find nothing left to do.
"""

from __future__ import annotations

from importlib import resources

import asyncpg

# Any fixed 64-bit number works; it only has to be the same for every migrating process.
_MIGRATION_LOCK = 0x1ED6E5_0001


def migrations() -> list[tuple[int, str, str]]:
    """(number, name, sql) of every migration, in order."""
    folder = resources.files("ledger") / "migrations"
    found = []
    for f in folder.iterdir():
        if f.name.endswith(".sql"):
            number = int(f.name.split("_", 1)[0])
            found.append((number, f.name, f.read_text()))
    return sorted(found)


async def migrate(conn: asyncpg.Connection) -> list[str]:
    """Apply what is missing; returns the names of the migrations applied now."""
    await conn.execute("SELECT pg_advisory_lock($1)", _MIGRATION_LOCK)
    try:
        await conn.execute(
            """CREATE TABLE IF NOT EXISTS schema_migrations (
                   number integer PRIMARY KEY,
                   name text NOT NULL,
                   applied_at timestamptz NOT NULL DEFAULT now())"""
        )
        done = {r["number"] for r in await conn.fetch("SELECT number FROM schema_migrations")}
        applied = []
        for number, name, sql in migrations():
            if number in done:
                continue
            async with conn.transaction():
                await conn.execute(sql)
                await conn.execute("INSERT INTO schema_migrations (number, name) VALUES ($1, $2)", number, name)
            applied.append(name)
        return applied
    finally:
        await conn.execute("SELECT pg_advisory_unlock($1)", _MIGRATION_LOCK)


async def migrate_dsn(dsn: str) -> list[str]:
    conn = await asyncpg.connect(dsn)
    try:
        return await migrate(conn)
    finally:
        await conn.close()
