"""``scv serve --workers 2``: two gateway processes over one database, one development token,
metrics summed over both, claim races decided by the database."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import sys
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import psutil  # type: ignore[import-untyped]
import pytest
from typer.testing import CliRunner

from gateway.cli import app
from gateway.embedded import free_port
from resolvers.store import Store

QUERY = "query Probe { __typename }"
RECORD = """mutation Record($input: InteractionInput!) {
  recordInteraction(input: $input) { created contact { id } } }"""


@dataclass
class Served:
    process: subprocess.Popen[bytes]
    base: str
    token: str
    metrics_dir: Path

    def workers(self) -> set[int]:
        """The worker processes (uvicorn spawns them; the resource tracker is not one)."""
        found = set()
        for child in psutil.Process(self.process.pid).children():
            with contextlib.suppress(psutil.Error):
                if "spawn_main" in " ".join(child.cmdline()):
                    found.add(child.pid)
        return found

    def worker_pids(self) -> set[int]:
        """The worker processes holding an open connection to our port right now."""
        port = int(self.base.rsplit(":", 1)[1])
        pids = set()
        for child in psutil.Process(self.process.pid).children():
            try:
                connections = child.net_connections(kind="tcp")
            except psutil.Error:
                continue
            if any(c.status == "ESTABLISHED" and c.laddr.port == port for c in connections):
                pids.add(child.pid)
        return pids


@pytest.fixture
def served(mongo_uri: str, db_name: str, store: Store, tmp_path: Path) -> Iterator[Served]:
    """``scv serve --workers 2`` on the test's database, no SCV_JWT_SECRET (development)."""
    port = free_port()
    metrics_dir = tmp_path / "metrics"  # the operator's own directory, kept afterwards
    metrics_dir.mkdir()
    env = {k: v for k, v in os.environ.items() if k not in ("SCV_JWT_SECRET", "SCV_WORKERS")}
    env.update(
        {
            "PROMETHEUS_MULTIPROC_DIR": str(metrics_dir),
            "MONGODB_URI": mongo_uri,
            "SCV_DB_NAME": db_name,
            "SCV_PORT": str(port),
            "SCV_DATA_DIR": str(tmp_path / "data"),
        }
    )
    scv = Path(sys.executable).with_name("scv")
    process = subprocess.Popen(
        [str(scv), "serve", "--workers", "2"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
    )
    try:
        assert process.stdout is not None
        token = process.stdout.readline().decode().strip()  # the one development token
        assert token.startswith("eyJ"), token
        yield Served(process, f"http://127.0.0.1:{port}", token, metrics_dir)
    finally:
        process.terminate()
        try:  # a loaded machine once needed more than 30 s to stop two workers and the database
            process.communicate(timeout=60)
        finally:
            if process.poll() is None:  # never left running after the test, even on a timeout
                process.kill()
                process.communicate()


async def ready(served: Served) -> None:
    async with httpx.AsyncClient(base_url=served.base) as http:
        for _ in range(300):
            try:
                if (await http.get("/readyz")).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            await asyncio.sleep(0.1)
    raise AssertionError("scv serve --workers 2 never became ready")


@contextlib.asynccontextmanager
async def connections(served: Served, count: int) -> AsyncIterator[list[httpx.AsyncClient]]:
    """``count`` clients, each with a connection of its own (opened by a first request)."""
    clients = [
        httpx.AsyncClient(
            base_url=served.base,
            headers={"Authorization": f"Bearer {served.token}"},
            timeout=60,
        )
        for _ in range(count)
    ]
    try:
        yield clients
    finally:
        for client in clients:
            await client.aclose()


async def post_each(
    clients: list[httpx.AsyncClient], body: Callable[[int], dict[str, Any]]
) -> list[dict[str, Any]]:
    responses = await asyncio.gather(
        *(c.post("/graphql", json=body(n)) for n, c in enumerate(clients))
    )
    assert all(r.status_code == 200 for r in responses), [r.text for r in responses]
    return [r.json() for r in responses]


async def race(served: Served, phone: str) -> tuple[list[dict[str, Any]], set[int]]:
    """The same new phone from 16 connections at once; the answers and the workers hit."""
    started = datetime.now(UTC).isoformat(timespec="milliseconds")

    def record(n: int) -> dict[str, Any]:
        identifiers = [{"type": "PHONE", "value": phone}]
        return {
            "query": RECORD,
            "variables": {
                "input": {
                    "conversationId": f"race-{phone}-{n}",
                    "channel": "VOICE",
                    "startedAt": started,
                    "identifiers": identifiers,
                }
            },
        }

    async with connections(served, 16) as clients:
        bodies = await post_each(clients, record)
        return bodies, served.worker_pids()


async def test_two_workers_share_a_token_the_metrics_and_the_claims(
    served: Served, store: Store
) -> None:
    await ready(served)
    sent, pids = 0, set()
    for _ in range(10):  # the kernel hands connections to either worker; a few rounds suffice
        async with connections(served, 12) as clients:
            bodies = await post_each(clients, lambda n: {"query": QUERY})
            sent += len(clients)
            assert all(b["data"] == {"__typename": "Query"} for b in bodies), bodies
            pids |= served.worker_pids()
        if len(pids) >= 2:
            break
    assert len(pids) == 2, f"requests reached only the workers {pids}"

    # /metrics on either worker counts every request of both
    async with httpx.AsyncClient(base_url=served.base) as http:
        for _ in range(4):
            text = (await http.get("/metrics")).text
            counted = sum(
                float(line.rsplit(" ", 1)[1])
                for line in text.splitlines()
                if line.startswith("scv_requests_total{") and 'operation="Probe"' in line
            )
            assert counted == sent

    # the same new phone through both workers at once: one contact, one claim
    for attempt in range(5):
        phone = f"+1803555{attempt:04d}"
        bodies, racing = await race(served, phone)
        assert not any(b.get("errors") for b in bodies), bodies
        contact_ids = {b["data"]["recordInteraction"]["contact"]["id"] for b in bodies}
        assert len(contact_ids) == 1
        assert sum(b["data"]["recordInteraction"]["created"] for b in bodies) == 1
        holders = await store.contacts.count_documents({"org": "dev", "keys": f"PHONE:{phone}"})
        claims = await store.identifiers.count_documents({"org": "dev", "key": f"PHONE:{phone}"})
        assert (holders, claims) == (1, 1)
        if len(racing) == 2:
            break
    assert len(racing) == 2, f"no race reached both workers ({racing})"


async def test_a_worker_that_dies_is_replaced_and_leaves_the_live_gauges(served: Served) -> None:
    await ready(served)
    workers = served.workers()
    assert len(workers) == 2
    dead = min(workers)
    gauges = served.metrics_dir / f"gauge_livesum_{dead}.db"
    for _ in range(300):  # ready once one worker answers: the other may still be starting
        if gauges.exists():
            break
        await asyncio.sleep(0.1)
    assert gauges.exists()
    os.kill(dead, signal.SIGKILL)
    for _ in range(300):
        replaced = served.workers()
        gone = not gauges.exists()
        if len(replaced) == 2 and dead not in replaced and gone:
            break
        await asyncio.sleep(0.1)
    else:
        raise AssertionError(f"worker {dead} was not replaced ({served.workers()})")
    await ready(served)
    async with httpx.AsyncClient(base_url=served.base) as http:
        text = (await http.get("/metrics")).text
    assert "scv_open_subscriptions 0.0" in text


def test_a_worker_count_out_of_range_is_refused_before_anything_starts() -> None:
    result = CliRunner().invoke(app, ["serve", "--workers", "0"])
    assert result.exit_code == 2
    assert "--workers" in result.output and "Traceback" not in result.output
