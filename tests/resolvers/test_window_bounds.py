"""A whole-org page read in several time windows keeps the rows of a window's boundary.

A window's lower bound (``anchor - width``) can fall inside a millisecond; the next window's
exclusive upper bound is that value, and the server compares at its stored millisecond
precision. A row in that millisecond was dropped by both windows until the bounds were
taken at the database's precision.
"""

from __future__ import annotations

from datetime import timedelta

from resolvers.clock import now
from resolvers.conversation_counts import RecentDensity
from resolvers.journeys import (
    CONVERSATIONS_CURSOR,
    ConversationFilter,
    PageRequest,
    conversation_page,
)
from resolvers.store import Store
from tests.factories import ORG, conversation_doc


async def test_a_row_in_the_millisecond_of_a_window_bound_is_kept(store: Store) -> None:
    moment = now() - timedelta(minutes=1)
    # first=9: a first window of 100.0001 ms x (10 rows + WINDOW_SLACK 30) = 4.000004 s
    # (spacing from a cursor has fractions of a millisecond), so its lower bound falls 4 us
    # into the millisecond 4,001 ms before the moment: the row there belongs to the second
    edge = conversation_doc(store, "edge", moment - timedelta(milliseconds=4001))
    older = [
        conversation_doc(store, f"older-{n}", moment - timedelta(seconds=10 * n))
        for n in range(1, 4)
    ]
    await store.conversations.insert_many([edge, *older])
    request = PageRequest(
        CONVERSATIONS_CURSOR,
        None,
        ConversationFilter(),
        9,
        None,
        None,
        density=RecentDensity(spacing_ms=100.0001),
    )
    page = await conversation_page(store, ORG, request, moment=moment)
    assert [d["cid"] for d in page.docs] == ["edge", "older-1", "older-2", "older-3"]
