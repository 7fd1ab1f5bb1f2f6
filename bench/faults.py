"""`make faults`: the database and the gateway killed under load, on loopback.

1. **Database kill.** 20 clients record interactions through a real `scv serve` (on an
   embedded database this run owns); part-way through, the database is SIGKILLed and
   restarted on the same data directory and port. The run prints requests, errors by
   code, acknowledged writes lost (every acknowledged conversation is looked up after
   the run; must be 0), how long writes failed and how long the gateway took to write
   again once the database was back, then the invariant check (`scv check`).
2. **Gateway kills mid-merge.** A gateway is SIGKILLed ten times while clients merge
   contacts, then restarted at once; a single client walks every merge set back
   (``unmergeContacts``) and counts ``CONFLICT`` answers: the conflict window is the time
   from the last kill to the last conflict (the killed gateways' open transactions
   blocking writers until the database aborts them). Then the invariant check again.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
from rich.console import Console
from rich.table import Table

from gateway.auth import mint_token
from gateway.database import close_client, make_client, make_store
from gateway.embedded import EmbeddedServer, free_port
from gateway.settings import Settings
from resolvers.invariants import find_violations

ORG = "faults"
DB_NAME = "faults"
SECRET = "faults-secret-" + "f" * 32
RECORD = "mutation($i: InteractionInput!) { recordInteraction(input: $i) { created } }"
CREATE_BY_INTERACTION = (
    "mutation($i: InteractionInput!) { recordInteraction(input: $i) { contact { id } } }"
)
MERGE = "mutation($ids: [ID!]!) { mergeContacts(contactIds: $ids) { id } }"
UNMERGE = "mutation($id: ID!) { unmergeContacts(contactId: $id) { id } }"
MAX_DURATION_S = 60.0
GATEWAY_KILLS = 10


class Gateway:
    """`scv serve` against MONGODB_URI, as a subprocess on a loopback port."""

    def __init__(self, uri: str) -> None:
        self.port = free_port()
        env = {
            **os.environ,
            "MONGODB_URI": uri,
            "SCV_PORT": str(self.port),
            "SCV_DB_NAME": DB_NAME,
            "SCV_JWT_SECRET": SECRET,
            "SCV_DB_TIMEOUT_MS": "2000",
        }
        scv = Path(sys.executable).with_name("scv")
        self.process = subprocess.Popen(
            [str(scv), "serve"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def ready(self) -> None:
        async with httpx.AsyncClient(base_url=self.url) as http:
            for _ in range(600):
                try:
                    if (await http.get("/healthz")).status_code == 200:
                        return
                except httpx.HTTPError:
                    await asyncio.sleep(0.05)
        raise RuntimeError("the gateway did not start")

    def kill(self) -> None:
        self.process.kill()
        self.process.wait()

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=30)


def client(url: str) -> httpx.AsyncClient:
    token = mint_token(SECRET, org=ORG, sub="faults")
    return httpx.AsyncClient(
        base_url=url,
        headers={"Authorization": f"Bearer {token}"},
        timeout=10,
        limits=httpx.Limits(max_connections=50),
    )


async def post(http: httpx.AsyncClient, query: str, variables: dict[str, Any]) -> tuple[Any, str]:
    """(data, outcome): outcome is "ok", an error code, "http <status>" or a transport error."""
    try:
        response = await http.post("/graphql", json={"query": query, "variables": variables})
    except httpx.HTTPError as exc:
        return None, type(exc).__name__
    if response.status_code != 200:
        return None, f"http {response.status_code}"
    body = response.json()
    errors = body.get("errors") or []
    if errors:
        return body.get("data"), (errors[0].get("extensions") or {}).get("code", "NO_CODE")
    return body["data"], "ok"


# --- 1. the database killed under 20 writers ------------------------------------------


@dataclass
class WriteRun:
    outcomes: Counter[str] = field(default_factory=Counter)
    acked: list[str] = field(default_factory=list)
    acks: list[tuple[float, float]] = field(default_factory=list)  # (sent, answered)


async def writer(http: httpx.AsyncClient, n: int, run: WriteRun, deadline: float) -> None:
    sequence = 0
    while time.monotonic() < deadline:
        sequence += 1
        cid = f"f-{n}-{sequence}"
        variables = {
            "i": {
                "conversationId": cid,
                "channel": "VOICE",
                "startedAt": datetime.now(UTC).isoformat(),
                "identifiers": [
                    {"type": "PHONE", "value": f"+1803{4000000 + n * 1000 + sequence % 1000}"}
                ],
            }
        }
        sent = time.monotonic()
        data, outcome = await post(http, RECORD, variables)
        run.outcomes[outcome] += 1
        if outcome == "ok" and data and data.get("recordInteraction"):
            run.acked.append(cid)
            run.acks.append((sent, time.monotonic()))
        elif outcome != "ok":
            await asyncio.sleep(0.05)  # a client backs off a little on a failure


async def database_kill(
    console: Console, data_dir: Path, duration: float, clients: int
) -> list[tuple[str, str]]:
    port = free_port()
    db = EmbeddedServer(data_dir, port=port).start()
    gateway = Gateway(db.uri)
    run = WriteRun()
    try:
        await gateway.ready()
        async with client(gateway.url) as http:
            started = time.monotonic()
            deadline = started + duration
            writers = [asyncio.create_task(writer(http, n, run, deadline)) for n in range(clients)]
            await asyncio.sleep(duration * 0.4)
            assert db.process is not None
            os.killpg(db.process.pid, signal.SIGKILL)
            killed = time.monotonic()
            db.stop()
            console.print(f"database SIGKILLed at t={killed - started:.1f}s; restarting it")
            db = await asyncio.to_thread(EmbeddedServer(data_dir, port=port).start)
            back = time.monotonic()
            await asyncio.gather(*writers)
        lost = await lost_writes(db.uri, run.acked)
        violations = await check(db.uri)
    finally:
        gateway.stop()
        db.stop()
    # the first write sent after the kill that was acknowledged
    first_after = min((answered for sent, answered in run.acks if sent > killed), default=None)
    errors = {k: v for k, v in run.outcomes.items() if k != "ok"}
    return [
        ("clients", str(clients)),
        ("duration", f"{duration:.0f} s"),
        ("requests", str(sum(run.outcomes.values()))),
        ("acknowledged writes", str(len(run.acked))),
        ("errors by code", ", ".join(f"{k} {v}" for k, v in sorted(errors.items())) or "0"),
        ("lost acknowledged writes", str(len(lost))),
        ("database down (kill → restarted and listening)", f"{back - killed:.2f} s"),
        (
            "recovery (kill → first write sent after it acknowledged)",
            f"{first_after - killed:.2f} s" if first_after else "never",
        ),
        ("invariant violations", str(len(violations))),
    ]


async def lost_writes(uri: str, acked: list[str]) -> list[str]:
    settings = Settings(SCV_DB_NAME=DB_NAME)
    mongo = make_client(uri, settings)
    try:
        found = await make_store(mongo, settings).conversations.distinct("cid", {"org": ORG})
    finally:
        await close_client(mongo)
    return sorted(set(acked) - set(found))


async def check(uri: str) -> list[str]:
    settings = Settings(SCV_DB_NAME=DB_NAME)
    mongo = make_client(uri, settings)
    try:
        return await find_violations(make_store(mongo, settings))
    finally:
        await close_client(mongo)


# --- 2. gateways killed mid-merge ------------------------------------------------------


async def create_contacts(http: httpx.AsyncClient, count: int) -> list[str]:
    """Identified contacts, as interactions create them (mergeable with each other)."""
    ids = []
    for n in range(count):
        interaction = {
            "conversationId": f"m-{n}",
            "channel": "SMS",
            "startedAt": datetime.now(UTC).isoformat(),
            "identifiers": [{"type": "PHONE", "value": f"+1803{6000000 + n}"}],
        }
        data, outcome = await post(http, CREATE_BY_INTERACTION, {"i": interaction})
        if outcome != "ok":
            raise RuntimeError(f"recordInteraction failed: {outcome}")
        ids.append(data["recordInteraction"]["contact"]["id"])
    return ids


async def merger(http: httpx.AsyncClient, ids: list[str], rng: random.Random) -> None:
    while True:
        await post(http, MERGE, {"ids": rng.sample(ids, rng.choice((2, 3)))})


async def kill_mid_merge(uri: str, ids: list[str], rng: random.Random) -> float:
    """One gateway, four clients merging, SIGKILLed at a random moment; when it died."""
    gateway = Gateway(uri)
    await gateway.ready()
    async with client(gateway.url) as http:
        tasks = [
            asyncio.create_task(merger(http, ids, random.Random(rng.random()))) for _ in range(4)
        ]
        await asyncio.sleep(rng.uniform(0.3, 1.0))
        gateway.kill()
        killed = time.monotonic()
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
    return killed


async def walk_back(
    http: httpx.AsyncClient, ids: list[str], last_kill: float
) -> tuple[int, int, float]:
    """Unmerge every merge set until none is left: (unmerges, conflicts, window in s)."""
    unmerges = conflicts = 0
    last_conflict = last_kill
    pending = list(ids)
    while pending:
        contact_id = pending.pop()
        _, outcome = await post(http, UNMERGE, {"id": contact_id})
        unmerges += 1
        if outcome == "CONFLICT":
            conflicts += 1
            last_conflict = time.monotonic()
            pending.append(contact_id)
            await asyncio.sleep(0.1)
        elif outcome == "ok":
            pending.append(contact_id)  # its set may hold earlier merges too
    return unmerges, conflicts, last_conflict - last_kill


async def gateway_kills(console: Console, data_dir: Path) -> list[tuple[str, str]]:
    db = EmbeddedServer(data_dir).start()
    rng = random.Random(14)
    try:
        setup = Gateway(db.uri)
        await setup.ready()
        async with client(setup.url) as http:
            ids = await create_contacts(http, 40)
        setup.stop()
        for _ in range(GATEWAY_KILLS):
            last_kill = await kill_mid_merge(db.uri, ids, rng)
        console.print(f"{GATEWAY_KILLS} gateways SIGKILLed mid-merge; restarting one at once")
        gateway = Gateway(db.uri)
        try:
            await gateway.ready()
            up = time.monotonic() - last_kill
            async with client(gateway.url) as http:
                unmerges, conflicts, window = await walk_back(http, ids, last_kill)
        finally:
            gateway.stop()
        violations = await check(db.uri)
    finally:
        db.stop()
    return [
        ("gateway kills mid-merge", str(GATEWAY_KILLS)),
        ("restarted gateway serving after", f"{up:.2f} s"),
        ("unmerges walking the sets back", str(unmerges)),
        ("CONFLICT answers", str(conflicts)),
        ("conflict window after the last kill", f"{window:.2f} s" if conflicts else "0 s"),
        ("invariant violations", str(len(violations))),
    ]


def table(title: str, rows: list[tuple[str, str]]) -> Table:
    out = Table(title=title)
    out.add_column("measure")
    out.add_column("value", justify="right")
    for row in rows:
        out.add_row(*row)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--duration", type=float, default=20.0)
    parser.add_argument("--clients", type=int, default=20)
    args = parser.parse_args()
    duration = min(max(args.duration, 5.0), MAX_DURATION_S)
    console = Console()
    with tempfile.TemporaryDirectory(prefix="scv-faults-") as tmp:
        rows = asyncio.run(database_kill(console, Path(tmp) / "a", duration, args.clients))
        console.print(table("make faults: database SIGKILL under load", rows))
        merge_rows = asyncio.run(gateway_kills(console, Path(tmp) / "b"))
        console.print(table("make faults: gateways SIGKILLed mid-merge", merge_rows))
    failed = dict(rows)["lost acknowledged writes"] != "0" or any(
        dict(r)["invariant violations"] != "0" for r in (rows, merge_rows)
    )
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
