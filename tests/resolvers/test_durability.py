"""An acknowledged write survives a SIGKILL of the database: interactions are recorded
through the domain with the gateway's own client (journaled, majority write concern), the
embedded server is killed at a random moment, restarted on the same data directory, and
every acknowledged conversation is there."""

from __future__ import annotations

import asyncio
import os
import random
import signal
from datetime import UTC, datetime
from pathlib import Path

from pymongo.errors import PyMongoError

from gateway.database import make_client, make_store
from gateway.embedded import EmbeddedServer
from gateway.settings import Settings
from resolvers.interactions import record_interaction
from resolvers.store import Store
from tests.conftest import principal, refused_sockets_collected

ROUNDS = 4
WRITERS = 8


async def write_until_killed(store: Store, round_: int, writer: int, acked: list[str]) -> None:
    """Record interactions one after the other; each id is noted once its write returned."""
    who = principal(org="durable")
    for n in range(10_000):
        cid = f"r{round_}-w{writer}-{n}"
        raw = {
            "conversationId": cid,
            "channel": "VOICE",
            "startedAt": datetime.now(UTC),
            "identifiers": [{"type": "PHONE", "value": f"+1803555{writer:02d}{n % 100:02d}"}],
        }
        try:
            await record_interaction(store, who, raw)
        except PyMongoError:
            return  # the database is gone: this write was never acknowledged
        acked.append(cid)


async def kill_while_writing(
    data_dir: Path, settings: Settings, rng: random.Random, round_: int, acked: list[str]
) -> None:
    server = EmbeddedServer(data_dir).start()
    client = make_client(server.uri, settings)
    store = make_store(client, settings)
    await store.ensure_indexes()
    writers = [
        asyncio.create_task(write_until_killed(store, round_, w, acked)) for w in range(WRITERS)
    ]
    await asyncio.sleep(rng.uniform(0.3, 1.2))
    assert server.process is not None
    os.killpg(server.process.pid, signal.SIGKILL)
    await asyncio.gather(*writers)
    await client.close()
    server.stop()


async def test_every_acknowledged_interaction_survives_a_database_kill(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    settings = Settings(SCV_DB_NAME="durable", SCV_DB_TIMEOUT_MS=1000)
    rng = random.Random(19)
    acked: list[str] = []
    for round_ in range(ROUNDS):
        # writers of a killed server: their refused connections' sockets go to the collector
        with refused_sockets_collected():
            before = len(acked)
            await kill_while_writing(data_dir, settings, rng, round_, acked)
        assert len(acked) > before, "no write was acknowledged before the kill"

    with EmbeddedServer(data_dir) as server:
        client = make_client(server.uri, settings)
        found = await make_store(client, settings).conversations.distinct("cid", {"org": "durable"})
        await client.close()
    lost = sorted(set(acked) - set(found))
    assert lost == [], f"{len(lost)} of {len(acked)} acknowledged conversations lost: {lost[:10]}"
