"""The export's first lines come before the whole first chunk is resolved."""

from __future__ import annotations

from datetime import timedelta

import orjson

from bench.command_log import CommandLog
from gateway.export import FIRST_LINES, FIRST_PIECE, ndjson_lines
from resolvers.clock import now
from resolvers.store import Store
from tests.factories import add_contact, conversation_doc


async def test_the_first_chunk_is_written_in_small_pieces_and_the_rest_whole(
    logged: tuple[Store, CommandLog],
) -> None:
    store, log = logged
    contacts = [await add_contact(store) for _ in range(7)]
    moment = now()
    total = FIRST_LINES * 2 + 10
    await store.conversations.insert_many(
        [
            conversation_doc(
                store, f"c{n:04d}", moment - timedelta(minutes=n), contacts[n % 7]["_id"]
            )
            for n in range(total)
        ]
    )
    log.clear()
    chunks = [chunk async for chunk in ndjson_lines(store, "acme", chunk=FIRST_LINES * 3)]
    sizes = [chunk.count(b"\n") for chunk in chunks]
    # one read, written as it is resolved: a small first piece, then pieces of FIRST_LINES
    assert sizes == [FIRST_PIECE, FIRST_LINES, FIRST_LINES - FIRST_PIECE + 10]
    ids = [orjson.loads(line)["id"] for chunk in chunks for line in chunk.splitlines()]
    assert ids == [f"c{n:04d}" for n in range(total)]
    lookups = [n for n in log.names() if n.startswith("aggregate")]
    assert len(lookups) == 1  # the contacts of later pieces were remembered from the first
