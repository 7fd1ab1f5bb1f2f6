"""Subscriptions over WebSocket (graphql-transport-ws)."""

from __future__ import annotations

from collections.abc import AsyncGenerator

import strawberry

from resolvers.contacts import get_canonical
from resolvers.errors import NotFound
from resolvers.journey_updates import journey_updates
from schema.changes import CHANGES_STREAM_PERMISSIONS, Change, change_stream
from schema.context import Info
from schema.conversation import Conversation
from schema.enums import ChangeKind
from schema.permissions import CanViewSessions, stream_permissions


@strawberry.type
class Subscription:
    @strawberry.subscription(
        extensions=[stream_permissions(CanViewSessions)],
        description="Each conversation recorded into, or linked to, the contact's merge set, "
        "as it happens. Needs externalContacts:session:view.",
    )
    async def journey_updates(
        self, info: Info, contact_id: strawberry.ID
    ) -> AsyncGenerator[Conversation, None]:
        ctx = info.context
        if await get_canonical(ctx.store, ctx.org, str(contact_id)) is None:
            raise NotFound(f"no contact with id {contact_id}")
        async for doc in journey_updates(ctx.store, ctx.org, str(contact_id)):
            yield Conversation.from_doc(doc)

    @strawberry.subscription(extensions=[CHANGES_STREAM_PERMISSIONS])
    async def changes(
        self, info: Info, kinds: list[ChangeKind] | None = None
    ) -> AsyncGenerator[Change, None]:
        async for change in change_stream(info, kinds):
            yield change
