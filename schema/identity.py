"""Identity intelligence (CONTRACT section 6): settings, claiming by hand, suggestions,
duplicate clusters."""

from __future__ import annotations

import strawberry

from resolvers import identity_settings, manual_claims
from resolvers.identifiers import split_key
from schema.contact import Identifier
from schema.context import Info
from schema.conversation import IdentifierValue
from schema.enums import IdentifierType
from schema.inputs import IdentifierInput, to_patch
from schema.permissions import CanConfigureIdentity, CanEditContacts


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
    @strawberry.field(permission_classes=[CanConfigureIdentity])
    async def identity_settings(self, info: Info) -> IdentitySettings:
        ctx = info.context
        return IdentitySettings.of(await identity_settings.get_settings(ctx.store, ctx.org))


@strawberry.type
class IdentityMutation:
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
        return Identifier.from_doc(doc)

    @strawberry.mutation(permission_classes=[CanEditContacts])
    async def release_identifier(self, info: Info, type: IdentifierType, value: str) -> bool:
        ctx = info.context
        return await manual_claims.release_identifier(ctx.store, ctx.principal, type, value)
