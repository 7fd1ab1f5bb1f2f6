"""Root operations of the contact directory."""

from __future__ import annotations

import strawberry

from resolvers import contacts, directory, matching_writes
from resolvers.contact_fields import ContactType as DomainContactType
from resolvers.errors import BadUserInput
from resolvers.identifiers import IdentifierType as DomainIdentifierType
from schema.contact import (
    Contact,
    ContactConnection,
    Identifier,
    Note,
    contact_or_none,
)
from schema.context import Info
from schema.enums import ContactType, IdentifierType
from schema.inputs import ContactInput, to_patch
from schema.pagination import Connection
from schema.permissions import (
    CanAddContacts,
    CanDeleteContacts,
    CanEditContacts,
    CanPromoteIdentities,
    CanViewContacts,
)

MAX_IDS = 100


@strawberry.type
class DirectoryQuery:
    @strawberry.field(
        description="An ancestor id returns its canonical contact.",
        permission_classes=[CanViewContacts],
    )
    async def contact(self, info: Info, id: strawberry.ID) -> Contact | None:
        ctx = info.context
        return contact_or_none(await contacts.get_canonical(ctx.store, ctx.org, str(id)))

    @strawberry.field(
        description="Same order as ids, null for unknown (at most 100 ids).",
        permission_classes=[CanViewContacts],
    )
    async def contacts(self, info: Info, ids: list[strawberry.ID]) -> list[Contact | None]:
        ctx = info.context
        if len(ids) > MAX_IDS:
            raise BadUserInput(f"at most {MAX_IDS} ids")
        heads = await contacts.canonicals_of(ctx.loaders.contact.load_many, [str(i) for i in ids])
        return [contact_or_none(d) for d in heads]

    @strawberry.field(
        description="Name prefixes, exact email or phone; first <= 100.",
        permission_classes=[CanViewContacts],
    )
    async def search_contacts(
        self,
        info: Info,
        query: str,
        types: list[ContactType] | None = (ContactType.CURATED,),  # type: ignore[assignment]
        first: int | None = 25,
        after: str | None = strawberry.UNSET,  # no SDL default, as in the contract
    ) -> ContactConnection:
        ctx = info.context
        wanted = [DomainContactType(t) for t in (types or [])] or [DomainContactType.CURATED]
        cursor = after if isinstance(after, str) else None
        page = await directory.search_contacts(
            ctx.store, ctx.org, query, wanted, 25 if first is None else first, cursor
        )
        return Connection.of(page, Contact.from_doc, after_given=cursor is not None)

    @strawberry.field(
        description="value is normalised first.", permission_classes=[CanViewContacts]
    )
    async def identifier(self, info: Info, type: IdentifierType, value: str) -> Identifier | None:
        ctx = info.context
        doc = await directory.find_identifier(ctx.store, ctx.org, DomainIdentifierType(type), value)
        if doc is None or await ctx.loaders.contact.load(doc["contactId"]) is None:
            return None
        return Identifier.from_doc(doc)

    @strawberry.field(
        description="CURATED contacts with that phone or email, oldest first.",
        permission_classes=[CanViewContacts],
    )
    async def reverse_lookup(self, info: Info, value: str) -> list[Contact]:
        ctx = info.context
        return [
            Contact.from_doc(d) for d in await directory.reverse_lookup(ctx.store, ctx.org, value)
        ]


@strawberry.type
class DirectoryMutation:
    @strawberry.mutation(
        description="CURATED; firstName and lastName required.", permission_classes=[CanAddContacts]
    )
    async def create_contact(self, info: Info, input: ContactInput) -> Contact:
        ctx = info.context
        doc = await contacts.create_contact(ctx.store, ctx.principal, to_patch(input))
        return Contact.from_doc(await matching_writes.after_write(ctx.store, ctx.principal, doc))

    @strawberry.mutation(
        description="Omitted field = unchanged, null = cleared.",
        permission_classes=[CanEditContacts],
    )
    async def update_contact(self, info: Info, id: strawberry.ID, input: ContactInput) -> Contact:
        ctx = info.context
        result = await contacts.update_contact_item(
            ctx.store, ctx.principal, str(id), to_patch(input)
        )
        doc = await matching_writes.after_write(
            ctx.store, ctx.principal, result.unwrap(), evidence_changed=result.evidence_changed
        )
        return Contact.from_doc(doc)

    @strawberry.mutation(permission_classes=[CanDeleteContacts])
    async def delete_contact(self, info: Info, id: strawberry.ID) -> bool:
        ctx = info.context
        return await contacts.delete_contact(ctx.store, ctx.principal, str(id))

    @strawberry.mutation(permission_classes=[CanPromoteIdentities])
    async def promote_contact(self, info: Info, id: strawberry.ID) -> Contact:
        ctx = info.context
        return Contact.from_doc(await contacts.promote_contact(ctx.store, ctx.principal, str(id)))

    @strawberry.mutation(permission_classes=[CanEditContacts])
    async def add_note(self, info: Info, contact_id: strawberry.ID, text: str) -> Note:
        ctx = info.context
        return Note.from_doc(
            await contacts.add_note(ctx.store, ctx.principal, str(contact_id), text)
        )
