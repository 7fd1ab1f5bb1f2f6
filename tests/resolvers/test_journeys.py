"""Journeys and BI pages in the domain: merge-set expansion, keyset pages, windows, summaries.

The documents are built by ``tests/factories.py``, exactly as the resolvers write them.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from bench.command_log import CommandLog
from resolvers import journeys, loaders
from resolvers.clock import now, to_db_precision
from resolvers.contact_fields import ContactType
from resolvers.errors import BadUserInput
from resolvers.journeys import (
    CONVERSATIONS_CURSOR,
    JOURNEY_CURSOR,
    ConversationFilter,
    PageRequest,
    conversation_filter,
    conversation_page,
    page_request,
)
from resolvers.store import Store
from tests.factories import (
    ORG,
    add_contact,
    add_merge_set,
    conversation_doc,
)

# --- fixtures ---------------------------------------------------------------------------------


def members_request(
    members: list[str], first: int, after: str | None = None, **filters: Any
) -> PageRequest:
    return page_request(
        JOURNEY_CURSOR, members, conversation_filter(**filters), first, after, maximum=1000
    )


async def all_pages(store: Store, request: PageRequest) -> list[list[str]]:
    pages: list[list[str]] = []
    while True:
        page = await conversation_page(store, ORG, request)
        pages.append([d["cid"] for d in page.docs])
        if not page.has_next:
            return pages
        assert page.end_cursor is not None
        position = journeys.decode_position(request.kind, page.end_cursor)
        request = PageRequest(
            request.kind, request.members, request.filter, request.first, position
        )


# --- contact links and merge-set expansion ----------------------------------------------------


async def test_a_link_names_the_contact_its_canonical_and_merge_set(store: Store) -> None:
    canonical, members = await add_merge_set(store, size=4)
    loner = await add_contact(store)
    ancestor = members[0]
    link_of_ancestor, link_of_loner, unknown = await loaders.contact_links(
        store, ORG, [ancestor["_id"], loner["_id"], "no-such-id"]
    )
    assert link_of_ancestor is not None and link_of_ancestor.canonical is not None
    assert link_of_ancestor.contact["_id"] == ancestor["_id"]
    assert link_of_ancestor.canonical["_id"] == canonical["_id"]
    assert link_of_ancestor.member_ids == [m["_id"] for m in members]
    assert link_of_loner is not None and link_of_loner.canonical is not None
    assert link_of_loner.canonical["_id"] == loner["_id"]
    assert link_of_loner.merge_set is None and link_of_loner.member_ids == [loner["_id"]]
    assert unknown is None


async def test_links_ignore_other_orgs_and_expired_contacts(store: Store) -> None:
    foreign = await add_contact(store, "other-org")
    expired = await add_contact(
        store, kind=ContactType.EPHEMERAL, expires_at=now() - timedelta(seconds=1)
    )
    assert await loaders.contact_links(store, ORG, [foreign["_id"], expired["_id"]]) == [None, None]
    assert await loaders.contact_links(store, ORG, []) == []


async def journey_head_of(store: Store, org: str, contact_id: str) -> journeys.JourneyHead | None:
    """What Contact.journey does, with the links loader's batch function."""
    (link,) = await loaders.contact_links(store, org, [contact_id])
    return journeys.journey_head(link)


async def expanded_ids(store: Store, contact_ids: list[str]) -> tuple[str, ...]:
    """What Query.conversations(contactIds:) does, with the links loader's batch function."""
    ids = journeys.check_contact_ids(contact_ids)
    return journeys.expand_links(await loaders.contact_links(store, ORG, ids))


async def test_a_journey_is_the_merge_set_of_any_member(store: Store) -> None:
    canonical, members = await add_merge_set(store, size=3)
    for member in members:
        head = await journey_head_of(store, ORG, member["_id"])
        assert head is not None
        assert head.canonical["_id"] == canonical["_id"]
        assert head.member_ids == tuple(m["_id"] for m in members)
    loner = await add_contact(store)
    head = await journey_head_of(store, ORG, loner["_id"])
    assert head is not None and head.member_ids == (loner["_id"],)
    assert await journey_head_of(store, ORG, "unknown") is None
    assert await journey_head_of(store, "other-org", loner["_id"]) is None


async def test_contact_ids_expand_to_whole_merge_sets_and_unknown_ones_are_ignored(
    store: Store,
) -> None:
    _, members = await add_merge_set(store, size=3)
    loner = await add_contact(store)
    expanded = await expanded_ids(
        store, [members[1]["_id"], "unknown", loner["_id"], members[0]["_id"]]
    )
    assert expanded == (*(m["_id"] for m in members), loner["_id"])
    assert await expanded_ids(store, ["unknown"]) == ()
    with pytest.raises(BadUserInput):
        await expanded_ids(store, ["x"] * (journeys.MAX_CONTACT_IDS + 1))


# --- pages of a merge set ---------------------------------------------------------------------


async def test_journey_pages_are_newest_first_and_cover_every_conversation_once(
    store: Store,
) -> None:
    _, members = await add_merge_set(store, size=3)
    ids = [m["_id"] for m in members]
    t0 = now() - timedelta(days=3)
    docs = [
        conversation_doc(store, f"c{n:02d}", t0 + timedelta(minutes=n), ids[n % 3])
        for n in range(11)
    ]
    docs.append(conversation_doc(store, "elsewhere", t0, (await add_contact(store))["_id"]))
    await store.conversations.insert_many(docs)
    pages = await all_pages(store, members_request(ids, 4))
    assert pages == [
        ["c10", "c09", "c08", "c07"],
        ["c06", "c05", "c04", "c03"],
        ["c02", "c01", "c00"],
    ]


async def test_pages_stay_stable_while_new_conversations_arrive(store: Store) -> None:
    contact = await add_contact(store)
    t0 = now() - timedelta(hours=5)
    await store.conversations.insert_many(
        [
            conversation_doc(store, f"old{n}", t0 + timedelta(minutes=n), contact["_id"])
            for n in range(6)
        ]
    )
    first = await conversation_page(store, ORG, members_request([contact["_id"]], 3))
    assert [d["cid"] for d in first.docs] == ["old5", "old4", "old3"]
    # newer ones, and one at the very instant of the cursor's row (it sorts before it)
    await store.conversations.insert_many(
        [
            conversation_doc(store, "new1", now(), contact["_id"]),
            conversation_doc(
                store, "same-instant", t0 + timedelta(minutes=3), contact["_id"], doc_id="~" * 24
            ),
        ]
    )
    second = await conversation_page(
        store, ORG, members_request([contact["_id"]], 3, first.end_cursor)
    )
    assert [d["cid"] for d in second.docs] == ["old2", "old1", "old0"]
    assert second.has_next is False


async def test_a_crowd_at_one_instant_is_paged_without_gaps_or_repeats(store: Store) -> None:
    contact = await add_contact(store)
    moment = now() - timedelta(hours=1)
    docs = [conversation_doc(store, f"t{n:02d}", moment, contact["_id"]) for n in range(9)]
    docs += [conversation_doc(store, "before", moment - timedelta(seconds=1), contact["_id"])]
    await store.conversations.insert_many(docs)
    by_id = sorted(docs[:9], key=lambda d: d["_id"], reverse=True)
    pages = await all_pages(store, members_request([contact["_id"]], 2))
    assert [cid for page in pages for cid in page] == [d["cid"] for d in by_id] + ["before"]
    assert max(len(p) for p in pages) == 2


async def test_expired_conversations_are_never_returned(store: Store) -> None:
    contact = await add_contact(store)
    moment = now()
    await store.conversations.insert_many(
        [
            conversation_doc(store, "live", moment - timedelta(days=1), contact["_id"]),
            conversation_doc(
                store,
                "expired",
                moment - timedelta(days=1),
                contact["_id"],
                expires_at=moment - timedelta(seconds=1),
            ),
            conversation_doc(store, "too-old", moment - timedelta(days=61), contact["_id"]),
        ]
    )
    page = await conversation_page(store, ORG, members_request([contact["_id"]], 10))
    assert [d["cid"] for d in page.docs] == ["live"]
    (summary,) = await journeys.journey_summaries(store, ORG, [(contact["_id"],)])
    assert summary.count == 1
    org_page = await conversation_page(
        store,
        ORG,
        page_request(CONVERSATIONS_CURSOR, None, ConversationFilter(), 10, None, maximum=1000),
    )
    assert [d["cid"] for d in org_page.docs] == ["live"]


async def test_since_is_inclusive_until_exclusive_and_channels_filter(store: Store) -> None:
    contact = await add_contact(store)
    t0 = to_db_precision(now() - timedelta(days=2))
    await store.conversations.insert_many(
        [
            conversation_doc(store, "a", t0, contact["_id"]),
            conversation_doc(store, "b", t0 + timedelta(hours=1), contact["_id"], channel="SMS"),
            conversation_doc(store, "c", t0 + timedelta(hours=2), contact["_id"]),
        ]
    )
    ids = [contact["_id"]]
    window = members_request(ids, 10, since=t0, until=t0 + timedelta(hours=2))
    assert [d["cid"] for d in (await conversation_page(store, ORG, window)).docs] == ["b", "a"]
    voice = members_request(ids, 10, channels=["VOICE"])
    assert [d["cid"] for d in (await conversation_page(store, ORG, voice)).docs] == ["c", "a"]
    empty = members_request(ids, 10, since=t0, until=t0)
    assert (await conversation_page(store, ORG, empty)).docs == []


@pytest.mark.parametrize(
    ("first", "after", "filters"),
    [
        (0, None, {}),
        (1001, None, {}),
        (10, "not-a-cursor", {}),
        (10, "W10", {}),
        (10, None, {"since": now(), "until": now() - timedelta(seconds=1)}),
        (10, None, {"channels": ["TELEX"]}),
    ],
)
def test_bad_input_is_refused(first: int, after: str | None, filters: dict[str, Any]) -> None:
    with pytest.raises(BadUserInput):
        members_request(["x"], first, after, **filters)


def test_a_cursor_of_another_list_is_refused() -> None:
    position = journeys.Position(now(), "abc")
    journey_cursor = journeys.encode_position(JOURNEY_CURSOR, position)
    assert journeys.decode_position(JOURNEY_CURSOR, journey_cursor) == position
    with pytest.raises(BadUserInput):
        journeys.decode_position(CONVERSATIONS_CURSOR, journey_cursor)


# --- the whole org, in time windows -----------------------------------------------------------


async def test_org_pages_read_time_windows_and_cover_everything_once(
    logged: tuple[Store, CommandLog],
) -> None:
    store, log = logged
    contact = await add_contact(store)
    moment = now()
    # dense lately, sparse long ago, and one from the future (clock skew)
    times = [moment - timedelta(minutes=7 * n) for n in range(40)]
    times += [moment - timedelta(days=d) for d in range(3, 50, 4)]
    times.append(moment + timedelta(minutes=5))
    docs = [conversation_doc(store, f"c{n:03d}", t, contact["_id"]) for n, t in enumerate(times)]
    docs.append(conversation_doc(store, "foreign", moment, org="other-org"))
    await store.conversations.insert_many(docs)
    expected = [d["cid"] for d in sorted(docs[:-1], key=lambda d: d["startedAt"], reverse=True)]

    request = page_request(CONVERSATIONS_CURSOR, None, ConversationFilter(), 10, None, maximum=1000)
    log.clear()
    pages = await all_pages(store, request)
    assert [cid for page in pages for cid in page] == expected
    assert [len(p) for p in pages] == [10, 10, 10, 10, 10, 3]
    density, *finds = log.names()
    assert density == "find:conversation_counts"  # the first page's window is sized from it
    assert all(name == "find:conversations" for name in finds), finds
    assert len(finds) <= 4 * len(pages)  # windows grow fast; usually one per page


async def test_org_pages_respect_since_until_and_channels(store: Store) -> None:
    moment = to_db_precision(now())
    docs = [
        conversation_doc(
            store, f"c{n}", moment - timedelta(hours=n), channel="SMS" if n % 2 else "VOICE"
        )
        for n in range(10)
    ]
    await store.conversations.insert_many(docs)
    filters = conversation_filter(
        since=moment - timedelta(hours=7), until=moment - timedelta(minutes=30), channels=["SMS"]
    )
    request = page_request(CONVERSATIONS_CURSOR, None, filters, 2, None, maximum=1000)
    assert await all_pages(store, request) == [["c1", "c3"], ["c5", "c7"]]


# --- batching -------------------------------------------------------------------------------


async def test_pages_of_several_merge_sets_are_read_with_one_query(
    logged: tuple[Store, CommandLog],
) -> None:
    store, log = logged
    _, set_a = await add_merge_set(store, size=3)
    _, set_b = await add_merge_set(store, size=2)
    t0 = now() - timedelta(days=1)
    docs = [
        conversation_doc(store, f"a{n}", t0 + timedelta(minutes=n), set_a[n % 3]["_id"])
        for n in range(5)
    ] + [
        conversation_doc(store, f"b{n}", t0 + timedelta(minutes=n), set_b[n % 2]["_id"])
        for n in range(4)
    ]
    await store.conversations.insert_many(docs)
    request_a = members_request([m["_id"] for m in set_a], 3)
    request_b = members_request([m["_id"] for m in set_b], 10, channels=["VOICE"])
    log.clear()
    page_a, page_b = await journeys.conversation_pages(store, ORG, [request_a, request_b])
    assert log.names() == ["find:conversations"]
    assert [d["cid"] for d in page_a.docs] == ["a4", "a3", "a2"] and page_a.has_next
    assert [d["cid"] for d in page_b.docs] == ["b3", "b2", "b1", "b0"] and not page_b.has_next
    alone = await conversation_page(store, ORG, request_a)
    assert alone.docs == page_a.docs and alone.cursors == page_a.cursors


async def test_summaries_count_first_last_and_channels_per_merge_set(
    logged: tuple[Store, CommandLog],
) -> None:
    store, log = logged
    _, members = await add_merge_set(store, size=3)
    loner = await add_contact(store)
    t0 = to_db_precision(now() - timedelta(days=5))
    await store.conversations.insert_many(
        [
            conversation_doc(store, "x1", t0, members[0]["_id"], channel="EMAIL"),
            conversation_doc(store, "x2", t0 + timedelta(days=1), members[2]["_id"]),
            conversation_doc(store, "x3", t0 + timedelta(days=2), members[1]["_id"]),
        ]
    )
    log.clear()
    summary, empty = await journeys.journey_summaries(
        store, ORG, [tuple(m["_id"] for m in members), (loner["_id"],)]
    )
    assert log.names() == ["aggregate:conversations"]
    assert summary.count == 3
    assert summary.first_seen_at == t0 and summary.last_seen_at == t0 + timedelta(days=2)
    assert summary.channels == ("VOICE", "EMAIL")
    assert empty == journeys.JourneySummary()
