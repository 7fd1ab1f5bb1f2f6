"""The embedded server's WiredTiger cache is sized from the machine's memory."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import psutil  # type: ignore[import-untyped]
import pytest
from pymongo import MongoClient

from gateway.embedded import CACHE_MAX_BYTES, CACHE_MIN_BYTES, EmbeddedServer, cache_size_bytes

GIB = 2**30


@pytest.mark.parametrize(
    ("memory", "cache"),
    [
        (2 * GIB, CACHE_MIN_BYTES),  # half of 1 GiB is below SecantusDB's own default
        (4 * GIB, 3 * GIB // 2),  # mongod's rule: half the memory beyond 1 GiB
        (24 * GIB, CACHE_MAX_BYTES),  # the development machine: capped
    ],
)
def test_the_cache_is_half_the_memory_beyond_a_gib_within_bounds(memory: int, cache: int) -> None:
    assert cache_size_bytes(memory) == cache


def test_the_server_runs_with_that_cache_and_serves(tmp_path: Path) -> None:
    with EmbeddedServer(tmp_path / "data") as server:
        assert server.process is not None
        command = psutil.Process(server.process.pid).cmdline()
        expected = cache_size_bytes(psutil.virtual_memory().total) // 2**20
        assert command[command.index("--cache-size") + 1] == f"{expected}M"
        client: MongoClient[dict[str, Any]] = MongoClient(server.uri)
        with client:
            client.scv_cache.things.insert_one({"_id": 1})
            assert client.scv_cache.things.find_one({"_id": 1}) == {"_id": 1}
