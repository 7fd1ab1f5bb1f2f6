"""The ``scv`` command line: serve, token, schema (and the data tools)."""

from __future__ import annotations

import asyncio
import csv
import socket
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, TypeVar

import typer
import uvicorn
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


@app.command()
def serve() -> None:
    """Serve the gateway (embedded database unless MONGODB_URI is set)."""
    from gateway.app import create_app, database_uri
    from gateway.logs import configure_logging

    settings = Settings()
    _check_port(settings.host, settings.port)
    configure_logging()  # JSON lines on stderr, personal data and tokens redacted
    try:
        with database_uri(settings) as uri:
            application = create_app(settings, uri=uri, secret=settings.jwt_secret)
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
            uvicorn.run(
                application,
                host=settings.host,
                port=settings.port,
                log_level="warning",
                log_config=None,  # uvicorn's records go through our JSON handler
                access_log=False,  # gateway.logs.RequestLogging writes one line per request
                ws_max_size=settings.max_body_bytes,
                lifespan="on",
            )
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


@app.command("import")
def import_contacts(
    path: Annotated[Path, typer.Argument(help="CSV file; columns are ContactInput field names.")],
    org: Annotated[str, typer.Option(help="Tenant to import into.")] = "dev",
) -> None:
    """Import curated contacts from CSV (re-importing the same file changes nothing)."""
    from resolvers.importer import import_rows

    try:
        with path.open(newline="", encoding="utf-8-sig") as handle:
            rows = list(csv.DictReader(handle))
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise fail(f"cannot read {path}: {exc}") from None
    principal = Principal(org=org, sub="cli-import", permissions=frozenset(ALL_PERMISSIONS))
    settings = Settings()

    async def work(store: Store) -> ImportReport:
        with Progress(console=console) as progress:
            task = progress.add_task(f"importing {path.name}", total=len(rows))
            return await import_rows(store, principal, rows, lambda n: progress.advance(task, n))

    report = _run_with_store(settings, work)
    console.print(
        f"created {report.created}, updated {report.updated}, "
        f"unchanged {report.unchanged}, errors {len(report.errors)}"
    )
    if report.errors:
        table = Table("line", "error", title="rows not imported")
        for line, message in report.errors[:200]:
            table.add_row(str(line), message)
        console.print(table)
        if len(report.errors) > 200:
            console.print(f"… and {len(report.errors) - 200} more")
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
) -> None:
    """Write a realistic demo data set (contacts, merge sets, conversations) for one org."""
    from gateway.seeding import seed as write_data_set

    settings = Settings()

    async def work(store: Store) -> str:
        with Progress(console=console) as progress:
            task = progress.add_task(
                f"seeding org {org}", total=contacts + merge_sets + conversations
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
        return (
            f"org {org}: {result.contacts} contacts, {len(result.merge_sets)} merge sets, "
            f"{result.conversations} conversations"
        )

    try:
        console.print(_run_with_store(settings, work), highlight=False)
    except DomainError as exc:
        raise fail(exc.message) from None


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
