"""The change feed and webhooks: changes, the changes subscription's type, webhooks."""

from __future__ import annotations

from collections.abc import AsyncGenerator

import strawberry

from resolvers import changes, webhooks
from resolvers.documents import ChangeDoc, WebhookDoc
from schema.context import Info
from schema.conversation import IdentifierValue
from schema.enums import ChangeKind, IdentifierType
from schema.pagination import Edge, PageInfo, UncountedConnection
from schema.permissions import CanManageWebhooks, CanViewContacts, stream_permissions
from schema.scalars import DateTime


@strawberry.type
class Change:
    id: strawberry.ID
    kind: ChangeKind
    at: DateTime
    by: str
    contact_id: strawberry.ID
    contact_ids: list[strawberry.ID]
    conversation_id: strawberry.ID | None
    identifier: IdentifierValue | None

    @classmethod
    def from_doc(cls, doc: ChangeDoc) -> Change:
        identifier = doc.get("identifier")
        return cls(
            id=strawberry.ID(doc["_id"]),
            kind=ChangeKind(doc.get("kind", "")),
            at=DateTime(doc["at"]),
            by=doc.get("by", ""),
            contact_id=strawberry.ID(doc.get("contactId", "")),
            contact_ids=[strawberry.ID(i) for i in doc.get("contactIds", [])],
            conversation_id=_optional_id(doc.get("conversationId")),
            identifier=IdentifierValue(
                type=IdentifierType(identifier["type"]), value=identifier["value"]
            )
            if identifier
            else None,
        )


def _optional_id(value: str | None) -> strawberry.ID | None:
    return strawberry.ID(value) if value is not None else None


@strawberry.type
class ChangeConnection(UncountedConnection[Change]):
    pass


@strawberry.type
class Webhook:
    id: strawberry.ID
    url: str
    kinds: list[ChangeKind]
    created_at: DateTime
    secret: str | None
    failing: bool
    last_error: str | None

    @classmethod
    def from_doc(cls, doc: WebhookDoc, *, with_secret: bool = False) -> Webhook:
        return cls(
            id=strawberry.ID(doc["_id"]),
            url=doc["url"],
            kinds=[ChangeKind(k) for k in doc["kinds"]],
            created_at=DateTime(doc["createdAt"]),
            secret=doc["secret"] if with_secret else None,
            failing=doc["failing"],
            last_error=doc["lastError"],
        )


@strawberry.type
class ChangeQuery:
    @strawberry.field(permission_classes=[CanViewContacts])
    async def changes(
        self,
        info: Info,
        after: str | None = None,
        first: int = 100,
        kinds: list[ChangeKind] | None = None,
    ) -> ChangeConnection:
        ctx = info.context
        position = changes.parse_after(after)
        page = await changes.read_changes(
            ctx.store, ctx.org, after=position, first=first, kinds=kinds
        )
        edges = [
            Edge(cursor=changes.cursor_of(d["seq"]), node=Change.from_doc(d)) for d in page.docs
        ]
        return ChangeConnection(
            edges=edges,
            page_info=PageInfo(
                has_next_page=page.has_next,
                end_cursor=changes.cursor_of(page.end) if page.end > 0 else after,
                has_previous_page=after is not None,
                start_cursor=edges[0].cursor if edges else None,
            ),
        )

    @strawberry.field(permission_classes=[CanManageWebhooks])
    async def webhooks(self, info: Info) -> list[Webhook]:
        ctx = info.context
        return [Webhook.from_doc(d) for d in await webhooks.list_webhooks(ctx.store, ctx.org)]


@strawberry.type
class ChangeMutation:
    @strawberry.mutation(permission_classes=[CanManageWebhooks])
    async def create_webhook(
        self, info: Info, url: str, kinds: list[ChangeKind] | None = None
    ) -> Webhook:
        ctx = info.context
        doc = await webhooks.create_webhook(ctx.store, ctx.principal, url, kinds)
        return Webhook.from_doc(doc, with_secret=True)

    @strawberry.mutation(permission_classes=[CanManageWebhooks])
    async def delete_webhook(self, info: Info, id: strawberry.ID) -> bool:
        ctx = info.context
        return await webhooks.delete_webhook(ctx.store, ctx.principal, str(id))


async def change_stream(info: Info, kinds: list[ChangeKind] | None) -> AsyncGenerator[Change, None]:
    ctx = info.context
    async for doc in changes.follow(ctx.store, ctx.org, kinds):
        yield Change.from_doc(doc)


CHANGES_STREAM_PERMISSIONS = stream_permissions(CanViewContacts)
