"""Merge sets and their history."""

from __future__ import annotations

from enum import StrEnum

import strawberry

from resolvers.documents import MergeEntryDoc, MergeEventDoc, MergeSetDoc
from schema.contact import Contact
from schema.context import Info
from schema.match_reason import MatchReason
from schema.permissions import CanViewContacts
from schema.scalars import DateTime


@strawberry.enum
class MergeEventKind(StrEnum):
    MERGE = "MERGE"
    UNMERGE = "UNMERGE"


@strawberry.type
class MergeEvent:
    kind: MergeEventKind
    at: DateTime
    by: str
    input_ids: list[strawberry.ID]
    canonical_id: strawberry.ID
    score: float | None
    reasons: list[MatchReason]

    @classmethod
    def from_doc(cls, doc: MergeEntryDoc | MergeEventDoc) -> MergeEvent:
        return cls(
            kind=MergeEventKind(doc["kind"]),
            at=DateTime(doc["at"]),
            by=doc["by"],
            input_ids=[strawberry.ID(i) for i in doc["inputIds"]],
            canonical_id=strawberry.ID(doc["canonicalId"]),
            score=doc.get("score"),
            reasons=[MatchReason.from_doc(r) for r in doc.get("reasons", [])],
        )


@strawberry.type
class MergeSet:
    id: strawberry.ID
    contact_ids: list[strawberry.ID]
    size: int
    history: list[MergeEvent]
    doc: strawberry.Private[MergeSetDoc]

    @classmethod
    def from_doc(cls, doc: MergeSetDoc) -> MergeSet:
        return cls(
            id=strawberry.ID(doc["_id"]),
            contact_ids=[strawberry.ID(i) for i in doc["memberIds"]],
            size=len(doc["memberIds"]),
            history=[MergeEvent.from_doc(e) for e in doc.get("history", [])],
            doc=doc,
        )

    @strawberry.field(permission_classes=[CanViewContacts])
    async def canonical(self, info: Info) -> Contact:
        doc = await info.context.loaders.contact.load(self.doc["canonicalId"])
        if doc is None:
            from resolvers.errors import NotFound

            raise NotFound("the merge set's canonical contact is gone")
        return Contact.from_doc(doc)

    @strawberry.field(
        description="Every member, the canonical included.", permission_classes=[CanViewContacts]
    )
    async def contacts(self, info: Info) -> list[Contact]:
        docs = await info.context.loaders.contact.load_many(self.doc["memberIds"])
        return [Contact.from_doc(d) for d in docs if d is not None]
