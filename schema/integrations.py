"""Root operations for integrations keeping a directory in sync: bulk writes, the scan,
upsert and note editing (CONTRACT.md section 7)."""

from __future__ import annotations

from datetime import datetime

import strawberry

from resolvers import bulk, contacts, matching_writes, scan, upsert
from resolvers.contact_fields import ContactType as DomainContactType
from resolvers.upsert import UpsertRule
from schema.contact import Contact, ContactConnection, Note
from schema.context import Info
from schema.enums import ContactType
from schema.inputs import ContactInput, IdentifierInput, to_patch
from schema.pagination import Connection
from schema.permissions import (
    CanAddContacts,
    CanDeleteContacts,
    CanEditContacts,
    CanViewContacts,
)
from schema.scalars import DateTime

strawberry.enum(UpsertRule)


@strawberry.type
class BulkError:
    code: str
    message: str


@strawberry.type
class BulkResult:
    index: int
    contact: Contact | None
    error: BulkError | None

    @classmethod
    def of(cls, result: bulk.ItemResult) -> BulkResult:
        error = result.error
        return cls(
            index=result.index,
            contact=Contact.from_doc(result.contact) if result.contact is not None else None,
            error=BulkError(code=error.code, message=error.message) if error else None,
        )


@strawberry.input
class ContactUpdate:
    id: strawberry.ID
    input: ContactInput


@strawberry.type
class UpsertResult:
    contact: Contact
    created: bool


@strawberry.type
class IntegrationQuery:
    @strawberry.field(permission_classes=[CanViewContacts])
    async def scan_contacts(
        self,
        info: Info,
        first: int | None = 100,
        after: str | None = strawberry.UNSET,
        types: list[ContactType] | None = (ContactType.CURATED,),  # type: ignore[assignment]
        modified_since: DateTime | None = strawberry.UNSET,
    ) -> ContactConnection:
        ctx = info.context
        wanted = [DomainContactType(t) for t in (types or [])] or [DomainContactType.CURATED]
        cursor = after if isinstance(after, str) else None
        since: datetime | None = modified_since if isinstance(modified_since, datetime) else None
        page = await scan.scan_contacts(
            ctx.store, ctx.org, 100 if first is None else first, cursor, wanted, since
        )
        return Connection.of(page, Contact.from_doc, after_given=cursor is not None)


async def _matched(info: Info, results: list[bulk.ItemResult]) -> list[bulk.ItemResult]:
    """Match pairs and automatic merging for every written item, as createContact and
    updateContact do for one (batched: :func:`matching_writes.after_bulk_write`); an item
    merged automatically shows the new canonical contact."""
    written = {r.contact["_id"]: r.contact for r in results if r.contact is not None}
    if written:
        ctx = info.context
        # evidence compared between each contact before the call and after all its edits
        same = {r.contact["_id"] for r in results if r.contact and not r.evidence_changed}
        shown = await matching_writes.after_bulk_write(
            ctx.store, ctx.principal, list(written.values()), same_evidence=same
        )
        for result in results:
            if result.contact is not None:
                result.contact = shown.get(result.contact["_id"], result.contact)
    return results


@strawberry.type
class IntegrationMutation:
    @strawberry.mutation(permission_classes=[CanAddContacts])
    async def bulk_create_contacts(
        self, info: Info, inputs: list[ContactInput]
    ) -> list[BulkResult]:
        ctx = info.context
        patches = [to_patch(i) for i in inputs]
        results = await bulk.create_contacts(ctx.store, ctx.principal, patches)
        return [BulkResult.of(r) for r in await _matched(info, results)]

    @strawberry.mutation(permission_classes=[CanEditContacts])
    async def bulk_update_contacts(
        self, info: Info, updates: list[ContactUpdate]
    ) -> list[BulkResult]:
        ctx = info.context
        items = [(str(u.id), to_patch(u.input)) for u in updates]
        results = await bulk.update_contacts(ctx.store, ctx.principal, items)
        return [BulkResult.of(r) for r in await _matched(info, results)]

    @strawberry.mutation(permission_classes=[CanDeleteContacts])
    async def bulk_delete_contacts(self, info: Info, ids: list[strawberry.ID]) -> list[BulkResult]:
        ctx = info.context
        done = await bulk.delete_contacts(ctx.store, ctx.principal, [str(i) for i in ids])
        return [BulkResult.of(r) for r in done]

    @strawberry.mutation(
        permission_classes=[CanAddContacts, CanEditContacts],
    )
    async def upsert_contact(
        self,
        info: Info,
        match: list[IdentifierInput],
        input: ContactInput,
        rule: UpsertRule | None = UpsertRule.PREFER_PROVIDED,
    ) -> UpsertResult:
        ctx = info.context
        raw = [{"type": str(m.type), "value": m.value} for m in match]
        upserted = await upsert.upsert_contact(
            ctx.store,
            ctx.principal,
            raw,
            to_patch(input),
            UpsertRule(rule or UpsertRule.PREFER_PROVIDED),
        )
        # match suggestions and automatic merging, as after createContact/updateContact
        doc = await matching_writes.after_write(
            ctx.store,
            ctx.principal,
            upserted.contact,
            evidence_changed=upserted.evidence_changed,
        )
        return UpsertResult(contact=Contact.from_doc(doc), created=upserted.created)

    @strawberry.mutation(permission_classes=[CanEditContacts])
    async def update_note(self, info: Info, id: strawberry.ID, text: str) -> Note:
        ctx = info.context
        return Note.from_doc(await contacts.update_note(ctx.store, ctx.principal, str(id), text))

    @strawberry.mutation(permission_classes=[CanEditContacts])
    async def delete_note(self, info: Info, id: strawberry.ID) -> bool:
        ctx = info.context
        return await contacts.delete_note(ctx.store, ctx.principal, str(id))
