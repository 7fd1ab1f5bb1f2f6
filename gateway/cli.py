"""The ``scv`` command line: serve, token, schema (and the data tools)."""

from __future__ import annotations

import asyncio
import contextlib
import csv
import socket
import sys
from collections.abc import Awaitable, Callable, Generator, Iterable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, TypeVar

import typer
import uvicorn
from pymongo.errors import PyMongoError
from rich.console import Console
from rich.progress import Progress
from rich.table import Table

from gateway.auth import ALL_PERMISSIONS, mint_token
from gateway.embedded import EmbeddedServerError
from gateway.settings import Settings
from resolvers.errors import DomainError
from resolvers.principal import Principal
from resolvers.store import Store

if TYPE_CHECKING:
    from resolvers.importer import ImportReport

T = TypeVar("T")

app = typer.Typer(
    help="scv-gateway: the Single Customer View GraphQL gateway.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
console = Console(stderr=True, soft_wrap=True)


def fail(message: str) -> typer.Exit:
    console.print(f"[bold red]error:[/] {message}", highlight=False)
    return typer.Exit(code=2)


def _check_port(host: str, port: int) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError as exc:
            raise fail(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None


class _Server(uvicorn.Server):
    """uvicorn, stopping the embedded database once the app has shut down.

    After a graceful shutdown on SIGTERM/SIGINT uvicorn raises the signal again, which ends
    the process before any ``finally`` of ours runs; the embedded server would then only get
    its parent-death SIGTERM, with nobody left to escalate if its own shutdown hangs.
    ``EmbeddedServer.stop`` (SIGTERM, then SIGKILL after a grace period) runs first instead.
    """

    def __init__(self, config: uvicorn.Config, on_shutdown: Callable[[], None] | None) -> None:
        super().__init__(config)
        self.on_shutdown = on_shutdown

    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        with super().capture_signals():
            try:
                yield
            finally:
                if self.on_shutdown is not None:
                    self.on_shutdown()


@app.command()
def serve(
    workers: Annotated[
        int | None,
        typer.Option(min=1, max=64, help="Gateway processes over one database (SCV_WORKERS)."),
    ] = None,
) -> None:
    """Serve the gateway (embedded database unless MONGODB_URI is set)."""
    from gateway.app import create_app, database
    from gateway.logs import configure_logging
    from gateway.workers import serve_workers

    settings = Settings()
    settings.workers = workers or settings.workers
    _check_port(settings.host, settings.port)
    configure_logging()  # JSON lines on stderr, personal data and tokens redacted
    try:
        with database(settings) as db:
            uri = db.uri
            if settings.workers > 1:
                where = "MONGODB_URI" if settings.mongodb_uri else f"embedded database ({uri})"
                serve_workers(settings, uri, where, console)
                return
            application = create_app(
                settings, uri=uri, secret=settings.jwt_secret, embedded=db.embedded
            )
            runtime = application.state.runtime
            base = f"http://{settings.host}:{settings.port}"
            where = "MONGODB_URI" if settings.mongodb_uri else f"embedded database ({uri})"
            console.print(f"scv-gateway on [bold]{base}/graphql[/] using {where}", highlight=False)
            if runtime.dev_token:
                console.print(
                    "development mode: no SCV_JWT_SECRET, so this token (org dev, every permission) works until restart:"
                )
                print(runtime.dev_token, flush=True)
                console.print(
                    f"GraphiQL at {base}/graphql has it in its headers already; elsewhere send the header "
                    f'{{"Authorization": "Bearer <token>"}}',
                    highlight=False,
                )
            config = uvicorn.Config(
                application,
                host=settings.host,
                port=settings.port,
                log_level="warning",
                log_config=None,  # uvicorn's records go through our JSON handler
                access_log=False,  # gateway.logs.RequestLogging writes one line per request
                ws_max_size=settings.max_body_bytes,
                lifespan="on",
            )
            _Server(config, on_shutdown=db.embedded.stop if db.embedded else None).run()
    except EmbeddedServerError as exc:
        raise fail(str(exc)) from None


@app.command()
def token(
    org: Annotated[str, typer.Option(help="Tenant id.")] = "dev",
    sub: Annotated[str, typer.Option(help="User or client id.")] = "developer",
    permission: Annotated[
        list[str] | None, typer.Option("--permission", "-p", help="Repeatable; default all.")
    ] = None,
    ttl: Annotated[int, typer.Option(help="Lifetime in seconds.", min=1)] = 12 * 3600,
) -> None:
    """Mint a bearer token signed with SCV_JWT_SECRET."""
    settings = Settings()
    if not settings.jwt_secret:
        raise fail("SCV_JWT_SECRET is not set; a token needs the gateway's secret")
    print(
        mint_token(
            settings.jwt_secret,
            org=org,
            sub=sub,
            permissions=permission or ALL_PERMISSIONS,
            ttl_s=ttl,
        )
    )


def _run_with_store(settings: Settings, work: Callable[[Store], Awaitable[T]]) -> T:
    """Open the database (sharing a running embedded server) and run ``work`` on it."""
    from gateway.app import database_uri
    from gateway.database import make_client, make_store

    async def main(uri: str) -> T:
        client = make_client(uri, settings)
        try:
            store = make_store(client, settings)
            await store.ensure_indexes()
            return await work(store)
        finally:
            await client.close()

    try:
        with database_uri(settings, share=True) as uri:
            return asyncio.run(main(uri))
    except EmbeddedServerError as exc:
        raise fail(str(exc)) from None
    except PyMongoError as exc:  # the driver's message names hosts and timeouts: first line only
        reason = str(exc).split(",", 1)[0].splitlines()[0][:200]
        raise fail(f"the database did not answer ({type(exc).__name__}: {reason})") from None


def _count_records(path: Path) -> int:
    """Rows of a CSV file after its header (a first, read-only pass: decoding and quoting
    errors surface here, before anything is written)."""
    from resolvers.importer import unknown_columns

    try:
        with path.open(newline="", encoding="utf-8-sig") as handle:
            reader = csv.reader(handle)
            header = next(reader, None)
            if header is None:
                raise fail(f"{path} is empty; it needs a header row of ContactInput field names")
            unknown = unknown_columns(header)
            if unknown:
                raise fail(f"{path}: unknown column(s) {', '.join(map(repr, unknown))}")
            return sum(1 for _ in reader)
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise fail(f"cannot read {path}: {exc}") from None


def _csv_records(path: Path) -> Iterator[tuple[int, dict[str, str | None]]]:
    """Each data row with the file line it starts on, read lazily."""
    starts: list[int] = []  # non-blank lines read since the last row ended

    def numbered(handle: Iterable[str]) -> Iterator[str]:
        for number, line in enumerate(handle, start=1):
            if line.strip("\r\n"):
                starts.append(number)
            yield line

    with path.open(newline="", encoding="utf-8-sig") as handle:
        reader = csv.DictReader(numbered(handle))
        _ = reader.fieldnames  # reads the header row
        starts.clear()
        for row in reader:
            yield starts[0] if starts else reader.line_num, row
            starts.clear()


@app.command("import")
def import_contacts(
    path: Annotated[Path, typer.Argument(help="CSV file; columns are ContactInput field names.")],
    org: Annotated[str, typer.Option(help="Tenant to import into.")] = "dev",
) -> None:
    """Import curated contacts from CSV (re-importing the same file changes nothing).

    Rows stream in batches; a row updates the curated contact with one of its external ids,
    else one with one of its emails, else creates one. Bad rows are listed with their line
    numbers (exit code 1) and every good row is still imported.
    """
    from resolvers.importer import import_rows

    total = _count_records(path)
    principal = Principal(org=org, sub="cli-import", permissions=frozenset(ALL_PERMISSIONS))
    settings = Settings()

    async def work(store: Store) -> ImportReport:
        with Progress(console=console) as progress:
            task = progress.add_task(f"importing {path.name}", total=total)
            return await import_rows(
                store, principal, _csv_records(path), lambda n: progress.advance(task, n)
            )

    report = _run_with_store(settings, work)
    console.print(
        f"created {report.created}, updated {report.updated}, "
        f"unchanged {report.unchanged}, errors {report.failed}",
        highlight=False,
    )
    if report.errors:
        table = Table("line", "error", title="rows not imported")
        for line, message in report.errors[:200]:
            table.add_row(str(line), message)
        console.print(table)
        if report.failed > 200:
            console.print(f"… and {report.failed - 200} more", highlight=False)
        raise typer.Exit(code=1)


@app.command()
def check(
    org: Annotated[str | None, typer.Option(help="Only this tenant (default: all).")] = None,
) -> None:
    """Scan the database for invariant violations; exit 1 if there are any."""
    from resolvers.invariants import find_violations

    settings = Settings()

    async def work(store: Store) -> list[str]:
        with console.status("scanning contacts, identifiers and merge sets …"):
            return await find_violations(store, org)

    violations = _run_with_store(settings, work)
    for line in violations:
        print(line)
    console.print(f"{len(violations)} invariant violation(s)", highlight=False)
    if violations:
        raise typer.Exit(code=1)


@app.command()
def seed(
    org: Annotated[str, typer.Option(help="Tenant to seed.")] = "dev",
    contacts: Annotated[int, typer.Option(min=10, max=1_000_000)] = 5000,
    merge_sets: Annotated[int, typer.Option(min=0, max=100_000)] = 200,
    conversations: Annotated[int, typer.Option(min=0, max=10_000_000)] = 50_000,
    random_seed: Annotated[int, typer.Option("--seed", help="Same seed, same data.")] = 42,
    stories: Annotated[
        bool, typer.Option(help="Write the seed documents' stories (Alexis and David …) too.")
    ] = True,
) -> None:
    """Write a realistic demo data set for one org: the seed documents' stories, then
    contacts of every type, merge sets and conversations over every channel."""
    from gateway.seed_stories import Story, already_told, write_stories
    from gateway.seeding import SeedResult
    from gateway.seeding import seed as write_data_set
    from resolvers.errors import Conflict

    settings = Settings()
    principal = Principal(org=org, sub="scv-seed", permissions=frozenset(ALL_PERMISSIONS))

    async def work(store: Store) -> tuple[list[Story], SeedResult]:
        if stories and await already_told(store, org):
            raise Conflict(f"org {org} already holds a seeded data set")
        with Progress(console=console) as progress:
            task = progress.add_task(
                f"seeding org {org}", total=contacts + merge_sets + conversations + 1
            )
            result = await write_data_set(
                store,
                org,
                contacts=contacts,
                merge_sets=merge_sets,
                conversations=conversations,
                seed=random_seed,
                progress=lambda n: progress.advance(task, n),
            )
            told = await write_stories(store, principal) if stories else []
            progress.advance(task, 1)
        return told, result

    try:
        told, result = _run_with_store(settings, work)
    except DomainError as exc:
        raise fail(exc.message) from None
    console.print(
        f"org {org}: {result.contacts} contacts, {len(result.merge_sets)} merge sets, "
        f"{result.conversations} conversations" + (f", {len(told)} stories" if told else ""),
        highlight=False,
    )
    for number, story in enumerate(told, start=1):  # plain lines: the queries stay pasteable
        console.print(f"{number}. {story.title} (contact {story.contact_id})", highlight=False)
        console.print(f"   {{ {story.look_at} }}", highlight=False, markup=False)


@app.command()
def export(
    org: Annotated[str, typer.Option(help="Tenant to export.")] = "dev",
    since: Annotated[str | None, typer.Option(help="ISO-8601 with offset.")] = None,
    until: Annotated[str | None, typer.Option(help="ISO-8601 with offset.")] = None,
    channels: Annotated[str | None, typer.Option(help="Comma-separated, e.g. VOICE,EMAIL.")] = None,
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="File to write; default stdout.")
    ] = None,
) -> None:
    """Write conversations as NDJSON, newest first (the same lines as the HTTP export)."""
    from gateway.export import ndjson_lines
    from schema.scalars import parse_datetime

    settings = Settings()
    try:
        start = parse_datetime(since) if since else None
        end = parse_datetime(until) if until else None
    except DomainError as exc:
        raise fail(exc.message) from None
    wanted = [c.strip().upper() for c in channels.split(",") if c.strip()] if channels else None

    async def work(store: Store) -> int:
        lines = 0
        sink = output.open("wb") if output is not None else sys.stdout.buffer
        try:
            with Progress(console=console, transient=output is None) as progress:
                task = progress.add_task("exporting conversations", total=None)
                async for chunk in ndjson_lines(store, org, start, end, wanted):
                    sink.write(chunk)
                    count = chunk.count(b"\n")
                    lines += count
                    progress.advance(task, count)
        finally:
            if output is not None:
                sink.close()
            else:
                sink.flush()
        return lines

    try:
        lines = _run_with_store(settings, work)
    except DomainError as exc:
        raise fail(exc.message) from None
    console.print(f"{lines} conversations exported", highlight=False)


@app.command("schema")
def print_schema() -> None:
    """Print the GraphQL SDL."""
    from schema.schema import schema as executable

    sys.stdout.write(str(executable) + "\n")


if __name__ == "__main__":  # pragma: no cover
    app()
