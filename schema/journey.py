"""Journeys: every conversation of a merge set, newest first, and the connection builder."""

from __future__ import annotations

from collections.abc import Sequence
from functools import partial
from typing import TypeVar

import strawberry

from resolvers import journeys
from resolvers.documents import ContactDoc
from resolvers.loaders import LinkedContact
from resolvers.principal import Permission
from schema.contact import Contact
from schema.context import Info
from schema.conversation import (
    LINKED_FIELDS,
    Conversation,
    ConversationConnection,
    linked_fields,
    node_fields,
    node_projection,
)
from schema.enums import Channel
from schema.pagination import Connection
from schema.scalars import DateTime
from schema.web import WebJourney

T = TypeVar("T")


def given(value: T | None) -> T | None:
    """An optional argument's value; omitted (UNSET) counts as null."""
    return None if value is strawberry.UNSET else value


async def page_connection(
    info: Info, page: journeys.ConversationPage, selected: Sequence[str], *, after_given: bool
) -> ConversationConnection:
    """The connection of a page; when its rows show ``contact`` or ``individual``, their
    links are fetched here, once for the page, so the rows resolve them without awaiting."""
    links: dict[str, LinkedContact | None] | None = None
    if LINKED_FIELDS.intersection(selected) and info.context.principal.can(Permission.CONTACT_VIEW):
        linked = list(dict.fromkeys(journeys.linked_ids(page.docs)))
        if linked:
            links = dict(zip(linked, await _page_links(info, linked), strict=True))
    return Connection.of(page, partial(Conversation.from_doc, links=links), after_given=after_given)


# Contact fields whose resolvers read the contact's merge set: a page selecting one fetches
# the sets with its links (one command primes them all), any other page leaves them out
SET_FIELDS = frozenset({"mergeSet", "notes", "journey"})


async def _page_links(info: Info, ids: list[str]) -> list[LinkedContact | None]:
    loaders = info.context.loaders
    if SET_FIELDS.intersection(linked_fields(info)):
        return list(await loaders.links.load_many(ids))
    return list(await loaders.linked.load_many(ids))


@strawberry.type(description="Every conversation linked to any member of a merge set.")
class Journey(WebJourney):  # webSessionCount, webSessions, timeline: schema/web.py
    id: strawberry.ID = strawberry.field(
        description="The canonical contact's id: a merge set has one journey, so client caches "
        "can normalise it."
    )
    contact: Contact = strawberry.field(description="The canonical contact.")
    contact_ids: list[strawberry.ID] = strawberry.field(
        description="Every contact id whose conversations are included (the merge set)."
    )
    head: strawberry.Private[journeys.JourneyHead]

    @classmethod
    def from_head(cls, head: journeys.JourneyHead) -> Journey:
        return cls(
            id=strawberry.ID(head.canonical["_id"]),
            contact=Contact.from_doc(head.canonical),
            contact_ids=[strawberry.ID(i) for i in head.member_ids],
            head=head,
        )

    async def _summary(self, info: Info) -> journeys.JourneySummary:
        return await info.context.loaders.journey_summary(self.head.member_ids)

    @strawberry.field
    async def conversation_count(self, info: Info) -> int:
        return (await self._summary(info)).count

    @strawberry.field
    async def first_seen_at(self, info: Info) -> DateTime | None:
        moment = (await self._summary(info)).first_seen_at
        return DateTime(moment) if moment is not None else None

    @strawberry.field
    async def last_seen_at(self, info: Info) -> DateTime | None:
        moment = (await self._summary(info)).last_seen_at
        return DateTime(moment) if moment is not None else None

    @strawberry.field
    async def channels(self, info: Info) -> list[Channel]:
        return [Channel(c) for c in (await self._summary(info)).channels]

    @strawberry.field(description="Newest first; first <= 1000.")
    async def conversations(
        self,
        info: Info,
        first: int | None = 50,
        after: str | None = strawberry.UNSET,
        since: DateTime | None = strawberry.UNSET,
        until: DateTime | None = strawberry.UNSET,
        channels: list[Channel] | None = strawberry.UNSET,
    ) -> ConversationConnection:
        selected = node_fields(info)
        request = journeys.page_request(
            journeys.JOURNEY_CURSOR,
            self.head.member_ids,
            journeys.conversation_filter(given(since), given(until), given(channels)),
            50 if first is None else first,
            given(after),
            maximum=journeys.JOURNEY_MAX_FIRST,
            fields=node_projection(selected),
        )
        page = await info.context.loaders.journey_page(request)
        return await page_connection(info, page, selected, after_given=request.after is not None)


async def journey_of(info: Info, contact: ContactDoc) -> Journey | None:
    """The journey of a contact's merge set (an ancestor's is its canonical's)."""
    link = await info.context.loaders.links.load(contact.get("canonicalId") or contact["_id"])
    head = journeys.journey_head(link)
    return Journey.from_head(head) if head is not None else None
