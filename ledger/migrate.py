"""Schema migrations: numbered `.sql` files in a package's `migrations/`, each applied once.

The ledger's own come first; other packages (the read models of `projections/`) bring
theirs, numbered on their own. Safe when several processes migrate at once: a session
advisory lock lets one apply while the others wait, then find nothing left to do.
"""

from __future__ import annotations

from importlib import resources

import asyncpg

# Any fixed 64-bit number works; it only has to be the same for every migrating process.
_MIGRATION_LOCK = 0x1ED6E5_0001


def migrations(package: str = "ledger") -> list[tuple[int, str, str]]:
    """(number, name, sql) of every migration of `package`, in order."""
    folder = resources.files(package) / "migrations"
    found = []
    if not folder.is_dir():
        return found
    for f in folder.iterdir():
        if f.name.endswith(".sql"):
            number = int(f.name.split("_", 1)[0])
            found.append((number, f.name, f.read_text()))
    return sorted(found)


async def migrate(conn: asyncpg.Connection, packages: tuple[str, ...] = ("ledger",)) -> list[str]:
    """Apply what is missing; returns the names of the migrations applied now."""
    await conn.execute("SELECT pg_advisory_lock($1)", _MIGRATION_LOCK)
    try:
        await conn.execute(
            """CREATE TABLE IF NOT EXISTS schema_migrations (
                   package text NOT NULL,
                   number integer NOT NULL,
                   name text NOT NULL,
                   applied_at timestamptz NOT NULL DEFAULT now(),
                   PRIMARY KEY (package, number))"""
        )
        done = {(r["package"], r["number"]) for r in await conn.fetch("SELECT package, number FROM schema_migrations")}
        applied = []
        for package in packages:
            for number, name, sql in migrations(package):
                if (package, number) in done:
                    continue
                async with conn.transaction():
                    await conn.execute(sql)
                    await conn.execute(
                        "INSERT INTO schema_migrations (package, number, name) VALUES ($1, $2, $3)",
                        package, number, name,
                    )
                applied.append(f"{package}/{name}")
        return applied
    finally:
        await conn.execute("SELECT pg_advisory_unlock($1)", _MIGRATION_LOCK)


async def migrate_dsn(dsn: str, packages: tuple[str, ...] = ("ledger",)) -> list[str]:
    conn = await asyncpg.connect(dsn)
    try:
        return await migrate(conn, packages)
    finally:
        await conn.close()
