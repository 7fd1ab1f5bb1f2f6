"""Conversations, the identifiers seen on them, and the result of recording an interaction."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable, Iterator, Mapping
from typing import Any, cast

import strawberry
from strawberry.types.nodes import FragmentSpread, InlineFragment, SelectedField

from resolvers import interactions, journeys
from resolvers.documents import ConversationDoc
from resolvers.loaders import LinkedContact
from resolvers.principal import Permission
from schema.contact import Contact
from schema.context import Info
from schema.enums import Channel, Direction, IdentifierType
from schema.pagination import Connection
from schema.permissions import checked_in_code
from schema.scalars import DateTime, optional_datetime


@strawberry.type
class IdentifierValue:
    type: IdentifierType
    value: str


@strawberry.type
class Conversation:
    id: strawberry.ID
    # None only in a projected document whose selection does not read it (never serialised)
    channel: Channel | None = strawberry.field(graphql_type=Channel)
    direction: Direction | None = strawberry.field(graphql_type=Direction)
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
    doc: strawberry.Private[ConversationDoc]
    # a page's contact links, fetched once for all its rows when they are selected
    links: strawberry.Private[Mapping[str, LinkedContact | None] | None] = None

    @classmethod
    def from_doc(
        cls, doc: ConversationDoc, links: Mapping[str, LinkedContact | None] | None = None
    ) -> Conversation:
        """A view of a stored (possibly projected) document: a projection holds only the
        fields the selection reads, so an absent enum is never serialised."""
        linked = doc.get("externalContactId")
        channel = doc.get("channel")
        direction = doc.get("direction")
        return cls(
            id=strawberry.ID(doc["cid"]),
            channel=Channel(channel) if channel is not None else None,
            direction=Direction(direction) if direction is not None else None,
            started_at=DateTime(doc["startedAt"]),
            ended_at=optional_datetime(doc.get("endedAt")),
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
            links=links,
        )

    # ``contact`` and ``individual`` are sync resolvers: a row of a page whose links were
    # fetched up front resolves at once (no task per row); otherwise they hand graphql-core
    # the DataLoader's awaitable, which it awaits like an async resolver's result.

    @strawberry.field(
        description="Exactly the contact it is linked to (may be an ancestor).",
        metadata=checked_in_code(Permission.CONTACT_VIEW),
    )
    def contact(self, info: Info) -> Contact | None:
        linked = self.doc.get("externalContactId")
        if not linked:
            return None
        if self.links is None:  # a page fetches its links only for callers who may see them
            info.context.require(Permission.CONTACT_VIEW)
        return cast(Contact | None, self._resolve(info, linked, _exact_contact))

    @strawberry.field(
        description="The canonical contact of the linked contact's merge set: "
        "the grouping key for analytics.",
        metadata=checked_in_code(Permission.CONTACT_VIEW),
    )
    def individual(self, info: Info) -> Contact | None:
        linked = self.doc.get("externalContactId")
        if not linked:
            return None
        if self.links is None:
            info.context.require(Permission.CONTACT_VIEW)
        return cast(Contact | None, self._resolve(info, linked, _canonical_contact))

    def _resolve(
        self, info: Info, linked: str, pick: Callable[[LinkedContact | None], Contact | None]
    ) -> Any:
        if self.links is not None and linked in self.links:
            return pick(self.links[linked])
        return _later(info.context.loaders.links.load(linked), pick)


async def _later(
    link: Awaitable[LinkedContact | None], pick: Callable[[LinkedContact | None], Contact | None]
) -> Contact | None:
    return pick(await link)


def _exact_contact(link: LinkedContact | None) -> Contact | None:
    return Contact.from_doc(link.contact) if link is not None else None


def _canonical_contact(link: LinkedContact | None) -> Contact | None:
    if link is None or link.canonical is None:
        return None
    return Contact.from_doc(link.canonical)


ConversationConnection = Connection[Conversation]


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


def _fields(
    selections: Iterable[SelectedField | FragmentSpread | InlineFragment],
) -> Iterator[SelectedField]:
    for selection in selections:
        if isinstance(selection, SelectedField):
            yield selection
        else:  # fragments: their fields count as selected
            yield from _fields(selection.selections)


def selected_names(info: Info) -> set[str]:
    """The names selected directly under the current field (fragments included)."""
    return {f.name for field in info.selected_fields for f in _fields(field.selections)}


def node_fields(info: Info) -> list[str]:
    """The names selected under a connection field's ``edges { node { … } }``."""
    return [f.name for f in _node_parts(info)]


# the node fields showing a conversation's linked contact (resolved from the page's links)
LINKED_FIELDS = frozenset({"contact", "individual"})


def linked_fields(info: Info) -> set[str]:
    """The names selected under the nodes' :data:`LINKED_FIELDS`."""
    return {
        f.name
        for part in _node_parts(info)
        if part.name in LINKED_FIELDS
        for f in _fields(part.selections)
    }


def _node_parts(info: Info) -> Iterator[SelectedField]:
    for connection in info.selected_fields:
        for part in _fields(connection.selections):
            if part.name != "edges":
                continue
            for edge_part in _fields(part.selections):
                if edge_part.name == "node":
                    yield from _fields(edge_part.selections)


# The document fields each GraphQL field of Conversation reads (selections drive projections).
FIELD_SOURCES: dict[str, tuple[str, ...]] = {
    "__typename": (),
    "id": ("cid",),
    "channel": ("channel",),
    "direction": ("direction",),
    "startedAt": ("startedAt",),
    "endedAt": ("endedAt",),
    "durationSeconds": ("durationSeconds",),
    "queue": ("queue",),
    "agent": ("agent",),
    "wrapUpCode": ("wrapUpCode",),
    "status": ("status",),
    "notes": ("notes",),
    "identifiers": ("identifiers",),
    "externalContactId": ("externalContactId",),
    "contact": ("externalContactId",),
    "individual": ("externalContactId",),
}


def node_projection(selected: Iterable[str]) -> tuple[str, ...] | None:
    """The document fields a selection of Conversation fields reads; None means everything."""
    needed: set[str] = set()
    for name in selected:
        sources = FIELD_SOURCES.get(name)
        if sources is None:
            return None  # a field this module does not know: fetch the whole document
        needed.update(sources)
    return journeys.projection_for(needed)
