"""`make load`: a bounded, loopback-only load run against a real `scv serve` process.

50 concurrent clients for a fixed duration (default and at most 60 s) send a mix of ingest,
journey reads, searches and merges; then the invariant checker runs over the database. One
run per worker count (``--workers 1,2``: ``scv serve`` with ``SCV_WORKERS``, each on a fresh
database), printed side by side: throughput, p50/p99 latency, errors, violations, and the
CPU milliseconds per request of the gateway's processes and of the database's.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import random
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import partial
from pathlib import Path
from typing import IO, Any

import aiohttp
import orjson
import psutil  # type: ignore[import-untyped]
from rich.console import Console
from rich.table import Table

from gateway.auth import mint_token
from gateway.database import make_client, make_store
from gateway.embedded import EmbeddedServer, free_port
from gateway.settings import Settings
from resolvers.invariants import find_violations

MAX_DURATION_S = 60.0
ORG = "load"
SECRET = "load-secret-" + "z" * 32
RATE_LIMIT_PER_MINUTE = 1_000_000
EXPECTED_REFUSALS = {"CONFLICT", "MERGE_NOT_ALLOWED", "NOT_FOUND", "BAD_USER_INPUT"}
CHANNELS = ["VOICE", "SMS", "EMAIL", "WEB_CHAT", "WEB_MESSAGING", "WHATSAPP", "FACEBOOK"]

JSON = {"Content-Type": "application/json"}
RECORD = """mutation($i: InteractionInput!) { recordInteraction(input: $i) {
  created contact { id } } }"""
JOURNEY = """query($id: ID!) { journey(contactId: $id) { conversationCount
  conversations(first: 20) { edges { node { id channel startedAt individual { id } } } } } }"""
SEARCH = """query($q: String!) { searchContacts(query: $q, types: [CURATED, IDENTIFIED], first: 10) {
  edges { node { id firstName } } } }"""
MERGE = """mutation($ids: [ID!]!) { mergeContacts(contactIds: $ids) { id } }"""
NAMES = ["ana", "bo", "cy", "dee", "eve", "finn", "gus", "hal", "ivy", "jo", "kai", "lee"]


@dataclass
class Stats:
    latencies: dict[str, list[float]] = field(default_factory=dict)
    refusals: Counter[str] = field(default_factory=Counter)
    errors: Counter[str] = field(default_factory=Counter)
    contact_ids: list[str] = field(default_factory=list)

    def add(self, kind: str, seconds: float) -> None:
        self.latencies.setdefault(kind, []).append(seconds)


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * p))] if ordered else 0.0


async def post(http: aiohttp.ClientSession, body: dict[str, Any]) -> tuple[int, bytes]:
    """POST ``body`` to /graphql; the status and the response's bytes."""
    async with http.post("/graphql", data=orjson.dumps(body), headers=JSON) as response:
        return response.status, await response.read()


async def call(
    http: aiohttp.ClientSession, stats: Stats, kind: str, query: str, variables: dict[str, Any]
) -> dict[str, Any] | None:
    started = time.perf_counter()
    try:
        status, raw = await post(http, {"query": query, "variables": variables})
    except (aiohttp.ClientError, TimeoutError) as exc:
        stats.errors[f"{kind}:{type(exc).__name__}"] += 1
        return None
    stats.add(kind, time.perf_counter() - started)
    if status != 200:
        stats.errors[f"{kind}:http {status}"] += 1
        return None
    body: dict[str, Any] = orjson.loads(raw)
    for error in body.get("errors") or []:
        code = (error.get("extensions") or {}).get("code", "NO_CODE")
        if code in EXPECTED_REFUSALS:
            stats.refusals[f"{kind}:{code}"] += 1
        else:
            stats.errors[f"{kind}:{code}"] += 1
    data: dict[str, Any] | None = body.get("data")
    return data


async def client_loop(
    n: int, http: aiohttp.ClientSession, stats: Stats, deadline: float, rng: random.Random
) -> None:
    sequence = 0
    base = datetime.now(UTC) - timedelta(days=1)
    while time.monotonic() < deadline:
        sequence += 1
        roll = rng.random()
        if roll < 0.55 or not stats.contact_ids:
            phone = f"+1803{rng.randrange(2000, 4000):07d}"
            variables = {
                "i": {
                    "conversationId": f"load-{n}-{sequence}",
                    "channel": rng.choice(CHANNELS),
                    "startedAt": (base + timedelta(seconds=sequence)).isoformat(),
                    "identifiers": [{"type": "PHONE", "value": phone}],
                }
            }
            data = await call(http, stats, "ingest", RECORD, variables)
            contact = (data or {}).get("recordInteraction", {}) or {}
            if contact.get("contact"):
                stats.contact_ids.append(contact["contact"]["id"])
        elif roll < 0.75:
            await call(http, stats, "journey", JOURNEY, {"id": rng.choice(stats.contact_ids)})
        elif roll < 0.95:
            await call(http, stats, "search", SEARCH, {"q": rng.choice(NAMES)})
        else:
            ids = rng.sample(stats.contact_ids, 2) if len(stats.contact_ids) > 1 else []
            if ids:
                await call(http, stats, "merge", MERGE, {"ids": ids})


async def seed_curated(http: aiohttp.ClientSession, rng: random.Random) -> None:
    for i in range(100):
        variables = {
            "input": {
                "firstName": rng.choice(NAMES).title(),
                "lastName": f"Load{i}",
                "cellPhone": f"+1803{rng.randrange(2000, 4000):07d}",
            }
        }
        create = "mutation($input: ContactInput!) { createContact(input: $input) { id } }"
        await post(http, {"query": create, "variables": variables})


@dataclass
class Run:
    """One load run: its numbers, and the CPU the gateway and the database spent on it."""

    workers: int
    stats: Stats
    elapsed: float
    violations: list[str]
    gateway_cpu_s: float
    database_cpu_s: float
    clients_cpu_s: float

    @property
    def requests(self) -> int:
        return sum(len(v) for v in self.stats.latencies.values())


def cpu_seconds(processes: list[psutil.Process]) -> float:
    total = 0.0
    for process in processes:
        try:
            times = process.cpu_times()
        except psutil.Error:
            continue
        total += times.user + times.system
    return total


def gateway_processes(gateway: subprocess.Popen[bytes]) -> list[psutil.Process]:
    """The scv serve process and its workers (the database here is ours, not its child)."""
    parent = psutil.Process(gateway.pid)
    return [parent, *parent.children(recursive=True)]


def run(duration: float, clients: int, workers: int, logs: Path | None = None) -> Run:
    """Start the database and a real gateway process, drive them, then check invariants.
    With ``logs``, the gateway's output and the database's log are kept there
    (``gateway-<workers>.log``, ``database-<workers>.log``), else thrown away."""
    console = Console()
    with tempfile.TemporaryDirectory(prefix="scv-load-") as tmp, contextlib.ExitStack() as files:
        database_log = logs / f"database-{workers}.log" if logs is not None else None
        db = EmbeddedServer(Path(tmp) / "data", log_path=database_log).start()
        port = free_port()
        env = {
            **os.environ,
            "MONGODB_URI": db.uri,
            "SCV_PORT": str(port),
            "SCV_HOST": "127.0.0.1",
            "SCV_DB_NAME": "load",
            "SCV_JWT_SECRET": SECRET,
            "SCV_WORKERS": str(workers),
            # one token subject sends every request: the default limit (6,000 a minute, 100
            # req/s) would refuse the load this run is meant to measure
            "SCV_RATE_LIMIT_PER_MINUTE": str(RATE_LIMIT_PER_MINUTE),
        }
        scv = Path(sys.executable).with_name("scv")
        output: IO[bytes] | int = subprocess.DEVNULL
        if logs is not None:
            output = files.enter_context(open(logs / f"gateway-{workers}.log", "wb"))
        gateway = subprocess.Popen([str(scv), "serve"], env=env, stdout=output, stderr=output)
        assert db.process is not None
        database = [psutil.Process(db.process.pid)]
        try:
            stats, elapsed, cpu = asyncio.run(
                drive(
                    console, port, duration, clients, lambda: gateway_processes(gateway), database
                )
            )
        finally:
            stop(console, gateway)
            violations = asyncio.run(check(db.uri))
            db.stop()
    return Run(workers, stats, elapsed, violations, *cpu)


def stop(console: Console, gateway: subprocess.Popen[bytes]) -> None:
    """SIGTERM, then SIGKILL if the gateway has not stopped within 20 s (and say so)."""
    gateway.terminate()
    try:
        gateway.wait(timeout=20)
    except subprocess.TimeoutExpired:
        console.print("[red]the gateway did not stop within 20 s of SIGTERM: killed[/]")
        gateway.kill()
        gateway.wait()


async def drive(
    console: Console,
    port: int,
    duration: float,
    clients: int,
    gateway: Callable[[], list[psutil.Process]],
    database: list[psutil.Process],
) -> tuple[Stats, float, tuple[float, float, float]]:
    """The clients' loops for ``duration``; the stats, the time taken and the CPU seconds
    the gateway processes, the database and these clients spent meanwhile."""
    token = mint_token(SECRET, org=ORG, sub="load")
    headers = {"Authorization": f"Bearer {token}"}
    # idle connections close on our side first (uvicorn closes them after 5 s): never a
    # request on a connection the server is closing at that moment
    connector = aiohttp.TCPConnector(limit=clients, keepalive_timeout=2.0)
    async with aiohttp.ClientSession(
        base_url=f"http://127.0.0.1:{port}",
        headers=headers,
        timeout=aiohttp.ClientTimeout(total=30),
        connector=connector,
    ) as http:
        for _ in range(300):
            try:
                async with http.get("/readyz") as response:
                    if response.status == 200:
                        break
            except aiohttp.ClientError:
                pass
            await asyncio.sleep(0.1)
        rng = random.Random(7)
        await seed_curated(http, rng)
        stats = Stats()
        console.print(f"{clients} clients for {duration:.0f} s against 127.0.0.1:{port} …")
        processes = gateway()
        before = cpu_seconds(processes), cpu_seconds(database), time.process_time()
        started = time.monotonic()
        deadline = started + duration
        await asyncio.gather(
            *(client_loop(n, http, stats, deadline, random.Random(n)) for n in range(clients))
        )
        elapsed = time.monotonic() - started
        cpu = (
            cpu_seconds(processes) - before[0],
            cpu_seconds(database) - before[1],
            time.process_time() - before[2],
        )
        return stats, elapsed, cpu


async def check(uri: str) -> list[str]:
    settings = Settings(SCV_DB_NAME="load")
    client = make_client(uri, settings)
    try:
        return await find_violations(make_store(client, settings))
    finally:
        await client.close()


TARGET_RATE = 110.0  # requests per second, every operation together
TARGET_P99_S = 1.0


def report(console: Console, runs: list[Run], clients: int) -> int:
    """One column per run (1 worker, 2 workers …); exit status 1 on errors or violations."""
    table = Table(title=f"make load: {clients} clients on loopback, per number of workers")
    table.add_column("measure")
    for r in runs:
        table.add_column(f"{r.workers} worker{'s' if r.workers > 1 else ''}", justify="right")
    kinds = sorted({kind for r in runs for kind in r.stats.latencies})
    rows: list[tuple[str, Callable[[Run], str]]] = [
        ("duration", lambda r: f"{r.elapsed:.1f} s"),
        ("requests", lambda r: str(r.requests)),
        (f"req/s (target ≥ {TARGET_RATE:.0f})", lambda r: mark(rate(r), rate(r) >= TARGET_RATE)),
        ("p50 ms, all", lambda r: f"{percentile(everything(r), 0.5) * 1000:.0f}"),
        (
            f"p99 ms, all (target ≤ {TARGET_P99_S * 1000:.0f})",
            lambda r: mark(p99_ms(r), p99_ms(r) <= TARGET_P99_S * 1000),
        ),
    ]
    rows += [(f"{kind}: requests · p50 · p99 ms", partial(per_kind, kind=kind)) for kind in kinds]
    rows += [
        ("gateway CPU ms per request", lambda r: f"{r.gateway_cpu_s * 1000 / r.requests:.1f}"),
        ("database CPU ms per request", lambda r: f"{r.database_cpu_s * 1000 / r.requests:.1f}"),
        ("clients' CPU ms per request", lambda r: f"{r.clients_cpu_s * 1000 / r.requests:.1f}"),
        ("expected refusals", lambda r: str(sum(r.stats.refusals.values()))),
        ("errors (target 0)", lambda r: mark(sum(r.stats.errors.values()), not r.stats.errors)),
        ("invariant violations (target 0)", lambda r: mark(len(r.violations), not r.violations)),
    ]
    for label, cell in rows:
        table.add_row(label, *(cell(r) for r in runs))
    console.print(table)
    for r in runs:
        if r.stats.errors:
            console.print(f"{r.workers} worker(s), errors: {dict(r.stats.errors)}")
        for line in r.violations[:20]:
            console.print(f"{r.workers} worker(s), violation: {line}")
    return 1 if any(r.stats.errors or r.violations for r in runs) else 0


def everything(r: Run) -> list[float]:
    return [v for values in r.stats.latencies.values() for v in values]


def rate(r: Run) -> float:
    return r.requests / r.elapsed


def p99_ms(r: Run) -> float:
    return percentile(everything(r), 0.99) * 1000


def per_kind(r: Run, *, kind: str) -> str:
    values = r.stats.latencies.get(kind, [])
    p50, p99 = percentile(values, 0.5) * 1000, percentile(values, 0.99) * 1000
    return f"{len(values)} · {p50:.0f} · {p99:.0f}"


def mark(value: float, met: bool) -> str:
    text = f"{value:.1f}" if isinstance(value, float) else str(value)
    return f"[green]{text}[/]" if met else f"[red]{text}[/]"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--duration", type=float, default=60.0, help="seconds per run")
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument(
        "--workers", default="1,2", help="gateway worker counts, one run each (e.g. 1,2)"
    )
    parser.add_argument(
        "--logs", type=Path, help="keep the gateway's and the database's logs in this directory"
    )
    args = parser.parse_args()
    duration = min(max(args.duration, 1.0), MAX_DURATION_S)
    clients = max(1, min(args.clients, 200))
    counts = [max(1, min(int(w), 8)) for w in args.workers.split(",") if w.strip()]
    if args.logs is not None:
        args.logs.mkdir(parents=True, exist_ok=True)
    runs = [run(duration, clients, workers, args.logs) for workers in counts]
    sys.exit(report(Console(), runs, clients))


if __name__ == "__main__":
    main()
