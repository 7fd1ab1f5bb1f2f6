"""Root operations of merge sets: mergeSet, mergeContacts, unmergeContacts."""

from __future__ import annotations

import strawberry

from resolvers import matching_pairs, merges
from schema.contact import Contact
from schema.context import Info
from schema.inputs import ContactInput, to_patch
from schema.merge import MergeSet
from schema.permissions import CanMergeIdentities, CanViewContacts


@strawberry.type
class MergeQuery:
    @strawberry.field(
        description="The merge set of any member id; null when never merged.",
        permission_classes=[CanViewContacts],
    )
    async def merge_set(self, info: Info, contact_id: strawberry.ID) -> MergeSet | None:
        ctx = info.context
        doc = await merges.get_merge_set(ctx.store, ctx.org, str(contact_id))
        return MergeSet.from_doc(doc) if doc is not None else None


@strawberry.type
class MergeMutation:
    @strawberry.mutation(
        permission_classes=[CanMergeIdentities],
        description="Merges 2 to 25 contacts (each replaced by its canonical contact) under a "
        "new canonical contact, which it returns; valueOverride fields win.",
    )
    async def merge_contacts(
        self,
        info: Info,
        contact_ids: list[strawberry.ID],
        value_override: ContactInput | None = strawberry.UNSET,
    ) -> Contact:
        ctx = info.context
        patch = to_patch(value_override) if value_override else {}
        doc = await merges.merge_contacts(
            ctx.store, ctx.principal, [str(i) for i in contact_ids], patch
        )
        await matching_pairs.refresh(ctx.store, ctx.org, doc)  # duplicateClusters' pairs
        return Contact.from_doc(doc)

    @strawberry.mutation(
        permission_classes=[CanMergeIdentities],
        description="Undoes the latest merge of the contact's set; returns the restored contacts.",
    )
    async def unmerge_contacts(self, info: Info, contact_id: strawberry.ID) -> list[Contact]:
        ctx = info.context
        docs = await merges.unmerge_contacts(ctx.store, ctx.principal, str(contact_id))
        await matching_pairs.refresh_all(ctx.store, ctx.org, docs)  # duplicateClusters' pairs
        return [Contact.from_doc(d) for d in docs]
