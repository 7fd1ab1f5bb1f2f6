"""Contact, its parts, identifiers and notes: thin views over stored documents."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, cast

import strawberry

from resolvers import contacts
from resolvers.documents import ClaimDoc, ContactDoc, MergeSetDoc, NoteDoc
from resolvers.identifiers import key as identifier_key
from schema.context import Info, resolve_cached
from schema.enums import ContactType, IdentifierType
from schema.pagination import Connection
from schema.permissions import CanViewContacts, CanViewSessions
from schema.scalars import DateTime, optional_datetime

if TYPE_CHECKING:
    from schema.identity import MatchSuggestion
    from schema.journey import Journey
    from schema.merge import MergeEvent, MergeSet


@strawberry.type
class ExternalId:
    source: str
    value: str


@strawberry.type
class Address:
    line1: str | None
    line2: str | None
    city: str | None
    state: str | None
    postal_code: str | None
    country_code: str | None


@strawberry.type
class Note:
    id: strawberry.ID
    contact_id: strawberry.ID
    text: str
    created_at: DateTime
    created_by: str

    @classmethod
    def from_doc(cls, doc: NoteDoc) -> Note:
        return cls(
            id=strawberry.ID(doc["_id"]),
            contact_id=strawberry.ID(doc["contactId"]),
            text=doc["text"],
            created_at=DateTime(doc["createdAt"]),
            created_by=doc["createdBy"],
        )


@strawberry.type
class Contact:
    id: strawberry.ID
    type: ContactType
    first_name: str | None
    middle_name: str | None
    last_name: str | None
    title: str | None
    work_phone: str | None
    cell_phone: str | None
    home_phone: str | None
    other_phone: str | None
    work_email: str | None
    personal_email: str | None
    other_email: str | None
    whats_app_id: str | None
    facebook_id: str | None
    twitter_id: str | None
    line_id: str | None
    instagram_id: str | None
    external_ids: list[ExternalId]
    address: Address | None
    survey_opt_out: bool
    created_at: DateTime
    modified_at: DateTime
    expires_at: DateTime | None
    read_only: bool
    doc: strawberry.Private[ContactDoc]

    @classmethod
    def from_doc(cls, doc: ContactDoc) -> Contact:
        address = doc.get("address")
        return cls(
            id=strawberry.ID(doc["_id"]),
            type=ContactType(doc["type"]),
            first_name=doc.get("firstName"),
            middle_name=doc.get("middleName"),
            last_name=doc.get("lastName"),
            title=doc.get("title"),
            work_phone=doc.get("workPhone"),
            cell_phone=doc.get("cellPhone"),
            home_phone=doc.get("homePhone"),
            other_phone=doc.get("otherPhone"),
            work_email=doc.get("workEmail"),
            personal_email=doc.get("personalEmail"),
            other_email=doc.get("otherEmail"),
            whats_app_id=doc.get("whatsAppId"),
            facebook_id=doc.get("facebookId"),
            twitter_id=doc.get("twitterId"),
            line_id=doc.get("lineId"),
            instagram_id=doc.get("instagramId"),
            external_ids=[
                ExternalId(source=e["source"], value=e["value"])
                for e in doc.get("externalIds") or []
            ],
            address=Address(
                line1=address.get("line1"),
                line2=address.get("line2"),
                city=address.get("city"),
                state=address.get("state"),
                postal_code=address.get("postalCode"),
                country_code=address.get("countryCode"),
            )
            if address
            else None,
            survey_opt_out=bool(doc.get("surveyOptOut")),
            created_at=DateTime(doc["createdAt"]),
            modified_at=DateTime(doc["modifiedAt"]),
            expires_at=optional_datetime(doc.get("expiresAt")),
            read_only=bool(doc.get("readOnly")),
            doc=doc,
        )

    @strawberry.field(description="Head of its merge set; the contact itself when never merged.")
    async def canonical(self, info: Info) -> Contact:
        canonical_id = self.doc.get("canonicalId") or self.doc["_id"]
        if canonical_id == self.doc["_id"]:
            return self
        canonical = await info.context.loaders.contact.load(canonical_id)
        return Contact.from_doc(canonical) if canonical is not None else self

    @strawberry.field(description="Null when never merged.")
    def merge_set(self, info: Info) -> Annotated[MergeSet, strawberry.lazy("schema.merge")] | None:
        set_id = self.doc.get("mergeSetId")
        if not set_id:
            return None
        # sync: a set primed by a page's links resolves at once, else graphql-core awaits
        view = resolve_cached(info.context.loaders.merge_set, set_id, _merge_set_view)
        return cast("MergeSet | None", view)

    @strawberry.field(
        description="Every merge and unmerge that involved this contact (as an input, as the "
        "canonical contact, or as a member of the set it changed), oldest first; kept after "
        "its set was fully undone."
    )
    async def merge_history(
        self, info: Info
    ) -> list[Annotated[MergeEvent, strawberry.lazy("schema.merge")]]:
        from schema.merge import MergeEvent

        docs = await info.context.loaders.merge_history.load(self.doc["_id"])
        return [MergeEvent.from_doc(d) for d in docs]

    @strawberry.field(description="The identifiers this contact claims.")
    async def identifiers(self, info: Info) -> list[Identifier]:
        docs = await info.context.loaders.claims.load(self.doc["_id"])
        return [Identifier.from_doc(d) for d in docs]

    @strawberry.field(description="Notes of the whole merge set, newest first.")
    async def notes(self, info: Info) -> list[Note]:
        set_id = self.doc.get("mergeSetId")
        merge_set = await info.context.loaders.merge_set.load(set_id) if set_id else None
        docs = await info.context.loaders.notes.load(contacts.note_owners(self.doc, merge_set))
        return [Note.from_doc(d) for d in docs]

    @strawberry.field(
        description="Needs externalContacts:session:view.", permission_classes=[CanViewSessions]
    )
    async def journey(
        self, info: Info
    ) -> Annotated[Journey, strawberry.lazy("schema.journey")] | None:
        from schema.journey import journey_of

        return await journey_of(info, self.doc)

    @strawberry.field(
        description="Probable duplicates: live canonical contacts outside this contact's merge "
        "set that share evidence with it, best first.",
        permission_classes=[CanViewContacts],
    )
    async def match_suggestions(
        self, info: Info, first: int | None = 10, min_score: float | None = 0.5
    ) -> list[Annotated[MatchSuggestion, strawberry.lazy("schema.identity")]]:
        from schema.identity import match_suggestions_of

        return await match_suggestions_of(info, self.doc, first, min_score)


@strawberry.type
class Identifier:
    id: strawberry.ID = strawberry.field(
        description='`"TYPE:value"`, e.g. `"PHONE:+18035550142"`: unique per org, so client '
        "caches can normalise identifiers."
    )
    type: IdentifierType
    value: str
    claimed_at: DateTime
    doc: strawberry.Private[ClaimDoc]

    @classmethod
    def from_doc(cls, doc: ClaimDoc) -> Identifier:
        return cls(
            id=strawberry.ID(identifier_key(doc["type"], doc["value"])),
            type=IdentifierType(doc["type"]),
            value=doc["value"],
            claimed_at=DateTime(doc["claimedAt"]),
            doc=doc,
        )

    @strawberry.field(
        description="The contact that claims it (always a canonical contact).",
        permission_classes=[CanViewContacts],
    )
    async def contact(self, info: Info) -> Contact:
        doc = await info.context.loaders.contact.load(self.doc["contactId"])
        if doc is None:
            from resolvers.errors import NotFound

            raise NotFound("the contact that claimed this identifier is gone")
        return Contact.from_doc(doc)


ContactConnection = Connection[Contact]


def _merge_set_view(doc: MergeSetDoc | None) -> MergeSet | None:
    from schema.merge import MergeSet

    return MergeSet.from_doc(doc) if doc is not None else None


def contact_or_none(doc: ContactDoc | None) -> Contact | None:
    return Contact.from_doc(doc) if doc is not None else None
