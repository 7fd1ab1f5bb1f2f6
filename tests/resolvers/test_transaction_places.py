"""At most ``OPEN_TRANSACTIONS`` transactions are open at once in a gateway process; the
others wait before they start (``resolvers/store.py``), and one started inside another's
work takes no place, so it never waits for itself."""

from __future__ import annotations

import asyncio

from pymongo.asynchronous.client_session import AsyncClientSession

from resolvers.store import OPEN_TRANSACTIONS, Store


async def test_no_more_than_the_places_are_open_at_once_and_every_one_commits(
    store: Store,
) -> None:
    open_now = most = 0
    await store.db.create_collection("places")

    async def write(n: int) -> int:
        async def work(session: AsyncClientSession) -> int:
            nonlocal open_now, most
            open_now += 1
            most = max(most, open_now)
            try:  # (a conflicting attempt raises and is tried again)
                await store.db["places"].insert_one({"_id": f"place-{n}"}, session=session)
                await asyncio.sleep(0.02)  # held open while the others queue
            finally:
                open_now -= 1
            return n

        return await store.in_transaction(work)

    done = await asyncio.gather(*(write(n) for n in range(4 * OPEN_TRANSACTIONS)))
    assert done == list(range(4 * OPEN_TRANSACTIONS))
    assert most == OPEN_TRANSACTIONS
    assert await store.db["places"].count_documents({}) == 4 * OPEN_TRANSACTIONS


async def test_a_transaction_started_in_another_ones_work_takes_no_place(store: Store) -> None:
    """Every place is held by a transaction whose work starts another one: they all finish."""
    await store.db.create_collection("places")

    async def outer(n: int) -> str:
        async def work(session: AsyncClientSession) -> str:
            async def inner(inner_session: AsyncClientSession) -> str:
                await store.db["places"].insert_one({"_id": f"inner-{n}"}, session=inner_session)
                return "inner"

            await asyncio.sleep(0.02)  # every outer one holds its place by now
            return await store.in_transaction(inner)

        return await store.in_transaction(work)

    got = await asyncio.wait_for(
        asyncio.gather(*(outer(n) for n in range(OPEN_TRANSACTIONS))), timeout=30
    )
    assert got == ["inner"] * OPEN_TRANSACTIONS
