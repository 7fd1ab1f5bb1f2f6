"""Privacy: ``eraseContact`` and the ``erasureReceipts`` that prove what was erased."""

from __future__ import annotations

from typing import Annotated

import strawberry

from resolvers import erasure
from resolvers.documents import ErasureReceiptDoc
from schema.context import Info
from schema.pagination import Connection
from schema.permissions import CanEraseContacts
from schema.scalars import DateTime


@strawberry.type(
    description="Proof of one erasure: ids and counts only, no personal data. Kept for good."
)
class ErasureReceipt:
    id: strawberry.ID = strawberry.field(description="The receipt's id.")
    at: DateTime = strawberry.field(description="When the erasure was committed.")
    by: str = strawberry.field(description="The token subject (`sub`) that erased.")
    reason: str | None = strawberry.field(
        description="Why, as the caller gave it (at most 1,000 characters; keep personal data "
        "out of it)."
    )
    contact_ids: list[strawberry.ID] = strawberry.field(
        description="Every contact erased: the whole merge set."
    )
    conversations: int = strawberry.field(description="How many conversations were erased.")
    web_events: int = strawberry.field(description="How many web events were erased.")
    notes: int = strawberry.field(description="How many notes were erased.")
    identifiers: int = strawberry.field(
        description="How many identifiers the set held (released; re-claimed by another live "
        "contact that lists the value, unless suppressed)."
    )
    suppressed: int = strawberry.field(
        description="How many erased values were added to the org's blocked identifiers."
    )

    @classmethod
    def from_doc(cls, doc: ErasureReceiptDoc) -> ErasureReceipt:
        return cls(
            id=strawberry.ID(doc["_id"]),
            at=DateTime(doc["at"]),
            by=doc["by"],
            reason=doc.get("reason"),
            contact_ids=[strawberry.ID(i) for i in doc["contactIds"]],
            conversations=doc["conversations"],
            web_events=doc["webEvents"],
            notes=doc["notes"],
            identifiers=doc["identifiers"],
            suppressed=doc["suppressed"],
        )


ErasureReceiptConnection = Connection[ErasureReceipt]


@strawberry.type
class PrivacyQuery:
    @strawberry.field(
        description="Receipts of the org's erasures, newest first. Needs "
        "externalContacts:contact:erase.",
        permission_classes=[CanEraseContacts],
    )
    async def erasure_receipts(
        self,
        info: Info,
        first: Annotated[int | None, strawberry.argument(description="Page size, 1 to 100.")] = 50,
        after: Annotated[
            str | None,
            strawberry.argument(description="The `endCursor` of the previous page."),
        ] = strawberry.UNSET,
    ) -> ErasureReceiptConnection:
        ctx = info.context
        cursor = after if isinstance(after, str) else None
        size = 50 if first is None else first
        page = await erasure.receipt_page(ctx.store, ctx.org, size, cursor)
        return Connection.of(page, ErasureReceipt.from_doc, after_given=cursor is not None)


@strawberry.type
class PrivacyMutation:
    @strawberry.mutation(
        description="Erases the person of a contact: its whole merge set, their identifiers, "
        "notes, merge history, conversations and web events, in one transaction; returns the "
        "receipt. Needs externalContacts:contact:erase.",
        permission_classes=[CanEraseContacts],
    )
    async def erase_contact(
        self,
        info: Info,
        id: Annotated[strawberry.ID, strawberry.argument(description="Any member's id.")],
        reason: Annotated[
            str | None, strawberry.argument(description="Why (at most 1,000 characters).")
        ] = strawberry.UNSET,
        suppress: Annotated[
            bool | None,
            strawberry.argument(
                description="Also add the erased identifier values to the org's blocked "
                "identifiers, so they never resolve or stitch again."
            ),
        ] = False,
    ) -> ErasureReceipt:
        ctx = info.context
        why = reason if isinstance(reason, str) else None
        doc = await erasure.erase_contact(
            ctx.store, ctx.principal, str(id), why, suppress=bool(suppress)
        )
        return ErasureReceipt.from_doc(doc)
