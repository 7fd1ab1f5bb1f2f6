"""Page query shapes that an index serves alone, and the answers they must still give."""

from __future__ import annotations

import random
from datetime import timedelta

from bench.command_log import CommandLog
from resolvers.clock import now, to_db_precision
from resolvers.journeys import (
    CONVERSATIONS_CURSOR,
    conversation_filter,
    page_filter,
    page_request,
    time_range,
)
from resolvers.store import Store
from tests.factories import ORG, add_contact, conversation_doc
from tests.resolvers.test_journeys import all_pages


async def test_org_pages_of_some_channels_merge_one_range_per_channel(
    logged: tuple[Store, CommandLog],
) -> None:
    store, log = logged
    rng = random.Random(3)
    moment = to_db_precision(now())
    channels = ("VOICE", "EMAIL", "SMS", "WHATSAPP")
    docs = [
        conversation_doc(
            store,
            f"c{n:04d}",
            moment - timedelta(minutes=rng.randint(0, 900)),
            channel=rng.choice(channels),
        )
        for n in range(600)
    ]
    await store.conversations.insert_many(docs)
    wanted = {"EMAIL", "SMS"}
    chosen = sorted(
        (d for d in docs if d["channel"] in wanted),
        key=lambda d: (d["startedAt"], d["_id"]),
        reverse=True,
    )
    request = page_request(
        CONVERSATIONS_CURSOR, None, conversation_filter(channels=wanted), 37, None, maximum=1000
    )
    log.clear()
    pages = await all_pages(store, request)
    assert [cid for page in pages for cid in page] == [d["cid"] for d in chosen]
    filters = [e.command["filter"] for e in log.events if e.command_name == "find"]
    assert filters and all(
        f["channel"] in wanted and set(f) == {"org", "channel", "startedAt"} for f in filters
    )


async def test_an_inclusive_since_keeps_the_row_at_that_instant(store: Store) -> None:
    """``since`` equal to a row's startedAt: sent as ``$gt`` a millisecond earlier, since the
    embedded server drops rows equal to a ``$gte`` bound on these indexes."""
    contact = await add_contact(store)
    t0 = to_db_precision(now() - timedelta(days=1))
    await store.conversations.insert_many(
        [
            conversation_doc(store, "at", t0, contact["_id"]),
            conversation_doc(store, "org-at", t0),
        ]
    )
    for members in ([contact["_id"]], None):
        request = page_request(
            CONVERSATIONS_CURSOR, members, conversation_filter(since=t0), 10, None, maximum=1000
        )
        pages = await all_pages(store, request)
        assert "at" in pages[0]
        span = time_range(store, request.filter, None, now())
        query = page_filter(ORG, members, request.filter, span, now())
        assert "$gte" not in query.index["startedAt"]


async def test_indexes_no_query_uses_are_dropped(store: Store) -> None:
    await store.conversations.create_index([("startedAt", -1), ("_id", -1)], name="started")
    await store.ensure_indexes()
    names = set(await store.conversations.index_information())
    assert "started" not in names and "contact_page" not in names
    assert {"org_page", "org_contact_page", "org_channel_page", "org_cid_link"} <= names
