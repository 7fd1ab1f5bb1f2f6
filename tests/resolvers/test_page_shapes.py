"""Page query shapes that an index serves alone, and the answers they must still give."""

from __future__ import annotations

import dataclasses
import itertools
import random
from collections.abc import Mapping, Sequence
from datetime import timedelta
from typing import Any

from bench.command_log import CommandLog
from resolvers import conversation_counts
from resolvers.clock import now, to_db_precision
from resolvers.conversation_counts import floor_to
from resolvers.documents import ConversationDoc
from resolvers.journeys import (
    CONVERSATIONS_CURSOR,
    WINDOW_READ_MIN,
    WINDOW_SLACK,
    conversation_filter,
    conversation_page,
    decode_position,
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
    filters = [
        e.command["filter"]
        for e in log.events
        if e.command_name == "find" and e.command["find"] == "conversations"
    ]
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


async def test_later_windows_are_read_unsorted_and_a_burst_sorted(
    logged: tuple[Store, CommandLog],
) -> None:
    """A window sized from the density seen is read whole and unsorted, then ordered here; one
    holding more than ``WINDOW_OVERFLOW`` times the rows wanted and more than
    ``WINDOW_READ_MIN`` (a burst) is read again sorted and limited. Either way every row
    comes once, in page order, ties at one instant too."""
    store, log = logged
    moment = to_db_precision(now())
    hourly = [moment - timedelta(hours=n) for n in range(1, 13)]
    burst_at = moment - timedelta(hours=12, minutes=30)
    burst = [burst_at - timedelta(milliseconds=100 * n) for n in range(WINDOW_READ_MIN + 50)]
    burst += [burst_at - timedelta(seconds=20, milliseconds=50)] * 6  # one instant
    older = [moment - timedelta(hours=14 + n) for n in range(6)]
    docs = [conversation_doc(store, f"c{n:03d}", t) for n, t in enumerate(hourly + burst + older)]
    await store.conversations.insert_many(docs)
    ordered = sorted(docs, key=lambda d: (d["startedAt"], d["_id"]), reverse=True)
    request = page_request(
        CONVERSATIONS_CURSOR, None, conversation_filter(), 50, None, maximum=1000
    )
    log.clear()
    pages = await all_pages(store, request)
    assert [cid for page in pages for cid in page] == [d["cid"] for d in ordered]
    finds = [e.command for e in log.events if e.command_name == "find"]
    whole = [f for f in finds if "sort" not in f]
    assert whole, "no window was read whole"
    # the burst: a window read whole came back cut, and the same filter was read sorted
    redone = [
        (a, b)
        for a, b in itertools.pairwise(finds)
        if "sort" not in a and "sort" in b and a["filter"] == b["filter"]
    ]
    assert redone, "no overflowing window was read again sorted"
    assert all(b["limit"] <= 50 + 1 + 6 for _, b in redone)


Command = Mapping[str, Any]  # a command as the listener saw it


async def first_page_of_20(
    store: Store, log: CommandLog, docs: list[ConversationDoc]
) -> list[Command]:
    """``docs`` stored and counted in their buckets, then a first whole-org page of 20 read
    (the 20 newest); the conversation finds it sent."""
    await store.conversations.insert_many(docs)
    await conversation_counts.record(store, ORG, [(d["startedAt"], d["channel"], 1) for d in docs])
    request = page_request(
        CONVERSATIONS_CURSOR, None, conversation_filter(), 20, None, maximum=1000
    )
    log.clear()
    page = await conversation_page(store, ORG, request)
    newest = sorted(docs, key=lambda d: (d["startedAt"], d["_id"]), reverse=True)
    assert [d["cid"] for d in page.docs] == [d["cid"] for d in newest[:20]]
    return [e.command for e in log.events if e.command["find"] == "conversations"]


async def rows_held(store: Store, finds: Sequence[Command]) -> list[int]:
    """How many rows each find's time window holds."""
    return [
        await store.conversations.count_documents(
            {"org": ORG, "startedAt": f["filter"]["startedAt"]}
        )
        for f in finds
    ]


async def test_a_first_page_sizes_its_window_from_the_day_before(
    logged: tuple[Store, CommandLog],
) -> None:
    """The first window of a whole-org page holds about the rows wanted, sized from the hour
    count buckets of the day before, rather than from a guess of one every five minutes (which
    here would read all 600 rows for a page of 20)."""
    store, log = logged
    moment = to_db_precision(now())
    docs = [
        conversation_doc(store, f"c{n:03d}", moment - timedelta(seconds=20 * n)) for n in range(600)
    ]
    (find,) = await first_page_of_20(store, log, docs)
    assert log.names() == ["find:conversation_counts", "find:conversations"]
    (held,) = await rows_held(store, [find])
    # 21: the page and one more (is there a next page), plus the slack of a small page
    assert 21 <= held <= 2 * (21 + WINDOW_SLACK), held
    assert "sort" not in find  # a window sized from what was seen is read whole


async def test_a_first_window_after_a_quiet_stretch_holds_what_the_page_needs(
    logged: tuple[Store, CommandLog],
) -> None:
    """The first window of a page read after two quiet hours (the night before the day's
    first calls) reaches past them to the rows below, sized for what the page needs: the
    quiet stretch is set apart from the density (``RecentDensity``). The rows end where an
    hour ends: within its newest busy hour the estimate takes the rows to lie at the hour's
    start, at the density seen, so a busy hour that ends early is read more widely."""
    store, log = logged
    moment = to_db_precision(now())
    last = floor_to(moment, timedelta(hours=1)) - timedelta(hours=2, seconds=10)
    docs = [
        conversation_doc(store, f"c{n:03d}", last - timedelta(seconds=20 * n)) for n in range(400)
    ]
    finds = await first_page_of_20(store, log, docs)
    assert len(finds) == 1, finds  # not an empty window first
    held = await rows_held(store, finds)
    assert sum(held) <= 2 * (21 + WINDOW_SLACK), held


async def test_a_short_window_sizes_the_next_from_the_stretch_its_rows_came_from(
    logged: tuple[Store, CommandLog],
) -> None:
    """A page whose window starts with a quiet stretch (a break between the rows of the page
    before and the older ones) finds a few rows at its bottom: the next window is sized from
    the stretch they came from, not from the whole width (which made them look sparse and the
    next window hold several times the rows wanted)."""
    store, log = logged
    moment = to_db_precision(now())
    recent = [moment - timedelta(seconds=20 * n) for n in range(1, 21)]
    older = [moment - timedelta(minutes=22, seconds=20 * n) for n in range(400)]
    docs = [conversation_doc(store, f"c{n:03d}", t) for n, t in enumerate(recent + older)]
    await store.conversations.insert_many(docs)
    ordered = sorted(docs, key=lambda d: (d["startedAt"], d["_id"]), reverse=True)
    first = page_request(CONVERSATIONS_CURSOR, None, conversation_filter(), 20, None, maximum=1000)
    page = await conversation_page(store, ORG, first)
    assert page.end_cursor is not None
    after = decode_position(CONVERSATIONS_CURSOR, page.end_cursor)
    log.clear()
    second = await conversation_page(store, ORG, dataclasses.replace(first, after=after))
    assert [d["cid"] for d in second.docs] == [d["cid"] for d in ordered[20:40]]
    finds = [e.command for e in log.events if e.command["find"] == "conversations"]
    assert len(finds) >= 2, "the first window was not short: the test shows nothing"
    assert all("sort" not in f for f in finds), "a window overflowed and was read sorted"
    held = await rows_held(store, finds)
    assert sum(held) <= 2 * (21 + WINDOW_SLACK), held
