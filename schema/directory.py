"""Root operations of the contact directory."""

from __future__ import annotations

import strawberry

from resolvers import contacts, directory
from resolvers.contact_fields import ContactType as DomainContactType
from resolvers.errors import BadUserInput
from resolvers.identifiers import IdentifierType as DomainIdentifierType
from resolvers.principal import Permission
from schema.contact import (
    Contact,
    ContactConnection,
    ContactEdge,
    Identifier,
    Note,
    PageInfo,
    contact_or_none,
)
from schema.context import Info
from schema.enums import ContactType, IdentifierType
from schema.inputs import ContactInput, to_patch

MAX_IDS = 100


@strawberry.type
class DirectoryQuery:
    @strawberry.field(description="An ancestor id returns its canonical contact.")
    async def contact(self, info: Info, id: strawberry.ID) -> Contact | None:
        ctx = info.context
        ctx.require(Permission.CONTACT_VIEW)
        return contact_or_none(await contacts.get_canonical(ctx.store, ctx.org, str(id)))

    @strawberry.field(description="Same order as ids, null for unknown (at most 100 ids).")
    async def contacts(self, info: Info, ids: list[strawberry.ID]) -> list[Contact | None]:
        ctx = info.context
        ctx.require(Permission.CONTACT_VIEW)
        if len(ids) > MAX_IDS:
            raise BadUserInput(f"at most {MAX_IDS} ids")
        heads = await contacts.canonicals_of(ctx.loaders.contact.load_many, [str(i) for i in ids])
        return [contact_or_none(d) for d in heads]

    @strawberry.field(description="Name prefixes, exact email or phone; first <= 100.")
    async def search_contacts(
        self,
        info: Info,
        query: str,
        types: list[ContactType] | None = (ContactType.CURATED,),  # type: ignore[assignment]
        first: int | None = 25,
        after: str | None = strawberry.UNSET,  # no SDL default, as in the contract
    ) -> ContactConnection:
        ctx = info.context
        ctx.require(Permission.CONTACT_VIEW)
        wanted = [DomainContactType(t) for t in (types or [])] or [DomainContactType.CURATED]
        cursor = after if isinstance(after, str) else None
        page, total = await directory.search_contacts(
            ctx.store, ctx.org, query, wanted, 25 if first is None else first, cursor
        )
        edges = [
            ContactEdge(cursor=directory.search_cursor(d), node=Contact.from_doc(d))
            for d in page.docs
        ]
        return ContactConnection(
            edges=edges,
            page_info=PageInfo.of(
                [e.cursor for e in edges], has_next=page.has_next, after_given=cursor is not None
            ),
            total=total,
        )

    @strawberry.field(description="value is normalised first.")
    async def identifier(self, info: Info, type: IdentifierType, value: str) -> Identifier | None:
        ctx = info.context
        ctx.require(Permission.CONTACT_VIEW)
        doc = await directory.find_identifier(ctx.store, ctx.org, DomainIdentifierType(type), value)
        if doc is None or await ctx.loaders.contact.load(doc["contactId"]) is None:
            return None
        return Identifier.from_doc(doc)

    @strawberry.field(description="CURATED contacts with that phone or email, oldest first.")
    async def reverse_lookup(self, info: Info, value: str) -> list[Contact]:
        ctx = info.context
        ctx.require(Permission.CONTACT_VIEW)
        return [
            Contact.from_doc(d) for d in await directory.reverse_lookup(ctx.store, ctx.org, value)
        ]


@strawberry.type
class DirectoryMutation:
    @strawberry.mutation(description="CURATED; firstName and lastName required.")
    async def create_contact(self, info: Info, input: ContactInput) -> Contact:
        ctx = info.context
        ctx.require(Permission.CONTACT_ADD)
        return Contact.from_doc(
            await contacts.create_contact(ctx.store, ctx.principal, to_patch(input))
        )

    @strawberry.mutation(description="Omitted field = unchanged, null = cleared.")
    async def update_contact(self, info: Info, id: strawberry.ID, input: ContactInput) -> Contact:
        ctx = info.context
        ctx.require(Permission.CONTACT_EDIT)
        doc = await contacts.update_contact(ctx.store, ctx.principal, str(id), to_patch(input))
        return Contact.from_doc(doc)

    @strawberry.mutation
    async def delete_contact(self, info: Info, id: strawberry.ID) -> bool:
        ctx = info.context
        ctx.require(Permission.CONTACT_DELETE)
        return await contacts.delete_contact(ctx.store, ctx.principal, str(id))

    @strawberry.mutation
    async def promote_contact(self, info: Info, id: strawberry.ID) -> Contact:
        ctx = info.context
        ctx.require(Permission.IDENTITY_PROMOTE)
        return Contact.from_doc(await contacts.promote_contact(ctx.store, ctx.principal, str(id)))

    @strawberry.mutation
    async def add_note(self, info: Info, contact_id: strawberry.ID, text: str) -> Note:
        ctx = info.context
        ctx.require(Permission.CONTACT_EDIT)
        return Note.from_doc(
            await contacts.add_note(ctx.store, ctx.principal, str(contact_id), text)
        )
