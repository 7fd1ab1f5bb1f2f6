"""The change feed's cost and the webhooks' lag, measured side by side in one run.

- ingest (``record_interaction`` in process) of interactions with a new phone (a contact is
  auto-created: a transaction with CONTACT_CREATED and IDENTIFIER_CLAIMED) and with a known
  phone (no change), each with the feed on and off (``DomainConfig.change_feed``),
  interleaved call by call on one database;
- webhook delivery lag: from a committed ``createContact`` to a receiver on 127.0.0.1 getting
  its change, through the delivery loop (woken by the feed's change stream), p50 and p99.

``python -m bench.feed`` runs it on a fresh embedded server; ``make bench`` adds its rows.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import os
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from pymongo import AsyncMongoClient

from gateway.embedded import EmbeddedServer
from gateway.webhook_delivery import DeliveryConfig, WebhookDeliverer
from resolvers import contacts, webhooks
from resolvers.interactions import record_interaction
from resolvers.principal import Principal
from resolvers.store import Doc, DomainConfig, Store

ORG = "feedbench"
WHO = Principal(org=ORG, sub="bench", permissions=frozenset())
INGEST_TARGET = 1.2  # feed on / feed off, p50


@dataclasses.dataclass
class FeedRow:
    name: str
    with_feed: str
    without: str
    ratio: float | None
    target: str
    met: bool | None


def p(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def interaction(n: int, phone: str) -> dict[str, Any]:
    started = datetime.now(UTC).replace(microsecond=0) - timedelta(seconds=n)
    return {
        "conversationId": f"feed-bench-{n}",
        "channel": "VOICE",
        "startedAt": started,
        "identifiers": [{"type": "PHONE", "value": phone}],
    }


async def ingest_rows(store: Store, calls: int) -> list[FeedRow]:
    off = Store(store.db, dataclasses.replace(store.config, change_feed=False))
    rows = []
    for kind in ("new", "known"):
        times: dict[bool, list[float]] = {True: [], False: []}
        for n in range(calls):
            for feed_on in (n % 2 == 0, n % 2 == 1):  # alternate which side goes first
                side = 1 if feed_on else 2
                number = n if kind == "new" else 0
                phone = f"+1808{5 + side}{number:06d}"
                started = time.perf_counter()
                await record_interaction(
                    store if feed_on else off, WHO, interaction(n * 10 + side, phone)
                )
                times[feed_on].append(time.perf_counter() - started)
        on, without = p(times[True], 0.5), p(times[False], 0.5)
        ratio = on / without
        rows.append(
            FeedRow(
                f"ingest, {kind} phone: feed on vs off (p50, {calls} calls each)",
                f"{on * 1000:.1f} ms",
                f"{without * 1000:.1f} ms",
                ratio,
                f"≤ {INGEST_TARGET}x",
                ratio <= INGEST_TARGET,
            )
        )
    return rows


class Receiver:
    def __init__(self) -> None:
        self.arrived: dict[str, float] = {}  # contact id -> when its change arrived
        self.waiting: dict[str, asyncio.Future[float]] = {}
        self.url = ""

    def arrival(self, contact_id: str) -> asyncio.Future[float]:
        """When the change about ``contact_id`` arrives (or arrived)."""
        future = asyncio.get_running_loop().create_future()
        if contact_id in self.arrived:
            future.set_result(self.arrived[contact_id])
        else:
            self.waiting[contact_id] = future
        return future

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = (await reader.readuntil(b"\r\n\r\n")).decode()
        length = next(
            int(line.split(":", 1)[1])
            for line in head.split("\r\n")
            if line.lower().startswith("content-length")
        )
        body = await reader.readexactly(length)
        moment = time.perf_counter()
        for change in json.loads(body)["changes"]:
            self.arrived.setdefault(change["contactId"], moment)
            waiting = self.waiting.pop(change["contactId"], None)
            if waiting is not None:
                waiting.set_result(moment)
        writer.write(b"HTTP/1.1 204 No Content\r\nConnection: close\r\n\r\n")
        await writer.drain()
        writer.close()
        await writer.wait_closed()


async def lag_row(store: Store, calls: int) -> FeedRow:
    receiver = Receiver()
    server = await asyncio.start_server(receiver.handle, "127.0.0.1", 0)
    receiver.url = f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}/hook"
    os.environ[webhooks.ALLOW_PRIVATE_ENV] = "1"
    await webhooks.create_webhook(store, WHO, receiver.url, ["CONTACT_CREATED"])
    deliverer = WebhookDeliverer(store, DeliveryConfig())
    await deliverer.start()
    lags: list[float] = []
    try:
        for n in range(calls):
            doc = await contacts.create_contact(
                store, WHO, {"firstName": f"L{n}", "lastName": "Ag"}
            )
            committed = time.perf_counter()
            arrived = await asyncio.wait_for(receiver.arrival(doc["_id"]), 60)
            lags.append(arrived - committed)
    finally:
        await deliverer.stop()
        server.close()
        await server.wait_closed()
    p50, p99 = p(lags, 0.5), p(lags, 0.99)
    return FeedRow(
        f"webhook delivery lag, commit to receiver ({calls} changes)",
        f"p50 {p50 * 1000:.0f} ms",
        f"p99 {p99 * 1000:.0f} ms",
        None,
        "—",
        None,
    )


async def measure_feed(uri: str, calls: int = 100) -> list[FeedRow]:
    client: AsyncMongoClient[Doc] = AsyncMongoClient(uri, tz_aware=True)
    store = Store(client["scv_feed_bench"], DomainConfig())
    try:
        await client.drop_database("scv_feed_bench")
        await store.ensure_indexes()
        return [*await ingest_rows(store, calls), await lag_row(store, calls)]
    finally:
        await client.drop_database("scv_feed_bench")
        await client.close()


def main() -> None:
    with EmbeddedServer(Path(tempfile.mkdtemp()) / "data") as server:
        rows = asyncio.run(measure_feed(server.uri))
    for row in rows:
        ratio = "" if row.ratio is None else f"  {row.ratio:.2f}x (target {row.target})"
        print(f"{row.name}: {row.with_feed} vs {row.without}{ratio}")


if __name__ == "__main__":
    main()
