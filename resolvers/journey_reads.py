"""A journey's summary and its page of conversations, read together when asked together.

The journey tab asks for both at once: ``conversationCount``/``firstSeenAt``/``lastSeenAt``/
``channels`` (the summary) and ``conversations(first: …)`` (a page) of one merge set. Read
apart, the embedded server reads every conversation of the set twice — once to group them,
once to sort them for the page — because it reads a whole index range before it applies a
limit. One aggregate with a ``$facet`` reads them once and answers both (the benchmark's
busiest set, 10 members and 590 conversations: summary 22.5 ms + page 30.0 ms apart,
36.1 ms together).

The batch function of the ``journey_reads`` DataLoader (``schema/context.py``): keys are
:class:`SummaryKey` and :class:`~resolvers.journeys.PageRequest`. A batch holding exactly one
set's summary and one page of that set (of at most ``FACET_MAX_FIRST`` rows, so the facet's
one result document stays below 16 MB) is one aggregate; anything else goes to
``journeys.journey_summaries`` and ``journeys.conversation_pages`` as before, which batch
many sets (search results with their journeys) into one command each.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from resolvers.clock import now
from resolvers.documents import ConversationDoc
from resolvers.journeys import (
    ONE_REPLY,
    SUMMARY_GROUP,
    ConversationPage,
    JourneySummary,
    PageRequest,
    conversation_pages,
    fetch_members,
    finish_page,
    is_after,
    journey_summaries,
    page_filter,
    page_total,
    summaries_of,
    summary_query,
    time_range,
)
from resolvers.store import Store, aggregate_rows

# rows of a page read with its summary: their one result document stays below 16 MB even
# for conversations of the largest size the API accepts (about 100 KB)
FACET_MAX_FIRST = 100
PAGE_SORT = {"startedAt": -1, "_id": -1}


@dataclass(frozen=True)
class SummaryKey:
    """The summary of a merge set's journey (its member ids)."""

    members: tuple[str, ...]


JourneyRead = SummaryKey | PageRequest
JourneyAnswer = JourneySummary | ConversationPage


async def journey_reads(store: Store, org: str, keys: Sequence[JourneyRead]) -> list[JourneyAnswer]:
    """Each key's summary or page: one set's summary and page in one aggregate, the rest
    batched by kind."""
    answers: dict[int, JourneyAnswer] = {}
    pair = _one_set_pair(keys)
    if pair is not None:
        at_summary, at_page = pair
        request = keys[at_page]
        assert isinstance(request, PageRequest)
        answers[at_summary], answers[at_page] = await summary_and_page(store, org, request)
    summaries = [(i, k) for i, k in enumerate(keys) if isinstance(k, SummaryKey)]
    summaries = [(i, k) for i, k in summaries if i not in answers]
    if summaries:
        found = await journey_summaries(store, org, [k.members for _, k in summaries])
        answers.update((i, s) for (i, _), s in zip(summaries, found, strict=True))
    pages = [(i, k) for i, k in enumerate(keys) if isinstance(k, PageRequest) and i not in answers]
    if pages:
        read = await conversation_pages(store, org, [k for _, k in pages])
        answers.update((i, p) for (i, _), p in zip(pages, read, strict=True))
    return [answers[i] for i in range(len(keys))]


def _one_set_pair(keys: Sequence[JourneyRead]) -> tuple[int, int] | None:
    """(summary index, page index) when the batch asks one merge set's summary and one page
    of it (no other set), small enough for a facet."""
    summaries = [i for i, k in enumerate(keys) if isinstance(k, SummaryKey)]
    pages = [i for i, k in enumerate(keys) if isinstance(k, PageRequest) and k.members is not None]
    if len(summaries) != 1 or len(pages) != 1:
        return None
    summary, page = keys[summaries[0]], keys[pages[0]]
    assert isinstance(summary, SummaryKey) and isinstance(page, PageRequest)
    if not summary.members or set(summary.members) != set(page.members or ()):
        return None
    if page.first > FACET_MAX_FIRST:
        return None
    return summaries[0], pages[0]


async def summary_and_page(
    store: Store, org: str, request: PageRequest
) -> tuple[JourneySummary, ConversationPage]:
    """A merge set's summary and a page of its conversations from one aggregate. Rows the
    page's checks drop beyond its limit (a tie group bigger than the cursor knew) are made up
    by reading the page again on its own."""
    assert request.members
    moment = now()
    members = request.members
    whole = summary_query(store, org, members, moment)
    span = time_range(store, request.filter, request.after, moment)
    page = page_filter(org, members, request.filter, span, moment)
    need = request.first + 1
    limit = need + (request.after.ties if request.after is not None else 0)
    pipeline: list[dict[str, Any]] = [
        {"$match": whole.index},
        {
            "$facet": {
                "summary": [{"$match": whole.residual}, SUMMARY_GROUP],
                "page": [{"$match": page.residual}, {"$sort": PAGE_SORT}, {"$limit": limit}],
            }
        },
    ]
    (faceted,) = await aggregate_rows(store.conversations, pipeline, batchSize=ONE_REPLY)
    (summary,) = summaries_of(faceted["summary"], [members])
    found: list[ConversationDoc] = faceted["page"]
    rows = [d for d in found if page.keep(d) and is_after(d, request.after)]
    if len(rows) < need and len(found) >= limit:
        rows = await fetch_members(store, org, request, moment, need)
    return summary, finish_page(request, rows[:need], page_total(store, org, request, moment))
