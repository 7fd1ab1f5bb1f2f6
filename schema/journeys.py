"""Root operations of journeys and BI pulls: journey, conversations."""

from __future__ import annotations

import dataclasses

import strawberry

from resolvers import journeys
from schema.context import Info
from schema.conversation import ConversationConnection, node_fields, node_projection
from schema.enums import Channel
from schema.journey import Journey, given, page_connection
from schema.permissions import CanViewAllConversations, CanViewSessions
from schema.scalars import DateTime


@strawberry.type
class JourneyQuery:
    @strawberry.field(
        permission_classes=[CanViewSessions],
        description="The journey of any contact id (an ancestor's is its merge set's); "
        "null for an unknown id. Needs externalContacts:session:view.",
    )
    async def journey(self, info: Info, contact_id: strawberry.ID) -> Journey | None:
        ctx = info.context
        head = journeys.journey_head(await ctx.loaders.links.load(str(contact_id)))
        return Journey.from_head(head) if head is not None else None

    @strawberry.field(
        permission_classes=[CanViewAllConversations],
        description="The BI pull, newest first: since inclusive, until exclusive, first <= "
        "1000; contactIds (at most 100, unknown ones ignored) expand to whole merge sets.",
    )
    async def conversations(
        self,
        info: Info,
        since: DateTime | None = strawberry.UNSET,
        until: DateTime | None = strawberry.UNSET,
        channels: list[Channel] | None = strawberry.UNSET,
        contact_ids: list[strawberry.ID] | None = strawberry.UNSET,
        first: int | None = 100,
        after: str | None = strawberry.UNSET,
    ) -> ConversationConnection:
        ctx = info.context
        selected = node_fields(info)
        request = journeys.page_request(
            journeys.CONVERSATIONS_CURSOR,
            None,
            journeys.conversation_filter(given(since), given(until), given(channels)),
            100 if first is None else first,
            given(after),
            maximum=journeys.CONVERSATIONS_MAX_FIRST,
            fields=node_projection(selected),
        )
        contact_ids = given(contact_ids)
        if contact_ids is not None:
            ids = journeys.check_contact_ids([str(i) for i in contact_ids])
            members = journeys.expand_links(await ctx.loaders.links.load_many(ids))
            request = dataclasses.replace(request, members=members)
        page = await journeys.conversation_page(ctx.store, ctx.org, request)
        return await page_connection(info, page, selected, after_given=request.after is not None)
