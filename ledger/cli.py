"""The `ledger` command: the one composition root of the project.

Every command that needs PostgreSQL uses `LEDGER_DATABASE_URL`, or else the embedded
server under `LEDGER_DATA_DIR` (started if it is not running, and stopped afterwards
only if this command started it).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import sys
import uuid
from collections.abc import Iterator

import click
import msgspec

from ledger import errors, roles
from ledger.roles import ROLES
from ledger.settings import Settings

# Packages whose schema migrations `migrate` applies, in this order.
SCHEMA_PACKAGES = ("ledger", "projections", "api", "consumers")


@contextlib.contextmanager
def database_url(settings: Settings) -> Iterator[str]:
    if settings.database.url:
        yield settings.database.url
        return
    from ledger.embedded import start_postgres

    with _embedded_failure("LEDGER_DATABASE_URL", "PostgreSQL"):
        server = start_postgres(settings.data_dir)
    try:
        yield server.url
    finally:
        if server.owner:
            with _embedded_failure("LEDGER_DATABASE_URL", "PostgreSQL"):
                server.stop()


@contextlib.contextmanager
def nats_url(settings: Settings) -> Iterator[str]:
    if settings.nats.url:
        yield settings.nats.url
        return
    from ledger.embedded import start_nats

    with _embedded_failure("LEDGER_NATS_URL", "NATS server"):
        server = start_nats(settings.data_dir)
    try:
        yield server.url
    finally:
        if server.owner:
            with _embedded_failure("LEDGER_NATS_URL", "NATS server"):
                server.stop()


@contextlib.contextmanager
def _embedded_failure(variable: str, server: str) -> Iterator[None]:
    """An embedded server that cannot start is one line saying why and what to do, not a traceback."""
    try:
        yield
    except errors.EmbeddedServerFailed as exc:
        raise click.ClickException(
            f"{exc.message}. Set {variable} to use a {server} of your own, "
            "or LEDGER_DATA_DIR to keep the embedded one elsewhere."
        ) from None


def run(coro):
    try:
        return asyncio.run(coro)
    except errors.LedgerError as exc:
        raise click.ClickException(exc.message) from None


@click.group()
@click.pass_context
def main(ctx: click.Context) -> None:
    """Event-sourced inventory ledger."""
    from ledger.logs import configure_logging

    ctx.obj = Settings.from_env()
    configure_logging(ctx.obj.log_format)


@main.command()
@click.pass_obj
def migrate(settings: Settings) -> None:
    """Apply the schema migrations that are missing (safe to run concurrently)."""
    from ledger.migrate import migrate_dsn

    with database_url(settings) as url:
        applied = run(migrate_dsn(url, SCHEMA_PACKAGES))
    click.echo(f"applied {', '.join(applied)}" if applied else "schema is up to date")


@main.command()
@click.argument("role", default="all", type=click.Choice(ROLES))
@click.option("--workers", type=click.IntRange(min=1), default=None,
              help="API worker processes (default: one per CPU core).")
@click.pass_obj
def serve(settings: Settings, role: str, workers: int | None) -> None:
    """Run the service until Ctrl-C or SIGTERM: every role, or one of them.

    Any number of each role may run against the same database and NATS; projections
    and the relay are owned by one process at a time (advisory locks) and taken over
    when their owner dies.
    """
    plan = roles.plan(role, workers or os.cpu_count() or 1)
    with database_url(settings) as db_url, nats_url(settings) as nats:
        asyncio.run(_migrate(db_url))
        if plan.loops_apart:
            _serve_api_workers(settings, db_url, nats, plan)
        else:
            asyncio.run(_serve(settings, db_url, nats, plan))


async def _migrate(db_url: str) -> None:
    from ledger.migrate import migrate_dsn

    await migrate_dsn(db_url, SCHEMA_PACKAGES)


async def _serve(settings: Settings, db_url: str, nats: str, plan: roles.Plan) -> None:
    """Everything `plan` runs, in this process."""
    if not plan.api_workers:
        await _serve_loops(settings, db_url, nats, plan.loops)
        return
    async with _loops(settings, db_url, nats, plan.loops):
        await _serve_api(settings, db_url, nats, run_projector=plan.api_projector)


async def _serve_loops(settings: Settings, db_url: str, nats: str, loops: roles.Loops) -> None:
    async with _loops(settings, db_url, nats, loops):
        click.echo(f"ledger: {' and '.join(loops.names())} running on {db_url.split('@')[-1]}; Ctrl-C to stop")
        await _until_stopped()


def _loops(settings: Settings, db_url: str, nats: str, loops: roles.Loops):
    return roles.running(loops, db_url, nats, stream_replicas=settings.nats.stream_replicas,
                         webhook_settings=settings.webhooks() if loops.webhooks else None)


def _serve_api_workers(settings: Settings, db_url: str, nats: str, plan: roles.Plan) -> None:
    """Several API processes (uvicorn's supervisor) and, beside them, one process for the
    loops (projector, relay, webhook worker), which must not run once per API worker."""
    import multiprocessing
    import tempfile

    import uvicorn

    from api.settings import api_settings, hand_over

    os.environ["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp(prefix="ledger-metrics-")  # read by prometheus-client
    hand_over(api_settings(settings, db_url, nats, run_projector=plan.api_projector), settings.log_format)
    background = None
    if plan.loops.names():
        background = multiprocessing.get_context("spawn").Process(
            target=_background_process, args=(settings, db_url, nats, plan.loops), name="ledger-workers"
        )
        background.start()
    _banner(settings, db_url, nats, plan.api_workers)
    try:
        uvicorn.run("api.app:worker_app", factory=True, host=settings.http.host, port=settings.http.port,
                    workers=plan.api_workers, log_level="warning", timeout_graceful_shutdown=30,
                    access_log=False)  # api/request_pass.py writes one line per request
    finally:
        if background is not None:
            background.terminate()  # SIGTERM: it checkpoints and stops
            background.join(60)


def _background_process(settings: Settings, db_url: str, nats: str, loops: roles.Loops) -> None:
    from ledger.logs import configure_logging

    configure_logging(settings.log_format)
    asyncio.run(_serve_loops(settings, db_url, nats, loops))


def _banner(settings: Settings, db_url: str, nats: str, workers: int = 1) -> None:
    host, port = settings.http.host, settings.http.port
    embedded = "" if settings.database.url else f" (embedded, data in {settings.data_dir})"
    click.echo(
        f"ledger: API on http://{host}:{port}/api/v1 (OpenAPI: http://{host}:{port}/schema), {workers} worker(s)\n"
        f"ledger: PostgreSQL {db_url.split('@')[-1]}{embedded}, NATS {nats}\n"
        "ledger: in another terminal, in this directory:\n"
        "    .venv/bin/ledger keys create --org demo --scopes inventory:read,inventory:write,inventory:transfer\n"
        "    .venv/bin/ledger tail      # follow every event on NATS as commands land"
    )


async def _serve_api(settings: Settings, db_url: str, nats: str, *, run_projector: bool) -> None:
    import uvicorn

    from api.app import create_app
    from api.server import GracefulServer
    from api.settings import api_settings

    app = create_app(api_settings(settings, db_url, nats, run_projector=run_projector))
    _banner(settings, db_url, nats)
    host, port = settings.http.host, settings.http.port
    server = GracefulServer(uvicorn.Config(app, host=host, port=port, log_level="warning", lifespan="on"))
    await server.serve()  # on SIGINT/SIGTERM: stops accepting, lets requests finish


async def _until_stopped() -> None:
    import signal

    stopped = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stopped.set)
    await stopped.wait()


@main.command("relay")
@click.option("--from", "from_position", type=click.IntRange(min=0), required=True,
              help="Publish again every event after this position.")
@click.pass_obj
def relay_from(settings: Settings, from_position: int) -> None:
    """Make the relay publish the ledger again from a position (repairs the NATS copy).

    A running relay picks it up at once; JetStream drops what it still holds by event id
    and subscribers skip event ids they have handled.
    """
    from consumers.relay import reset_relay

    async def reset():
        conn = await _connect(url, settings)
        try:
            await reset_relay(conn, from_position)
        finally:
            await conn.close()

    with database_url(settings) as url:
        run(reset())
    click.echo(f"relay will publish again from position {from_position + 1}")


@main.command()
@click.option("--subject", default="ledger.>", show_default=True, help="NATS subject filter, e.g. ledger.1.item.>")
@click.option("--all", "from_start", is_flag=True, help="Start from the first event, not the next one.")
@click.pass_obj
def tail(settings: Settings, subject: str, from_start: bool) -> None:
    """Print the ledger's events as they arrive on NATS (a first look at the fan-out)."""
    import nats
    from nats.js.api import DeliverPolicy

    from consumers.wire import STREAM, nats_servers

    async def follow(url: str) -> None:
        nc = await nats.connect(nats_servers(url))
        policy = DeliverPolicy.ALL if from_start else DeliverPolicy.NEW
        sub = await nc.jetstream().subscribe(subject, stream=STREAM, ordered_consumer=True, deliver_policy=policy)
        click.echo(f"following {subject} on {url}; Ctrl-C to stop")
        try:
            async for msg in sub.messages:
                click.echo(f"{msg.subject} {msg.data.decode()}")
        finally:
            await nc.close()

    with nats_url(settings) as url, contextlib.suppress(KeyboardInterrupt):
        asyncio.run(follow(url))


@main.group()
def keys() -> None:
    """Create, list and revoke API keys."""


@keys.command("create")
@click.option("--org", "org_name", required=True, help="Organization name (created if new).")
@click.option("--scopes", required=True, help="Comma-separated scopes, e.g. inventory:read,inventory:write.")
@click.option("--name", "label", default=None, help="A label for the key.")
@click.option("--allow-ip", "allowed_ips", multiple=True, help="Accept the key only from this address or network.")
@click.option("--json", "as_json", is_flag=True, help="Print the key as JSON on the last line.")
@click.pass_obj
def keys_create(settings: Settings, org_name: str, scopes: str, label: str | None, allowed_ips: tuple[str, ...], as_json: bool) -> None:
    """Create an API key; the key is printed once and never again."""
    from ledger.keys import create_key, ensure_organization

    async def create():
        conn = await _connect(url, settings)
        try:
            org_id = await ensure_organization(conn, org_name)
            created, _ = await create_key(
                conn, org_id, [s.strip() for s in scopes.split(",") if s.strip()],
                name=label, allowed_ips=list(allowed_ips) or None,
            )
            return created
        finally:
            await conn.close()

    with database_url(settings) as url:
        created = run(create())
    if as_json:
        click.echo(msgspec.json.encode(created).decode())
    else:
        click.echo(f"API key {created.key_id} for organization {org_name} ({', '.join(created.scopes)}):")
        click.echo(f"  {created.key}")
        click.echo("Store it now: it is not shown again.")


@keys.command("list")
@click.option("--org", "org_name", default=None, help="Only this organization's keys.")
@click.option("--json", "as_json", is_flag=True)
@click.pass_obj
def keys_list(settings: Settings, org_name: str | None, as_json: bool) -> None:
    """List API keys (their ids and prefixes; never the keys)."""
    from ledger.keys import find_organization, list_keys

    async def listing():
        conn = await _connect(url, settings)
        try:
            org_id = await find_organization(conn, org_name) if org_name else None
            return await list_keys(conn, org_id)
        finally:
            await conn.close()

    with database_url(settings) as url:
        found = run(listing())
    if as_json:
        click.echo(msgspec.json.encode(found).decode())
        return
    for k in found:
        state = f"revoked {k.revoked_at:%Y-%m-%d}" if k.revoked_at else "active"
        click.echo(f"{k.key_id:>6}  {k.org_name:<20} {k.key_prefix}…  {','.join(k.scopes):<40} {k.name or '':<16} {state}")


@keys.command("revoke")
@click.argument("key_id", type=int)
@click.option("--org", "org_name", default=None, help="Refuse unless the key belongs to this organization.")
@click.pass_obj
def keys_revoke(settings: Settings, key_id: int, org_name: str | None) -> None:
    """Revoke an API key by id."""
    from ledger.keys import find_organization, revoke_key

    async def revoke():
        conn = await _connect(url, settings)
        try:
            org_id = await find_organization(conn, org_name) if org_name else None
            await revoke_key(conn, key_id, org_id)
        finally:
            await conn.close()

    with database_url(settings) as url:
        run(revoke())
    click.echo(f"revoked key {key_id}")


@main.command()
@click.option("--org", "org_name", default=None, help="Only this organization's streams and rows.")
@click.pass_obj
def verify(settings: Settings, org_name: str | None) -> None:
    """Check every hash chain, and re-fold the ledger against the write model and every read model."""
    from ledger.keys import find_organization
    from ledger.verify import verify_all
    from projections.verify import verify_read_models

    async def verify_everything():
        conn = await _connect(url, settings)
        try:
            org_id = await find_organization(conn, org_name) if org_name else None
            return await verify_all(conn, org_id), await verify_read_models(conn, org_id)
        finally:
            await conn.close()

    with database_url(settings) as url:
        streams, models = run(verify_everything())
    ledger_problems = [p for r in streams for p in r.problems]
    events = sum(r.events for r in streams)
    for problem in [*ledger_problems, *models.problems]:
        click.echo(f"MISMATCH {problem}")
    rows = ", ".join(f"{table} {count}" for table, count in models.rows.items())
    click.echo(f"ledger: {len(streams)} streams, {events} events: "
               + (f"{len(ledger_problems)} problems" if ledger_problems else "all sound"))
    click.echo(f"read models ({rows} rows): "
               + (f"{len(models.problems)} differences" if models.problems else "all equal to the ledger"))
    sys.exit(1 if ledger_problems or models.problems else 0)


@main.command()
@click.option("--projection", "names", multiple=True, metavar="NAME",
              help="Only this read model (items, stock, transactions, locations); repeatable. Default: all.")
@click.pass_obj
def replay(settings: Settings, names: tuple[str, ...]) -> None:
    """Rebuild read models from the ledger into fresh tables, and swap them in when caught up."""
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    from projections import READ_MODEL_NAMES
    from projections.replay import rebuild_read_models

    if unknown := sorted(set(names) - set(READ_MODEL_NAMES)):
        raise click.BadParameter(f"{', '.join(unknown)}; read models are {', '.join(READ_MODEL_NAMES)}",
                                 param_hint="--projection")
    columns = (TextColumn("replaying"), BarColumn(), MofNCompleteColumn(), TextColumn("positions"),
               TimeRemainingColumn())
    with database_url(settings) as url:
        run(_schema_ready(url, settings))  # before the bar: a refusal is its one line
        with Progress(*columns, console=Console(stderr=True)) as bar:
            task = bar.add_task("replay", total=None)
            try:
                report = run(rebuild_read_models(url, names or None,
                                                 progress=lambda at, horizon: bar.update(task, completed=at, total=horizon)))
            except errors.RebuildRefused as exc:
                raise click.ClickException(str(exc)) from None
    if report.took_over:
        click.echo(f"took the projections over from projector sessions {', '.join(map(str, report.took_over))}; "
                   "they resume from the new checkpoints")
    click.echo(f"replayed {report.events:,} events into {', '.join(report.projections)} in {report.seconds:.1f} s "
               f"({report.events_per_second:,.0f} events/s); swapped in at position {report.position}")


@main.command()
@click.option("--org", "org_name", default=None, help="Only this organization's events.")
@click.option("--after", type=click.IntRange(min=0), default=0, help="Only events after this position.")
@click.option("--format", "fmt", type=click.Choice(["ndjson", "csv"]), required=True)
@click.pass_obj
def export(settings: Settings, org_name: str | None, after: int, fmt: str) -> None:
    """Stream the ledger, in position order up to its settled horizon, to stdout."""
    from ledger.export import export as export_ledger
    from ledger.keys import find_organization

    out = sys.stdout.buffer

    async def export_all() -> int:
        conn = await _connect(url, settings)
        try:
            org_id = await find_organization(conn, org_name) if org_name else None
            return await export_ledger(conn, out.write, fmt, org_id=org_id, after=after)
        finally:
            await conn.close()

    with database_url(settings) as url:
        count = run(export_all())
    out.flush()
    click.echo(f"exported {count} events", err=True)


@main.command("import")
@click.argument("path", type=click.Path(exists=True, dir_okay=False))
@click.option("--org", "org_name", default=None, help="The organization (may be left out when there is only one).")
@click.option("--no-atomic", is_flag=True, help="Record each line on its own; refused lines are listed, not fatal.")
@click.option("--chunk", type=click.IntRange(1, 1000), default=1000, show_default=True, help="Lines per batch.")
@click.pass_obj
def import_csv(settings: Settings, path: str, org_name: str | None, no_atomic: bool, chunk: int) -> None:
    """Record the stock lines of a CSV file (the columns of POST /batches), in batches.

    Run again after a crash or a refusal, it records no line twice: each batch's command
    id derives from the organization, the batch's own lines and its place in the file, so
    batches recorded before are found in the ledger and skipped.
    """
    import hashlib

    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    from api.routes.batches import csv_lines, csv_rows, refusal_details, run_lines
    from ledger.db import create_pool
    from ledger.keys import find_organization, only_organization
    from ledger.store import EventStore
    from schemas import EventMetadata

    raw = open(path, "rb").read()  # noqa: SIM115 - read whole: the digest needs every byte
    try:
        text = raw.decode("utf-8-sig")
        rows = list(csv_rows(text))
    except UnicodeDecodeError as exc:
        raise click.ClickException(f"{path} is not UTF-8 (byte {exc.start})") from None
    except errors.LedgerError as exc:
        raise click.ClickException(f"{path}: {exc.message}") from None
    chunks = [rows[n:n + chunk] for n in range(0, len(rows), chunk)]
    metadata = EventMetadata(user_name="import", correlation_id=f"import:{hashlib.sha256(raw).hexdigest()[:16]}")
    console = Console(stderr=True)
    columns = (TextColumn("importing"), BarColumn(), MofNCompleteColumn(), TextColumn("lines"), TimeRemainingColumn())

    async def run_all(url: str) -> tuple[int, int, int]:
        conn = await _connect(url, settings)
        try:
            org_id = await find_organization(conn, org_name) if org_name else await only_organization(conn)
        finally:
            await conn.close()
        pool = await create_pool(url, min_size=1, max_size=2)
        store = EventStore(pool)
        recorded = refused = replayed = 0
        try:
            with Progress(*columns, console=console) as bar:
                task = bar.add_task("import", total=len(rows))
                for index, rows_of_chunk in enumerate(chunks):
                    parsed = csv_lines(rows_of_chunk, atomic=not no_atomic)
                    digest = hashlib.sha256(repr(rows_of_chunk).encode()).hexdigest()
                    command_id = uuid.uuid5(_IMPORT_NAMESPACE, f"{org_id}/{index}/{digest}")
                    _, results = await run_lines(store, org_id, parsed, metadata=metadata, command_id=command_id)
                    problems = refusal_details(results, parsed)
                    for problem in problems:
                        console.print(f"line {problem['line']}: {problem['error']}: {problem['message']}", markup=False)
                    if problems and not no_atomic:
                        raise click.ClickException(
                            f"batch {index + 1} (lines {rows_of_chunk[0][0]}-{rows_of_chunk[-1][0]}) was refused and "
                            f"nothing of it recorded; {recorded + replayed} lines before it are recorded. Fix the file "
                            "and run the import again: recorded batches are not recorded twice")
                    done = [r for r in results if r.error is None]
                    replayed += sum(1 for r in done if r.result.replayed)  # type: ignore[misc, union-attr]  # a recorded line has its result
                    recorded += sum(1 for r in done if not r.result.replayed)  # type: ignore[misc, union-attr]  # a recorded line has its result
                    refused += len(problems)
                    bar.advance(task, len(rows_of_chunk))
        finally:
            await pool.close()
        return recorded, replayed, refused

    try:
        with database_url(settings) as url:
            recorded, replayed, refused = run(run_all(url))
    except errors.LedgerError as exc:  # a fault in the file: the line is named
        raise click.ClickException(f"{path}: {exc.message}") from None
    click.echo(f"imported {path}: {recorded} lines recorded, {replayed} recorded before, {refused} refused")


_IMPORT_NAMESPACE = uuid.UUID("0f5c8a3e-2d7b-4c1e-9a6f-3b8d2e4c7a19")


async def _connect(url: str, settings: Settings):
    """A connection for a one-shot command, on a schema this version knows. The embedded
    database is the tool's own: it is migrated, so a fresh one works for every command at
    once. A LEDGER_DATABASE_URL one is somebody's production: never changed, only checked
    (`ledger migrate` and `ledger serve` migrate it)."""
    from ledger.db import connect
    from ledger.migrate import check_schema, migrate

    conn = await connect(url)
    try:
        if settings.database.url:
            await check_schema(conn, SCHEMA_PACKAGES)
        else:
            await migrate(conn, SCHEMA_PACKAGES)
    except BaseException:
        await conn.close()
        raise
    return conn


async def _schema_ready(url: str, settings: Settings) -> None:
    await (await _connect(url, settings)).close()


if __name__ == "__main__":
    main()
