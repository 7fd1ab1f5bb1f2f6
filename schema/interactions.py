"""Root operations of interactions: conversation, recordInteraction, link/unlink."""

from __future__ import annotations

import strawberry

from resolvers import conversations, interactions, matching_writes
from resolvers.principal import Permission
from schema.context import Info
from schema.conversation import Conversation, Resolution, selected_names
from schema.enums import Channel, Direction
from schema.inputs import ContactInput, IdentifierInput, to_patch
from schema.permissions import (
    CanAssociateConversations,
    CanIngestConversations,
    CanViewAllConversations,
    checked_in_code,
)
from schema.scalars import DateTime


@strawberry.input
class InteractionInput:
    conversation_id: strawberry.ID
    channel: Channel
    started_at: DateTime
    direction: Direction | None = Direction.INBOUND
    ended_at: DateTime | None = strawberry.UNSET
    identifiers: list[IdentifierInput] = strawberry.field(default_factory=list)
    provided: ContactInput | None = strawberry.UNSET
    queue: str | None = strawberry.UNSET
    agent: str | None = strawberry.UNSET
    wrap_up_code: str | None = strawberry.UNSET
    status: str | None = strawberry.UNSET
    notes: str | None = strawberry.UNSET


@strawberry.type
class InteractionQuery:
    @strawberry.field(permission_classes=[CanViewAllConversations])
    async def conversation(self, info: Info, id: strawberry.ID) -> Conversation | None:
        ctx = info.context
        doc = await conversations.get_conversation(ctx.store, ctx.org, str(id))
        return Conversation.from_doc(doc) if doc is not None else None


@strawberry.type
class InteractionMutation:
    @strawberry.mutation(
        description="Store a conversation and resolve it to a contact.",
        permission_classes=[CanIngestConversations],
        metadata=checked_in_code(Permission.CONTACT_VIEW),  # when otherMatches is selected
    )
    async def record_interaction(self, info: Info, input: InteractionInput) -> Resolution:
        ctx = info.context
        if "otherMatches" in selected_names(info):
            # the suggestions are other people's contacts: checked before anything is written
            ctx.require(Permission.CONTACT_VIEW)
        raw = to_patch(input)  # fields the caller gave, in GraphQL names
        raw["conversationId"] = str(input.conversation_id)
        raw["identifiers"] = [{"type": i.type, "value": i.value} for i in input.identifiers]
        result = await interactions.record_interaction(ctx.store, ctx.principal, raw)
        if result.evidence_changed and result.contact is not None:
            result.contact = await matching_writes.after_interaction(
                ctx.store,
                ctx.principal,
                result.contact,
                created=result.created,
                keys=result.keys,
                settings=result.identity,
            )
        return Resolution.from_result(result)

    @strawberry.mutation(
        description="Link to exactly the contact given (ancestors included).",
        permission_classes=[CanAssociateConversations],
    )
    async def link_conversation(
        self, info: Info, conversation_id: strawberry.ID, contact_id: strawberry.ID
    ) -> Conversation:
        ctx = info.context
        doc = await conversations.link_conversation(
            ctx.store, ctx.principal, str(conversation_id), str(contact_id)
        )
        return Conversation.from_doc(doc)

    @strawberry.mutation(permission_classes=[CanAssociateConversations])
    async def unlink_conversation(self, info: Info, conversation_id: strawberry.ID) -> Conversation:
        ctx = info.context
        doc = await conversations.unlink_conversation(
            ctx.store, ctx.principal, str(conversation_id)
        )
        return Conversation.from_doc(doc)
