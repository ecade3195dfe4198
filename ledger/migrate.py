"""Schema migrations: numbered `.sql` files in a package's `migrations/`, each applied once.

The ledger's own come first; other packages (the read models of `projections/`) bring
theirs, numbered on their own. Safe when several processes migrate at once: a session
advisory lock lets one apply while the others wait, then find nothing left to do.

`check_schema` only compares: the one-shot commands use it on a database they must not
change (one named by LEDGER_DATABASE_URL).
"""

from __future__ import annotations

from importlib import resources

import asyncpg

from ledger.errors import SchemaMismatch

# Any fixed 64-bit number works; it only has to be the same for every migrating process.
_MIGRATION_LOCK = 0x1ED6E5_0001


def migrations(package: str = "ledger") -> list[tuple[int, str, str]]:
    """(number, name, sql) of every migration of `package`, in order."""
    folder = resources.files(package) / "migrations"
    found: list[tuple[int, str, str]] = []
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


async def check_schema(conn: asyncpg.Connection, packages: tuple[str, ...] = ("ledger",)) -> None:
    """Raise SchemaMismatch unless the database has exactly the migrations of `packages`
    this version ships. Reads only: not even schema_migrations is created."""
    applied: dict[tuple[str, int], str] = {}
    if await conn.fetchval("SELECT to_regclass('schema_migrations')") is not None:
        rows = await conn.fetch("SELECT package, number, name FROM schema_migrations ORDER BY package, number")
        applied = {(r["package"], r["number"]): r["name"] for r in rows}
    shipped = {(package, number): name for package in packages for number, name, _ in migrations(package)}
    missing = [f"{package}/{name}" for (package, number), name in shipped.items() if (package, number) not in applied]
    unknown = [f"{package}/{name}" for (package, number), name in applied.items() if (package, number) not in shipped]
    if missing and unknown:
        raise SchemaMismatch(f"the database schema does not match this version of ledger (missing {_listed(missing)}; "
                             f"unknown {_listed(unknown)}): use the version of ledger that migrated it")
    if missing:
        raise SchemaMismatch(f"the database schema is behind this version of ledger (missing {_listed(missing)}); "
                             "run `ledger migrate`")
    if unknown:
        raise SchemaMismatch(f"the database schema is ahead of this version of ledger (unknown {_listed(unknown)}): "
                             "upgrade ledger")


def _listed(names: list[str], shown: int = 3) -> str:
    """One line however many: the first few names, then a count."""
    if len(names) <= shown:
        return ", ".join(names)
    return f"{len(names)} migrations: {', '.join(names[:shown])} and {len(names) - shown} more"


async def migrate_dsn(dsn: str, packages: tuple[str, ...] = ("ledger",)) -> list[str]:
    conn = await asyncpg.connect(dsn)
    try:
        return await migrate(conn, packages)
    finally:
        await conn.close()
