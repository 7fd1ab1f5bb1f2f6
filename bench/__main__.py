"""`make bench`: seed an embedded server, then measure the gateway against raw driver work.

A fresh embedded SecantusDB (child process) gets the demo data set of ``gateway.seeding``
(5,000 contacts, 200 merge sets, 50,000 conversations; fixed seed). A real ``scv serve``
process (uvicorn on 127.0.0.1) serves it. Every row of the one table is measured side by
side in this run, the gateway's way and the raw driver's way interleaved:

- ingest: ``recordInteraction`` over HTTP vs the minimal driver work of the same resolution
  (claim lookup, holder, conversation upsert);
- journey: the first page of 100 of a 10-member merge set through GraphQL vs the equivalent
  driver queries (contact, merge set, summary aggregate, page);
- BI pull: all 50,000 conversations via ``conversations`` pages of 1,000 and via the NDJSON
  export vs a raw cursor over the same documents (throughput);
- database commands per query of the command-count test's two queries (an in-process app
  with a command listener);
- peak RSS of the gateway process while it exports every line, against its RSS before.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import orjson
import psutil  # type: ignore[import-untyped]
from pymongo import AsyncMongoClient, ReturnDocument
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from bench.command_log import BI_LEVELS, BI_QUERY, JOURNEY_LEVELS, JOURNEY_QUERY, CommandLog
from gateway.app import create_app
from gateway.auth import mint_token
from gateway.embedded import EmbeddedServer, free_port
from gateway.seeding import SeedResult, seed
from gateway.settings import Settings
from resolvers.clock import now
from resolvers.contacts import new_id
from resolvers.store import Doc, DomainConfig, Store
from schema.scalars import serialize_datetime

ORG = "bench"
DB_NAME = "scv_bench"
SECRET = "bench-secret-" + "b" * 32
SORT = [("startedAt", -1), ("_id", -1)]

RECORD = """
mutation Record($input: InteractionInput!) {
  recordInteraction(input: $input) { created contact { id } conversation { id } }
}
"""
JOURNEY_TAB = """
query Tab($id: ID!) {
  journey(contactId: $id) {
    contact { id firstName lastName type }
    contactIds conversationCount firstSeenAt lastSeenAt channels
    conversations(first: 100) {
      pageInfo { hasNextPage endCursor }
      edges { cursor node { id channel direction startedAt endedAt durationSeconds queue
                            agent wrapUpCode status notes externalContactId } }
    }
  }
}
"""
BI_PAGE = """
query Pull($after: String) {
  conversations(first: 1000, after: $after) {
    pageInfo { hasNextPage endCursor }
    edges { node { id channel direction startedAt endedAt durationSeconds queue agent
                   wrapUpCode status notes identifiers { type value } externalContactId
                   individual { id } } }
  }
}
"""


@dataclass
class Row:
    name: str
    gateway: str
    raw: str
    ratio: str
    target: str
    met: bool | None


def mib(value: float) -> str:
    return f"{value / 2**20:.0f} MiB"


def ms(seconds: float) -> str:
    return f"{seconds * 1000:.1f} ms"


# --- raw driver work -------------------------------------------------------------------------


async def raw_ingest(store: Store, cid: str, phone: str, started: datetime) -> None:
    """The least a driver must do to resolve a call to its known contact and store it."""
    claim = await store.identifiers.find_one({"org": ORG, "key": f"PHONE:{phone}"})
    assert claim is not None
    contact = await store.contacts.find_one({"_id": claim["contactId"], "org": ORG})
    assert contact is not None
    moment = now()
    await store.conversations.find_one_and_update(
        {"org": ORG, "cid": cid},
        {
            "$set": {
                "channel": "VOICE",
                "direction": "INBOUND",
                "startedAt": started,
                "endedAt": None,
                "durationSeconds": None,
                "identifiers": [{"type": "PHONE", "value": phone}],
                "expiresAt": started + timedelta(days=60),
                "modifiedAt": moment,
            },
            "$setOnInsert": {
                "_id": new_id(),
                "createdAt": moment,
                "externalContactId": contact["_id"],
            },
        },
        upsert=True,
        return_document=ReturnDocument.AFTER,
    )


async def raw_journey(store: Store, contact_id: str) -> int:
    """Contact, merge set, summary and the first page of 100, in the planner-friendly shapes."""
    contact = await store.contacts.find_one({"_id": contact_id, "org": ORG})
    assert contact is not None
    members = [contact_id]
    if contact.get("mergeSetId"):
        merge_set = await store.merge_sets.find_one({"_id": contact["mergeSetId"], "org": ORG})
        assert merge_set is not None
        members = merge_set["memberIds"]
    moment = now()
    match = {
        "externalContactId": {"$in": members},
        "org": ORG,
        "startedAt": {"$gt": moment - timedelta(days=60)},
        "expiresAt": {"$gt": moment},
    }
    group = {
        "_id": None,
        "count": {"$sum": 1},
        "first": {"$min": "$startedAt"},
        "last": {"$max": "$startedAt"},
        "channels": {"$addToSet": "$channel"},
    }
    summary = await (
        await store.conversations.aggregate([{"$match": match}, {"$group": group}])
    ).to_list()
    page = await store.conversations.find(match).sort(SORT).limit(101).batch_size(101).to_list()
    return len(page) + len(summary)


async def raw_pull(store: Store) -> int:
    count = 0
    cursor = store.conversations.find({"org": ORG, "expiresAt": {"$gt": now()}}, batch_size=1000)
    async for _doc in cursor:
        count += 1
    return count


# --- the gateway's way -------------------------------------------------------------------


async def gql(http: httpx.AsyncClient, query: str, variables: dict[str, Any]) -> Any:
    response = await http.post("/graphql", json={"query": query, "variables": variables})
    body = orjson.loads(response.content)
    if response.status_code != 200 or body.get("errors"):
        raise RuntimeError(f"GraphQL failed: {response.status_code} {response.text[:500]}")
    return body["data"]


async def gql_pull(http: httpx.AsyncClient) -> int:
    count, after = 0, None
    while True:
        page = (await gql(http, BI_PAGE, {"after": after}))["conversations"]
        count += len(page["edges"])
        if not page["pageInfo"]["hasNextPage"]:
            return count
        after = page["pageInfo"]["endCursor"]


async def export_pull(http: httpx.AsyncClient, since: str | None = None) -> int:
    lines = 0
    params = {"since": since} if since else {}
    async with http.stream("GET", "/export/conversations.ndjson", params=params) as response:
        assert response.status_code == 200, response.status_code
        async for chunk in response.aiter_bytes():
            lines += chunk.count(b"\n")
    return lines


async def timed(work: Callable[[], Awaitable[Any]]) -> tuple[float, Any]:
    return await timed_once(work())


async def timed_once(work: Awaitable[Any]) -> tuple[float, Any]:
    started = time.perf_counter()
    result = await work
    return time.perf_counter() - started, result


# --- measurements --------------------------------------------------------------------------


async def measure_ingest(
    http: httpx.AsyncClient, store: Store, phones: list[str], rounds: int, progress: Progress
) -> Row:
    task = progress.add_task("ingest: recordInteraction vs raw", total=rounds)
    gateway_s: list[float] = []
    raw_s: list[float] = []
    warmup = 10
    for n in range(rounds + warmup):
        phone = phones[n % len(phones)]
        started = datetime.now(UTC).replace(microsecond=0)
        variables = {
            "input": {
                "conversationId": f"bench-gql-{n}",
                "channel": "VOICE",
                "startedAt": serialize_datetime(started),
                "identifiers": [{"type": "PHONE", "value": phone}],
            }
        }
        works: dict[str, Awaitable[Any]] = {
            "gateway": gql(http, RECORD, variables),
            "raw": raw_ingest(store, f"bench-raw-{n}", phone, started),
        }
        for name in ("gateway", "raw") if n % 2 else ("raw", "gateway"):
            seconds, _ = await timed_once(works[name])
            if n >= warmup:
                (gateway_s if name == "gateway" else raw_s).append(seconds)
        if n >= warmup:
            progress.advance(task)
    gateway_p50, raw_p50 = statistics.median(gateway_s), statistics.median(raw_s)
    ratio = gateway_p50 / raw_p50
    return Row(
        f"ingest: recordInteraction over HTTP, known caller (median of {rounds})",
        f"{ms(gateway_p50)} (mean {ms(statistics.mean(gateway_s))})",
        f"{ms(raw_p50)} (mean {ms(statistics.mean(raw_s))})",
        f"{ratio:.2f}x",
        "≤ 2.0x",
        ratio <= 2.0,
    )


async def measure_journey(
    http: httpx.AsyncClient, store: Store, contact_id: str, rounds: int, progress: Progress
) -> Row:
    task = progress.add_task("journey: first page of 100 vs raw", total=rounds)
    gateway_s: list[float] = []
    raw_s: list[float] = []
    data = await gql(http, JOURNEY_TAB, {"id": contact_id})
    shown = len(data["journey"]["conversations"]["edges"])
    size = len(data["journey"]["contactIds"])
    total = data["journey"]["conversationCount"]
    for n in range(rounds + 3):
        pair = [
            ("gateway", lambda: gql(http, JOURNEY_TAB, {"id": contact_id})),
            ("raw", lambda: raw_journey(store, contact_id)),
        ]
        for name, work in pair if n % 2 else reversed(pair):
            seconds, _ = await timed(work)
            if n >= 3:
                (gateway_s if name == "gateway" else raw_s).append(seconds)
        if n >= 3:
            progress.advance(task)
    gateway_p50, raw_p50 = statistics.median(gateway_s), statistics.median(raw_s)
    ratio = gateway_p50 / raw_p50
    return Row(
        f"journey: first page ({shown} rows) of a {size}-member set with {total} "
        f"conversations (median of {rounds})",
        f"{ms(gateway_p50)} (mean {ms(statistics.mean(gateway_s))})",
        f"{ms(raw_p50)} (mean {ms(statistics.mean(raw_s))})",
        f"{ratio:.2f}x",
        "≤ 1.5x",
        ratio <= 1.5,
    )


async def measure_pulls(
    http: httpx.AsyncClient, store: Store, gateway_pid: int, rounds: int, progress: Progress
) -> tuple[Row, Row, Row]:
    """Each pull ``rounds`` times, interleaved; the best time of each counts (the machine's
    other work only ever slows a run down). The gateway's RSS is sampled during exports."""
    task = progress.add_task("BI pull: raw cursor, export, GraphQL", total=3 * rounds + 1)
    times: dict[str, list[float]] = {"raw": [], "graphql": [], "export": []}
    counts: dict[str, int] = {}
    process = psutil.Process(gateway_pid)

    async def watched(work: Awaitable[int]) -> tuple[int, int, int]:
        """Lines, RSS before and peak RSS during ``work``."""
        before = process.memory_info().rss
        peak = [before]

        async def sample() -> None:
            while True:
                peak[0] = max(peak[0], process.memory_info().rss)
                await asyncio.sleep(0.01)

        sampler = asyncio.create_task(sample())
        try:
            lines = await work
        finally:
            sampler.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await sampler
        return lines, before, peak[0]

    # flat memory: a small export first, then the whole one must not need more
    since = serialize_datetime(datetime.now(UTC) - timedelta(days=5))
    small_lines, small_before, small_peak = await watched(export_pull(http, since))
    progress.advance(task)
    memory: list[tuple[int, int]] = []
    for n in range(rounds):
        order = ["raw", "export", "graphql"] if n % 2 == 0 else ["graphql", "export", "raw"]
        for name in order:
            started = time.perf_counter()
            if name == "export":
                count, before, peak = await watched(export_pull(http))
                memory.append((before, peak))
            else:
                count = await (raw_pull(store) if name == "raw" else gql_pull(http))
            times[name].append(time.perf_counter() - started)
            counts[name] = count
            progress.advance(task)
    best = {name: min(values) for name, values in times.items()}
    rate = {name: counts[name] / best[name] for name in times}
    rows = []
    for name, target, label in (
        ("graphql", 0.3, "BI pull: conversations, pages of 1,000"),
        ("export", 0.7, "BI pull: NDJSON export"),
    ):
        ratio = rate[name] / rate["raw"]
        rows.append(
            Row(
                f"{label} ({counts[name]:,} rows, best of {rounds})",
                f"{rate[name]:,.0f} rows/s ({best[name]:.1f} s)",
                f"{rate['raw']:,.0f} rows/s ({best['raw']:.1f} s)",
                f"{ratio:.2f}x",
                f"≥ {target}x",
                ratio >= target,
            )
        )
    first_before, first_peak = memory[0]
    rss = Row(
        "export: gateway RSS, before → peak",
        f"{small_lines:,} lines: {mib(small_before)} → {mib(small_peak)}; "
        f"{counts['export']:,} lines: {mib(first_before)} → {mib(first_peak)}",
        "(gateway process)",
        f"+{mib(small_peak - small_before)} / +{mib(first_peak - first_before)}",
        "flat",
        None,
    )
    return rows[0], rows[1], rss


async def measure_commands(uri: str, head_id: str) -> tuple[Row, Row]:
    """The command-count test's two queries on the benchmark's data, pages of 20 and 500."""
    log = CommandLog()
    # only commands are counted here, so no per-operation timeout: the identifiers loader's
    # query (a top-level $or) is a collection scan on the embedded server
    settings = Settings(SCV_DB_NAME=DB_NAME, SCV_JWT_SECRET=SECRET, SCV_DB_TIMEOUT_MS=300_000)
    app = create_app(settings, uri=uri, secret=SECRET, ensure_indexes=False, listeners=[log])
    token = mint_token(SECRET, org=ORG, sub="bench")
    transport = httpx.ASGITransport(app=app)
    counts: dict[str, list[str]] = {}
    async with httpx.AsyncClient(
        transport=transport,
        base_url="http://bench",
        headers={"Authorization": f"Bearer {token}"},
        timeout=120,
    ) as http:
        for label, query, variables in (
            ("bi", BI_QUERY, {}),
            ("journey", JOURNEY_QUERY, {"id": head_id}),
        ):
            for first in (20, 500):
                log.clear()
                await gql(http, query, {**variables, "first": first})
                counts[f"{label}{first}"] = log.names(get_more=False)
    await app.state.runtime.client.close()

    def row(label: str, key: str, levels: int) -> Row:
        small, large = counts[f"{key}20"], counts[f"{key}500"]
        return Row(
            f"{label}: database commands (getMore aside)",
            f"page of 20: {len(small)} · page of 500: {len(large)}",
            ", ".join(large),
            "same" if len(small) == len(large) else "differs",
            f"equal, ≤ {levels + 1}",
            len(small) == len(large) and len(large) <= levels + 1,
        )

    return (
        row("BI query (contact, individual{mergeSet, identifiers})", "bi", BI_LEVELS),
        row("journey query (nested contacts, mergeSet)", "journey", JOURNEY_LEVELS),
    )


# --- running it ------------------------------------------------------------------------------


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    memory = psutil.virtual_memory().total
    return (
        f"{cpu}, {psutil.cpu_count()} cores, {memory / 2**30:.0f} GiB, "
        f"Python {platform.python_version()}, {platform.system()} {platform.release()}"
    )


def progress_bar(console: Console) -> Progress:
    """Description, bar, done/total and elapsed time: the bars of every step."""
    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
    )


async def seed_data(store: Store, sizes: tuple[int, int, int], console: Console) -> SeedResult:
    contacts, sets, conversations = sizes
    with progress_bar(console) as progress:
        task = progress.add_task(
            f"seeding {contacts:,} contacts, {sets} merge sets, {conversations:,} conversations",
            total=contacts + sets + conversations,
        )
        return await seed(
            store,
            ORG,
            contacts=contacts,
            merge_sets=sets,
            conversations=conversations,
            seed=20261122,
            progress=lambda n: progress.advance(task, n),
        )


async def wait_ready(http: httpx.AsyncClient, gateway: subprocess.Popen[bytes]) -> None:
    for _ in range(600):
        if gateway.poll() is not None:
            raise RuntimeError("the gateway process exited at start-up")
        try:
            if (await http.get("/readyz")).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        await asyncio.sleep(0.1)
    raise RuntimeError("the gateway did not become ready")


async def bench(uri: str, port: int, gateway: subprocess.Popen[bytes], args: Any) -> list[Row]:
    console = Console()
    client: AsyncMongoClient[Doc] = AsyncMongoClient(uri, tz_aware=True)
    store = Store(client[DB_NAME], DomainConfig())
    token = mint_token(SECRET, org=ORG, sub="bench")
    try:
        await store.ensure_indexes()
        started = time.perf_counter()
        result = await seed_data(
            store, (args.contacts, args.merge_sets, args.conversations), console
        )
        console.print(f"seeded in {time.perf_counter() - started:.0f} s")
        ten = [s for s, size in result.merge_sets.items() if size == 10]
        head_id = result.set_heads[
            ten[0] if ten else max(result.merge_sets, key=result.merge_sets.__getitem__)
        ]
        async with httpx.AsyncClient(
            base_url=f"http://127.0.0.1:{port}",
            headers={"Authorization": f"Bearer {token}"},
            timeout=300,
        ) as http:
            await wait_ready(http, gateway)
            with progress_bar(console) as progress:
                ingest = await measure_ingest(http, store, result.phones, args.rounds, progress)
                journey = await measure_journey(http, store, head_id, args.rounds, progress)
                graphql, export, rss = await measure_pulls(
                    http, store, gateway.pid, args.pulls, progress
                )
        console.print("counting database commands …")
        bi_commands, journey_commands = await measure_commands(uri, head_id)
        return [ingest, journey, graphql, export, bi_commands, journey_commands, rss]
    finally:
        await client.close()


def report(rows: list[Row], elapsed: float) -> None:
    console = Console()
    if not console.is_terminal:  # a file or a pipe: wide enough for the README
        console = Console(width=160)
    table = Table(title=f"scv-gateway benchmark — {machine()}", title_justify="left")
    for name in ("measure", "gateway", "raw driver / baseline", "ratio", "target", "met"):
        table.add_column(name, overflow="fold")
    for row in rows:
        met = "—" if row.met is None else ("[green]yes[/]" if row.met else "[red]no[/]")
        table.add_row(row.name, row.gateway, row.raw, row.ratio, row.target, met)
    console.print(table)
    console.print(f"benchmark run: {elapsed:.0f} s")


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.split("\n")[0])
    parser.add_argument("--contacts", type=int, default=5000)
    parser.add_argument("--merge-sets", type=int, default=200)
    parser.add_argument("--conversations", type=int, default=50_000)
    parser.add_argument("--rounds", type=int, default=100, help="ingest and journey samples")
    parser.add_argument("--pulls", type=int, default=3, help="BI pulls of each kind")
    args = parser.parse_args()
    started = time.perf_counter()
    with (
        tempfile.TemporaryDirectory(prefix="scv-bench-") as tmp,
        EmbeddedServer(Path(tmp) / "data") as server,
    ):
        port = free_port()
        env = {
            **os.environ,
            "MONGODB_URI": server.uri,
            "SCV_PORT": str(port),
            "SCV_HOST": "127.0.0.1",
            "SCV_DB_NAME": DB_NAME,
            "SCV_JWT_SECRET": SECRET,
        }
        with open(Path(tmp) / "gateway.log", "wb") as log:
            gateway = subprocess.Popen(
                [sys.executable, "-m", "gateway.cli", "serve"],
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
            )
            try:
                rows = asyncio.run(bench(server.uri, port, gateway, args))
            finally:
                gateway.terminate()
                try:
                    gateway.wait(timeout=15)
                except subprocess.TimeoutExpired:
                    gateway.kill()
                    gateway.wait(timeout=5)
    report(rows, time.perf_counter() - started)
    return 0


if __name__ == "__main__":
    sys.exit(main())
