"""The ``scv`` command line: serve, token, schema (and the data tools)."""

from __future__ import annotations

import asyncio
import contextlib
import signal
import socket
import sys
from collections.abc import Awaitable, Callable, Generator
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, Annotated, Any, TypeVar

import typer
import uvicorn
from pymongo.errors import PyMongoError
from rich.console import Console
from rich.progress import Progress
from typer.core import TyperCommand

from gateway.auth import (
    ALL_PERMISSIONS,
    TOKEN_TTL_S,
    mint_token,
    read_development_secret,
    secret_length_warning,
)
from gateway.embedded import EmbeddedServerError
from gateway.settings import Settings
from resolvers.errors import DomainError
from resolvers.principal import Principal
from resolvers.store import Store

if TYPE_CHECKING:
    from gateway.seed_stories import Story
    from gateway.seeding import SeedResult
    from resolvers.contact_csv import CsvLayout
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


def _exit_on_signal(signum: int, frame: FrameType | None) -> None:
    """SIGTERM before (and after) uvicorn handles it: unwind, so the embedded database is
    stopped by ``database()``'s exit instead of being orphaned mid-start."""
    raise SystemExit(128 + signum)


@app.command()
def serve(
    workers: Annotated[
        int | None,
        typer.Option(min=1, max=64, help="Gateway processes over one database (SCV_WORKERS)."),
    ] = None,
) -> None:
    """Serve the gateway (embedded database unless MONGODB_URI is set)."""
    signal.signal(signal.SIGTERM, _exit_on_signal)
    from gateway.app import create_app, database
    from gateway.logs import configure_logging
    from gateway.workers import serve_workers

    settings = Settings()
    settings.workers = workers or settings.workers
    _check_port(settings.host, settings.port)
    configure_logging()  # JSON lines on stderr, personal data and tokens redacted
    try:
        with database(settings, announce=lambda line: console.print(line, highlight=False)) as db:
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
                    f"development mode: no SCV_JWT_SECRET, so this token (org dev, every permission) is valid for {TOKEN_TTL_S // 3600} hours; "
                    "scv token --org <org> mints more:"
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
        list[str] | None,
        typer.Option(
            "--permission",
            "-p",
            metavar="PERMISSION",
            help="Repeatable, e.g. -p 'externalContacts:*:*'; default every permission.",
        ),
    ] = None,
    ttl: Annotated[int, typer.Option(help="Lifetime in seconds.", min=1)] = TOKEN_TTL_S,
) -> None:
    """Mint a bearer token signed with SCV_JWT_SECRET, or in development mode with the secret
    the development server (`make run` without SCV_JWT_SECRET) keeps next to its data."""
    settings = Settings()
    secret = settings.jwt_secret or read_development_secret(settings.dev_secret_file)
    if not secret:
        raise fail(
            f"SCV_JWT_SECRET is not set and no development server has generated a secret in "
            f"{settings.dev_secret_file}; set SCV_JWT_SECRET or start make run first"
        )
    short = secret_length_warning(secret)
    if short is not None:
        console.print(f"[yellow]warning:[/] {short}", highlight=False)
    print(
        mint_token(secret, org=org, sub=sub, permissions=permission or ALL_PERMISSIONS, ttl_s=ttl)
    )


def _run_with_store(settings: Settings, work: Callable[[Store], Awaitable[T]]) -> T:
    """Open the database (sharing a running embedded server, never creating one), say which
    it is once it answers, and run ``work`` on it."""
    from gateway.app import NoDatabase, database
    from gateway.database import make_client, make_store

    async def main(uri: str, where: str) -> T:
        client = make_client(uri, settings)
        try:
            store = make_store(client, settings)
            await store.ensure_indexes()
            console.print(f"database: {where} (db {settings.db_name})", highlight=False)
            return await work(store)
        finally:
            await client.close()

    where = "the database"
    try:
        with database(settings, share=True) as db:
            where = db.where
            return asyncio.run(main(db.uri, db.where))
    except (EmbeddedServerError, NoDatabase) as exc:
        raise fail(str(exc)) from None
    except DomainError as exc:
        raise fail(exc.message) from None
    except PyMongoError as exc:  # the driver's message names hosts and timeouts: first line only
        reason = str(exc).split(",", 1)[0].splitlines()[0][:200]
        raise fail(
            f"the database did not answer ({type(exc).__name__}: {reason}); database: {where}"
        ) from None


class _PlainUsage(TyperCommand):
    """A usage line naming a required argument plainly (``CONTACTS.CSV``, not typer's braces)."""

    def collect_usage_pieces(self, ctx: Any) -> list[str]:  # typer's vendored click.Context
        return [
            piece.removeprefix("{").removesuffix("}") for piece in super().collect_usage_pieces(ctx)
        ]


CsvPath = Annotated[
    Path,
    typer.Argument(metavar="CONTACTS.CSV", help="CSV file; columns are ContactInput field names."),
]
CsvEncoding = Annotated[
    str | None,
    typer.Option(
        metavar="ENCODING",
        help="e.g. utf-8, cp1252, latin-1 (default: detected; UTF-8 with or without BOM, "
        "else Windows-1252, else Latin-1).",
    ),
]
CsvDelimiter = Annotated[
    str | None,
    typer.Option(
        metavar="CHAR", help="',', ';', 'tab' or '|' (default: detected from the header)."
    ),
]
IgnoreUnknownColumns = Annotated[
    bool,
    typer.Option(
        "--ignore-unknown-columns",
        help="Import the known columns of a file with others (a CRM export's 'Contact ID').",
    ),
]


@app.command("import", cls=_PlainUsage)
def import_contacts(
    path: CsvPath,
    org: Annotated[str, typer.Option(metavar="ORG", help="Tenant to import into.")] = "dev",
    encoding: CsvEncoding = None,
    delimiter: CsvDelimiter = None,
    ignore_unknown_columns: IgnoreUnknownColumns = False,
) -> None:
    """Import curated contacts from CSV (re-importing the same file changes nothing).

    Rows stream in batches; a row updates the curated contact with one of its external ids,
    else one with one of its emails, else creates one. One row per line: a bad row (an
    unterminated quote, a wrong number of cells, a bad value) is listed with its line and
    value, nothing of it is written, every good row is still imported, and the exit code is 1.
    """
    from resolvers.contact_csv import CsvFileError, delimiter_option, encoding_option, inspect_file

    try:
        layout = inspect_file(
            path,
            encoding=encoding_option(encoding),
            delimiter=delimiter_option(delimiter),
            ignore_unknown_columns=ignore_unknown_columns,
        )
    except CsvFileError as exc:
        raise fail(str(exc)) from None
    report = _run_with_store(Settings(), lambda store: _import_file(store, path, layout, org))
    _print_import_report(report)


async def _import_file(store: Store, path: Path, layout: CsvLayout, org: str) -> ImportReport:
    """``scv import``'s work once the file is inspected: its rows with a progress bar, then
    the org's duplicate pairs."""
    from resolvers.contact_csv import read_rows
    from resolvers.importer import import_rows

    principal = Principal(org=org, sub="cli-import", permissions=frozenset(ALL_PERMISSIONS))
    console.print(f"reading {path.name}: {layout.description}", highlight=False)
    if layout.ignored:
        ignored = ", ".join(map(repr, layout.ignored))
        console.print(f"ignoring unknown column(s) {ignored}", highlight=False)
    with Progress(console=console) as progress:
        task = progress.add_task(f"importing {path.name}", total=layout.rows)
        report = await import_rows(
            store, principal, read_rows(path, layout), lambda n: progress.advance(task, n)
        )
    await _rebuild_pairs(store, org)
    return report


def _print_import_report(report: ImportReport) -> None:
    console.print(
        f"created {report.created}, updated {report.updated}, "
        f"unchanged {report.unchanged}, errors {report.failed}",
        highlight=False,
    )
    if report.errors:
        console.print("rows not imported:", highlight=False)
        for line, message in report.errors[:200]:  # one line each: greppable, never wrapped
            console.print(
                f"  line {line}: {message}", markup=False, highlight=False, soft_wrap=True
            )
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
    org: Annotated[str, typer.Option(metavar="ORG", help="Tenant to seed.")] = "dev",
    contacts: Annotated[int, typer.Option(min=10, max=1_000_000)] = 5000,
    merge_sets: Annotated[int, typer.Option(min=0, max=100_000)] = 200,
    conversations: Annotated[int, typer.Option(min=0, max=10_000_000)] = 50_000,
    web_events: Annotated[int | None, typer.Option(min=0, help="[60 per contact]")] = None,
    random_seed: Annotated[int, typer.Option("--seed", help="Same seed, same data.")] = 42,
    stories: Annotated[
        bool,
        typer.Option(help="Write the seed documents' stories (Alexis and David …) and print them."),
    ] = True,
    reset: Annotated[
        bool, typer.Option("--reset", help="First delete every document of the org.")
    ] = False,
) -> None:
    """Write a realistic demo data set for one org: the seed documents' stories, then
    contacts of every type, merge sets and conversations over every channel.

    Running it again writes nothing new and prints the stories and their ids again;
    --reset deletes the org's data first and writes it all again.
    """
    plan = SeedPlan(org, contacts, merge_sets, conversations, web_events, random_seed, stories)
    told, result = _run_with_store(Settings(), lambda store: _seed(store, plan, reset=reset))
    _print_seeded(org, told, result)


@dataclass(frozen=True)
class SeedPlan:
    """What ``scv seed`` is asked to write."""

    org: str
    contacts: int
    merge_sets: int
    conversations: int
    web_events: int | None  # None: 60 per contact
    random_seed: int
    stories: bool

    @property
    def web(self) -> int:
        return self.contacts * 60 if self.web_events is None else self.web_events

    @property
    def size(self) -> int:
        """Documents to write, for the progress bar."""
        return self.contacts + self.merge_sets + self.conversations + self.web


async def _seed(
    store: Store, plan: SeedPlan, *, reset: bool
) -> tuple[list[Story], SeedResult | None]:
    """``scv seed``'s work: the data set unless the org holds it, then the stories unless told
    (the stories told, and what was written)."""
    from gateway.seed_stories import told_stories, write_stories
    from gateway.seeding import holds_data_set, reset_org

    org = plan.org
    if reset:
        deleted = await reset_org(store, org)
        console.print(f"org {org}: {deleted} documents deleted", highlight=False)
    has_data_set = await holds_data_set(store, org)
    told = await told_stories(store, org)
    if has_data_set:
        _say_already_seeded(org)
    if has_data_set and (told or not plan.stories):
        return told if plan.stories else [], None
    with Progress(console=console) as progress:
        task = progress.add_task(f"seeding org {org}", total=(0 if has_data_set else plan.size) + 1)

        def advance(n: int) -> None:
            progress.advance(task, n)

        result = None if has_data_set else await _write_data_set(store, plan, advance)
        if plan.stories and not told:
            principal = Principal(org=org, sub="scv-seed", permissions=frozenset(ALL_PERMISSIONS))
            told = await write_stories(store, principal)
        advance(1)
    if result is not None:
        await _rebuild_pairs(store, org)
    return (told if plan.stories else []), result


async def _write_data_set(
    store: Store, plan: SeedPlan, advance: Callable[[int], None]
) -> SeedResult:
    """The contacts, merge sets, conversations and web traffic of ``plan``."""
    from gateway.seeding import seed as write_data_set
    from gateway.web_seeding import seed_web_traffic

    result = await write_data_set(
        store,
        plan.org,
        contacts=plan.contacts,
        merge_sets=plan.merge_sets,
        conversations=plan.conversations,
        seed=plan.random_seed,
        progress=advance,
    )
    result.web_events, result.stitched_visitors = await seed_web_traffic(
        store, plan.org, plan.web, plan.random_seed, advance
    )
    return result


async def _rebuild_pairs(store: Store, org: str) -> int:
    """duplicateClusters' pairs of every live contact of the org, with a progress bar."""
    from resolvers.matching_batch import rebuild_org

    with Progress(console=console) as progress:  # the total is unknown: counting would read all
        task = progress.add_task(f"finding duplicates in org {org}", total=None)
        pairs = await rebuild_org(store, org, progress=lambda n: progress.advance(task, n))
    console.print(f"org {org}: {pairs} probable duplicate pairs", highlight=False)
    return pairs


@app.command()
def pairs(
    org: Annotated[str, typer.Option(metavar="ORG", help="Tenant whose pairs to rebuild.")] = "dev",
) -> None:
    """Rebuild the org's probable duplicate pairs (what duplicateClusters reads) from its
    contacts: for data written around the gateway (scv seed and scv import do it)."""
    _run_with_store(Settings(), lambda store: _rebuild_pairs(store, org))


def _say_already_seeded(org: str) -> None:
    message = f"org {org} already holds the seeded data set; nothing written "
    console.print(message + "(scv seed --reset writes it again)", highlight=False)


def _print_seeded(org: str, told: list[Story], result: SeedResult | None) -> None:
    """What ``scv seed`` wrote, and every story with its query to paste into GraphiQL."""
    if result is not None:
        console.print(
            f"org {org}: {result.contacts} contacts, {len(result.merge_sets)} merge sets, "
            f"{result.conversations} conversations, {result.web_events} web events "
            f"({result.stitched_visitors} visitors stitched by a form fill)",
            highlight=False,
        )
    if told:
        console.print(f"{len(told)} stories, each with a query to paste into GraphiQL:")
    for number, story in enumerate(told, start=1):  # plain lines: the queries stay pasteable
        console.print(f"{number}. {story.title} (contact {story.contact_id})", highlight=False)
        console.print(f"   {{ {story.look_at} }}", highlight=False, markup=False)


@app.command()
def export(
    org: Annotated[str, typer.Option(help="Tenant to export.")] = "dev",
    since: Annotated[str | None, typer.Option(help="ISO-8601 with offset (inclusive).")] = None,
    until: Annotated[str | None, typer.Option(help="ISO-8601 with offset (exclusive).")] = None,
    channels: Annotated[str | None, typer.Option(help="Comma-separated, e.g. VOICE,EMAIL.")] = None,
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="File to write; default stdout.")
    ] = None,
) -> None:
    """Write the org's visible conversations as NDJSON, newest first (startedAt, then id),
    read in index order, with or without --since/--until: the same lines, in the same order,
    as GET /export/conversations.ndjson."""
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
