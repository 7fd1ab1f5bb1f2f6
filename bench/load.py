"""`make load`: a bounded, loopback-only load run against a real `scv serve` process.

50 concurrent clients for a fixed duration (default 30 s, at most 60 s) send a mix of
ingest, journey reads, searches and merges; then the run prints throughput, p50/p99 latency
and the error count, and runs the invariant checker over the database.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
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
EXPECTED_REFUSALS = {"CONFLICT", "MERGE_NOT_ALLOWED", "NOT_FOUND", "BAD_USER_INPUT"}
CHANNELS = ["VOICE", "SMS", "EMAIL", "WEB_CHAT", "WEB_MESSAGING", "WHATSAPP", "FACEBOOK"]

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


async def call(
    http: httpx.AsyncClient, stats: Stats, kind: str, query: str, variables: dict[str, Any]
) -> dict[str, Any] | None:
    started = time.perf_counter()
    try:
        response = await http.post("/graphql", json={"query": query, "variables": variables})
    except httpx.HTTPError as exc:
        stats.errors[f"{kind}:{type(exc).__name__}"] += 1
        return None
    stats.add(kind, time.perf_counter() - started)
    if response.status_code != 200:
        stats.errors[f"{kind}:http {response.status_code}"] += 1
        return None
    body: dict[str, Any] = response.json()
    for error in body.get("errors") or []:
        code = (error.get("extensions") or {}).get("code", "NO_CODE")
        if code in EXPECTED_REFUSALS:
            stats.refusals[f"{kind}:{code}"] += 1
        else:
            stats.errors[f"{kind}:{code}"] += 1
    data: dict[str, Any] | None = body.get("data")
    return data


async def client_loop(
    n: int, http: httpx.AsyncClient, stats: Stats, deadline: float, rng: random.Random
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


async def seed_curated(http: httpx.AsyncClient, rng: random.Random) -> None:
    for i in range(100):
        variables = {
            "input": {
                "firstName": rng.choice(NAMES).title(),
                "lastName": f"Load{i}",
                "cellPhone": f"+1803{rng.randrange(2000, 4000):07d}",
            }
        }
        await http.post(
            "/graphql",
            json={
                "query": "mutation($input: ContactInput!) { createContact(input: $input) { id } }",
                "variables": variables,
            },
        )


def run(duration: float, clients: int) -> int:
    """Start the database and a real gateway process, drive them, then check invariants."""
    console = Console()
    with tempfile.TemporaryDirectory(prefix="scv-load-") as tmp:
        db = EmbeddedServer(Path(tmp) / "data").start()
        port = free_port()
        env = {
            **os.environ,
            "MONGODB_URI": db.uri,
            "SCV_PORT": str(port),
            "SCV_HOST": "127.0.0.1",
            "SCV_DB_NAME": "load",
            "SCV_JWT_SECRET": SECRET,
        }
        scv = Path(sys.executable).with_name("scv")
        gateway = subprocess.Popen(
            [str(scv), "serve"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        try:
            stats, elapsed = asyncio.run(drive(console, port, duration, clients))
        finally:
            gateway.terminate()
            gateway.wait(timeout=15)
            violations = asyncio.run(check(db.uri))
            db.stop()
    return report(console, stats, elapsed, clients, violations)


async def drive(console: Console, port: int, duration: float, clients: int) -> tuple[Stats, float]:
    token = mint_token(SECRET, org=ORG, sub="load")
    headers = {"Authorization": f"Bearer {token}"}
    limits = httpx.Limits(max_connections=clients)
    async with httpx.AsyncClient(
        base_url=f"http://127.0.0.1:{port}", headers=headers, timeout=30, limits=limits
    ) as http:
        for _ in range(300):
            try:
                if (await http.get("/readyz")).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            await asyncio.sleep(0.1)
        rng = random.Random(7)
        await seed_curated(http, rng)
        stats = Stats()
        console.print(f"{clients} clients for {duration:.0f} s against 127.0.0.1:{port} …")
        started = time.monotonic()
        deadline = started + duration
        await asyncio.gather(
            *(client_loop(n, http, stats, deadline, random.Random(n)) for n in range(clients))
        )
        return stats, time.monotonic() - started


async def check(uri: str) -> list[str]:
    settings = Settings(SCV_DB_NAME="load")
    client = make_client(uri, settings)
    try:
        return await find_violations(make_store(client, settings))
    finally:
        await client.close()


def report(
    console: Console, stats: Stats, elapsed: float, clients: int, violations: list[str]
) -> int:
    table = Table(title=f"make load: {clients} clients, {elapsed:.1f} s, loopback")
    for column in ("operation", "requests", "req/s", "p50 ms", "p99 ms"):
        table.add_column(column, justify="right" if column != "operation" else "left")
    everything: list[float] = []
    for kind, values in sorted(stats.latencies.items()):
        everything += values
        table.add_row(
            kind,
            str(len(values)),
            f"{len(values) / elapsed:.1f}",
            f"{percentile(values, 0.5) * 1000:.1f}",
            f"{percentile(values, 0.99) * 1000:.1f}",
        )
    table.add_row(
        "all",
        str(len(everything)),
        f"{len(everything) / elapsed:.1f}",
        f"{percentile(everything, 0.5) * 1000:.1f}",
        f"{percentile(everything, 0.99) * 1000:.1f}",
    )
    console.print(table)
    console.print(f"expected refusals: {dict(stats.refusals) or 0}")
    console.print(f"errors: {sum(stats.errors.values())} {dict(stats.errors) or ''}")
    console.print(f"invariant violations: {len(violations)}")
    for line in violations[:20]:
        console.print(f"  {line}")
    return 1 if stats.errors or violations else 0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--duration", type=float, default=30.0)
    parser.add_argument("--clients", type=int, default=50)
    args = parser.parse_args()
    duration = min(max(args.duration, 1.0), MAX_DURATION_S)
    sys.exit(run(duration, max(1, min(args.clients, 200))))


if __name__ == "__main__":
    main()
