"""Conversations, the identifiers seen on them, and the result of recording an interaction."""

from __future__ import annotations

from typing import Any

import strawberry

from resolvers import interactions
from resolvers.principal import Permission
from resolvers.store import Doc
from schema.contact import Contact, PageInfo
from schema.context import Info
from schema.enums import Channel, Direction, IdentifierType
from schema.scalars import DateTime


@strawberry.type
class IdentifierValue:
    type: IdentifierType
    value: str


@strawberry.type
class Conversation:
    id: strawberry.ID
    channel: Channel
    direction: Direction
    started_at: DateTime
    ended_at: DateTime | None
    duration_seconds: float | None
    queue: str | None
    agent: str | None
    wrap_up_code: str | None
    status: str | None
    notes: str | None
    identifiers: list[IdentifierValue]
    external_contact_id: strawberry.ID | None
    doc: strawberry.Private[Doc]

    @classmethod
    def from_doc(cls, doc: Doc) -> Conversation:
        linked = doc.get("externalContactId")
        return cls(
            id=strawberry.ID(doc["cid"]),
            channel=Channel(doc["channel"]),
            direction=Direction(doc["direction"]),
            started_at=doc["startedAt"],
            ended_at=doc.get("endedAt"),
            duration_seconds=doc.get("durationSeconds"),
            queue=doc.get("queue"),
            agent=doc.get("agent"),
            wrap_up_code=doc.get("wrapUpCode"),
            status=doc.get("status"),
            notes=doc.get("notes"),
            identifiers=[
                IdentifierValue(type=IdentifierType(i["type"]), value=i["value"])
                for i in doc.get("identifiers") or []
            ],
            external_contact_id=strawberry.ID(linked) if linked else None,
            doc=doc,
        )

    @strawberry.field(description="Exactly the contact it is linked to (may be an ancestor).")
    async def contact(self, info: Info) -> Contact | None:
        linked = self.doc.get("externalContactId")
        if not linked:
            return None
        info.context.require(Permission.CONTACT_VIEW)
        doc = await info.context.loaders.contact.load(linked)
        return Contact.from_doc(doc) if doc is not None else None

    @strawberry.field(
        description="The canonical contact of the linked contact's merge set: "
        "the grouping key for analytics."
    )
    async def individual(self, info: Info) -> Contact | None:
        linked = self.doc.get("externalContactId")
        if not linked:
            return None
        info.context.require(Permission.CONTACT_VIEW)
        loader = info.context.loaders.contact
        doc = await loader.load(linked)
        if doc is None:
            return None
        if doc["canonicalId"] != doc["_id"]:
            doc = await loader.load(doc["canonicalId"])
        return Contact.from_doc(doc) if doc is not None else None


@strawberry.type
class ConversationEdge:
    cursor: str
    node: Conversation


@strawberry.type
class ConversationConnection:
    edges: list[ConversationEdge]
    page_info: PageInfo
    count_filter: strawberry.Private[dict[str, Any]]

    @strawberry.field
    async def total_count(self, info: Info) -> int:
        return await info.context.store.conversations.count_documents(self.count_filter)


@strawberry.type
class Resolution:
    conversation: Conversation
    contact: Contact | None = strawberry.field(
        description="Null for channels that are not resolved automatically."
    )
    created: bool = strawberry.field(
        description="True when this interaction auto-created the contact."
    )
    result: strawberry.Private[interactions.Resolution]

    @strawberry.field(
        description="Other live canonical contacts that list or claim one of the "
        "interaction's identifiers, oldest first."
    )
    async def other_matches(self, info: Info) -> list[Contact]:
        ctx = info.context
        resolved = self.result.contact
        docs = await interactions.other_matches(
            ctx.store,
            ctx.org,
            self.result.keys,
            resolved["_id"] if resolved is not None else None,
            self.result.curated_only,
        )
        return [Contact.from_doc(d) for d in docs]

    @classmethod
    def from_result(cls, result: interactions.Resolution) -> Resolution:
        return cls(
            conversation=Conversation.from_doc(result.conversation),
            contact=Contact.from_doc(result.contact) if result.contact is not None else None,
            created=result.created,
            result=result,
        )
