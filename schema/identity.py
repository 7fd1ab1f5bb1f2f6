"""Identity intelligence (CONTRACT section 6): settings, claiming by hand, suggestions,
duplicate clusters."""

from __future__ import annotations

import strawberry

from resolvers import clusters, identity_settings, manual_claims, matching, matching_writes
from resolvers.documents import ContactDoc
from resolvers.identifiers import split_key
from resolvers.pagination import known_total
from schema.contact import Contact, Identifier
from schema.context import Info
from schema.conversation import IdentifierValue
from schema.enums import ContactType, IdentifierType
from schema.inputs import IdentifierInput, to_patch
from schema.match_reason import MatchReason
from schema.pagination import Connection, Edge, PageInfo
from schema.permissions import (
    CanConfigureIdentity,
    CanEditContacts,
    CanMergeIdentities,
    CanViewContacts,
)


@strawberry.type
class MatchSuggestion:
    contact: Contact
    score: float
    reasons: list[MatchReason]

    @classmethod
    def of(cls, suggestion: matching.Suggestion) -> MatchSuggestion:
        return cls(
            contact=Contact.from_doc(suggestion.contact),
            score=suggestion.score,
            reasons=[MatchReason.of(r) for r in suggestion.reasons],
        )


async def match_suggestions_of(
    info: Info, doc: ContactDoc, first: int | None, min_score: float | None
) -> list[MatchSuggestion]:
    """Contact.matchSuggestions: an ancestor's are its canonical contact's (null arguments
    take the defaults)."""
    first = 10 if first is None else first
    min_score = 0.5 if min_score is None else min_score
    matching.check_arguments(first, min_score)
    ctx = info.context
    subject: ContactDoc | None = doc
    if doc.get("readOnly"):
        subject = await ctx.loaders.contact.load(doc["canonicalId"])
    if subject is None:
        return []
    found = await matching.suggestions(
        ctx.store, ctx.org, subject, first=first, min_score=min_score
    )
    return [MatchSuggestion.of(s) for s in found]


@strawberry.type
class DuplicateCluster:
    id: strawberry.ID
    contacts: list[Contact]
    score: float
    reasons: list[MatchReason]

    @classmethod
    def of(cls, cluster: clusters.Cluster) -> DuplicateCluster:
        return cls(
            id=strawberry.ID(cluster.id),
            contacts=[Contact.from_doc(d) for d in cluster.contacts],
            score=cluster.score,
            reasons=[MatchReason.of(r) for r in cluster.reasons],
        )


DuplicateClusterConnection = Connection[DuplicateCluster]


def cluster_connection(
    page: clusters.ClusterPage, *, after_given: bool
) -> Connection[DuplicateCluster]:
    cursors = [clusters.encode_cursor(c) for c in page.clusters]
    return Connection(
        edges=[
            Edge(cursor=cursor, node=DuplicateCluster.of(cluster))
            for cluster, cursor in zip(page.clusters, cursors, strict=True)
        ],
        page_info=PageInfo.of(cursors, has_next=page.has_next, after_given=after_given),
        total=known_total(page.total),
    )


@strawberry.type
class IdentitySettings:
    auto_merge: bool
    auto_merge_min_score: float
    blocked_identifiers: list[IdentifierValue]

    @classmethod
    def of(cls, settings: identity_settings.IdentitySettings) -> IdentitySettings:
        values = [split_key(k) for k in settings.blocked]
        return cls(
            auto_merge=settings.auto_merge,
            auto_merge_min_score=settings.auto_merge_min_score,
            blocked_identifiers=[
                IdentifierValue(type=IdentifierType(kind), value=value) for kind, value in values
            ],
        )


@strawberry.input
class IdentitySettingsInput:
    auto_merge: bool | None = strawberry.UNSET
    auto_merge_min_score: float | None = strawberry.UNSET
    blocked_identifiers: list[IdentifierInput] | None = strawberry.UNSET


@strawberry.type
class IdentityQuery:
    @strawberry.field(permission_classes=[CanViewContacts])
    async def duplicate_clusters(
        self,
        info: Info,
        min_score: float | None = 0.9,
        types: list[ContactType] | None = strawberry.UNSET,
        first: int | None = 50,
        after: str | None = strawberry.UNSET,  # no SDL default, as in the contract
    ) -> DuplicateClusterConnection:
        ctx = info.context
        page = await clusters.cluster_page(
            ctx.store,
            ctx.org,
            min_score=0.9 if min_score is None else min_score,
            types=[str(t) for t in types] if types else None,
            first=50 if first is None else first,
            after=after or None,
        )
        return cluster_connection(page, after_given=bool(after))

    @strawberry.field(permission_classes=[CanConfigureIdentity])
    async def identity_settings(self, info: Info) -> IdentitySettings:
        ctx = info.context
        return IdentitySettings.of(await identity_settings.get_settings(ctx.store, ctx.org))


@strawberry.type
class IdentityMutation:
    @strawberry.mutation(permission_classes=[CanMergeIdentities])
    async def merge_duplicate_clusters(
        self, info: Info, min_score: float, first: int | None = 100
    ) -> list[Contact]:
        ctx = info.context
        docs = await clusters.merge_clusters(
            ctx.store, ctx.principal, min_score=min_score, first=100 if first is None else first
        )
        return [Contact.from_doc(d) for d in docs]

    @strawberry.mutation(permission_classes=[CanConfigureIdentity])
    async def update_identity_settings(
        self, info: Info, input: IdentitySettingsInput
    ) -> IdentitySettings:
        ctx = info.context
        settings = await identity_settings.update_settings(
            ctx.store, ctx.principal, to_patch(input)
        )
        return IdentitySettings.of(settings)

    @strawberry.mutation(permission_classes=[CanEditContacts])
    async def claim_identifier(
        self, info: Info, contact_id: strawberry.ID, identifier: IdentifierInput
    ) -> Identifier:
        ctx = info.context
        doc = await manual_claims.claim_identifier(
            ctx.store, ctx.principal, str(contact_id), to_patch(identifier)
        )
        merged = await matching_writes.auto_merge_after_write(
            ctx.store, ctx.principal, doc["contactId"]
        )
        if merged is not None and merged["_id"] != doc["contactId"]:  # merged automatically
            doc = {**doc, "contactId": merged["_id"]}
        return Identifier.from_doc(doc)

    @strawberry.mutation(permission_classes=[CanEditContacts])
    async def release_identifier(self, info: Info, type: IdentifierType, value: str) -> bool:
        ctx = info.context
        return await manual_claims.release_identifier(ctx.store, ctx.principal, type, value)
