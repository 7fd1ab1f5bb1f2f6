"""The open transaction of a killed gateway stops blocking other writers within seconds: the
embedded server aborts transactions idle for 5 s (its default, 60 s, kept ``CONFLICT`` coming
for most of a minute after a crash)."""

from __future__ import annotations

import asyncio
import sys
import time

from gateway.embedded_daemon import TRANSACTION_LIFETIME_S
from resolvers.errors import Conflict
from resolvers.store import Store
from tests.factories import add_contact

# a "gateway" that updates a contact in a transaction and is killed before committing
HOLDER = """
import asyncio, sys
from pymongo import AsyncMongoClient

async def main():
    client = AsyncMongoClient(sys.argv[1])
    contacts = client[sys.argv[2]]["contacts"]
    session = client.start_session()
    await session.start_transaction()
    await contacts.update_one({"_id": "c1"}, {"$set": {"firstName": "Held"}}, session=session)
    print("open", flush=True)
    await asyncio.sleep(120)

asyncio.run(main())
"""
DEADLINE_S = 4 * TRANSACTION_LIFETIME_S  # the old lifetime (60 s) is far beyond it


async def test_a_killed_writers_transaction_stops_blocking_within_seconds(
    store: Store, mongo_uri: str, db_name: str
) -> None:
    await add_contact(store, doc_id="c1", firstName="Free")
    holder = await asyncio.create_subprocess_exec(
        sys.executable, "-c", HOLDER, mongo_uri, db_name, stdout=asyncio.subprocess.PIPE
    )
    try:
        assert holder.stdout is not None
        assert await asyncio.wait_for(holder.stdout.readline(), 30) == b"open\n"
    finally:
        holder.kill()
        await holder.communicate()

    async def rename(session: object) -> None:
        await store.contacts.update_one(
            {"_id": "c1"},
            {"$set": {"firstName": "Moved"}},
            session=session,  # type: ignore[arg-type]
        )

    conflicts = 0
    deadline = time.monotonic() + DEADLINE_S
    while True:
        try:
            await store.in_transaction(rename)
            break
        except Conflict:
            conflicts += 1
            assert time.monotonic() < deadline, "the killed transaction still blocks"
            await asyncio.sleep(0.2)
    assert conflicts > 0  # it did block at first: the transaction was really left open
    moved = await store.contacts.find_one({"_id": "c1"})
    assert moved is not None and moved["firstName"] == "Moved"
