"""Web journeys: recordWebEvents, WebSession and its events, and the journey's web fields
(webSessionCount, webSessions, timeline), which ``schema.journey.Journey`` inherits."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Any, cast

import strawberry
from strawberry.types.arguments import InputContext
from strawberry.types.base import get_object_definition

from resolvers import journeys, web_events, web_journeys, web_sessions
from resolvers.principal import Permission
from resolvers.web_documents import WebEventDoc, WebSessionDoc
from resolvers.web_events import WebEventType
from schema.contact import Contact
from schema.context import Info
from schema.conversation import Conversation, node_fields, node_projection
from schema.inputs import ContactInput
from schema.pagination import Connection
from schema.permissions import CanIngestConversations, checked_in_code
from schema.scalars import DateTime

strawberry.enum(WebEventType, description="What a web event records.")


def _given(value: Any) -> Any:
    return None if value is strawberry.UNSET else value


@strawberry.input(description="A key and its value (at most 1,000 characters each).")
class KeyValueInput:
    key: str
    value: str


@strawberry.type(description="A key and its value.")
class KeyValue:
    key: str
    value: str


@strawberry.input(description="One event of a web tracker.")
class WebEventInput:
    cookie: str = strawberry.field(description="The visitor's web id (a COOKIE identifier).")
    type: WebEventType
    at: DateTime = strawberry.field(description="When it happened (at most a day ahead).")
    event_id: strawberry.ID | None = strawberry.field(
        default=strawberry.UNSET,
        description="Optional idempotency key: the same eventId twice is stored once.",
    )
    url: str | None = strawberry.UNSET
    title: str | None = strawberry.UNSET
    referrer: str | None = strawberry.UNSET
    name: str | None = strawberry.field(
        default=strawberry.UNSET, description='A CUSTOM event\'s name, e.g. "added_to_cart".'
    )
    attributes: list[KeyValueInput] | None = strawberry.field(
        default=strawberry.UNSET, description="At most 20."
    )
    provided: ContactInput | None = strawberry.field(
        default=strawberry.UNSET,
        description="FORM_SUBMIT only: what the visitor filled in (an email or phone "
        "identifies them and stitches the cookie to that person).",
    )


def _as_coerced(cls: type, value: Mapping[str, Any], context: InputContext) -> Any:
    """A ``WebEventInput`` arrives as the plain mapping GraphQL coerced: GraphQL field names,
    omitted fields absent, nested inputs as mappings too, values already parsed (the enum,
    ``DateTime``) — what ``to_patch`` would rebuild from an input object. Building 500
    Strawberry objects a call and taking them apart again was a third of the gateway's CPU
    for a batch (``tests/schema/test_web_api.py`` checks both ways agree)."""
    del cls, context
    return value


get_object_definition(WebEventInput, strict=True).from_input = _as_coerced


@strawberry.type(description="What recordWebEvents did.")
class WebEventsResult:
    accepted: int = strawberry.field(description="How many events the call accepted.")
    contact_ids: list[strawberry.ID] = strawberry.field(
        description="The contact each event resolved to, in input order."
    )


@strawberry.type(description="One tracked event of a visitor's cookie.")
class WebEvent:
    id: strawberry.ID
    type: WebEventType
    at: DateTime
    url: str | None
    title: str | None
    referrer: str | None
    name: str | None
    attributes: list[KeyValue]

    @classmethod
    def from_doc(cls, doc: WebEventDoc) -> WebEvent:
        return cls(
            id=strawberry.ID(doc["_id"]),
            type=WebEventType(doc["type"]),
            at=DateTime(doc["at"]),
            url=doc.get("url"),
            title=doc.get("title"),
            referrer=doc.get("referrer"),
            name=doc.get("name"),
            attributes=[KeyValue(key=a["key"], value=a["value"]) for a in doc["attributes"]],
        )


WebEventConnection = Connection[WebEvent]


@strawberry.type(
    description="A visit: a cookie's events less than SCV_WEB_SESSION_GAP_MINUTES apart."
)
class WebSession:
    id: strawberry.ID
    started_at: DateTime
    ended_at: DateTime
    page_views: int
    event_count: int
    landing_url: str | None
    exit_url: str | None
    referrer: str | None
    doc: strawberry.Private[WebSessionDoc]

    @classmethod
    def from_doc(cls, doc: WebSessionDoc) -> WebSession:
        return cls(
            id=strawberry.ID(doc["_id"]),
            started_at=DateTime(doc["startedAt"]),
            ended_at=DateTime(doc["endedAt"]),
            page_views=doc["pageViews"],
            event_count=doc["eventCount"],
            landing_url=doc.get("landingUrl"),
            exit_url=doc.get("exitUrl"),
            referrer=doc.get("referrer"),
            doc=doc,
        )

    @strawberry.field(
        description="The contact that claims the session's cookie now (its canonical).",
        metadata=checked_in_code(Permission.CONTACT_VIEW),
    )
    async def contact(self, info: Info) -> Contact | None:
        info.context.require(Permission.CONTACT_VIEW)
        holder = await info.context.loaders.web.claimant.load(self.doc["cookie"])
        if holder is None:
            return None
        link = await info.context.loaders.links.load(holder)
        if link is None or link.canonical is None:
            return None
        return Contact.from_doc(link.canonical)

    @strawberry.field(description="Oldest first; first <= 500.")
    async def events(
        self, info: Info, first: int | None = 50, after: str | None = strawberry.UNSET
    ) -> WebEventConnection:
        request = web_journeys.event_request(
            self.doc, 50 if first is None else first, _given(after)
        )
        page = await info.context.loaders.web.events.load(request)
        return Connection.of(page, WebEvent.from_doc, after_given=request.after is not None)


WebSessionConnection = Connection[WebSession]

JourneyItem = Annotated[
    Conversation | WebSession,
    strawberry.union("JourneyItem", description="A conversation or a web session."),
]


JourneyItemConnection = Connection[JourneyItem]


def _item(doc: web_journeys.TimelineItem) -> Conversation | WebSession:
    if web_journeys.is_session(doc):
        return WebSession.from_doc(doc)  # type: ignore[arg-type]
    return Conversation.from_doc(doc)  # type: ignore[arg-type]


@strawberry.type
class WebJourney:
    """The web part of a journey: the sessions of every cookie its merge set claims now."""

    head: strawberry.Private[journeys.JourneyHead]

    async def _cookies(self, info: Info) -> tuple[str, ...]:
        return await info.context.loaders.web.cookies.load(self.head.member_ids)

    @strawberry.field(description="How many visible web sessions the journey holds.")
    async def web_session_count(self, info: Info) -> int:
        return await info.context.loaders.web.session_count.load(await self._cookies(info))

    @strawberry.field(
        description="Web sessions of every cookie the merge set claims now, newest first by "
        "start (since inclusive, until exclusive); first <= 200."
    )
    async def web_sessions(
        self,
        info: Info,
        first: int | None = 20,
        after: str | None = strawberry.UNSET,
        since: DateTime | None = strawberry.UNSET,
        until: DateTime | None = strawberry.UNSET,
    ) -> WebSessionConnection:
        request = web_sessions.session_request(
            (), 20 if first is None else first, _given(after), _given(since), _given(until)
        )
        cookies = await self._cookies(info)
        request = web_sessions.SessionRequest(
            cookies, request.first, request.after, request.since, request.until
        )
        loaders = info.context.loaders.web
        rows = await loaders.sessions.load(request)

        async def total() -> int:  # run only when totalCount is selected
            return await loaders.session_count.load(cookies)

        page = web_sessions.session_page(request, rows, total)
        return Connection.of(page, WebSession.from_doc, after_given=request.after is not None)

    @strawberry.field(
        description="Conversations and web sessions, newest first by start, one cursor "
        "across both kinds (since inclusive, until exclusive); first <= 200."
    )
    async def timeline(
        self,
        info: Info,
        first: int | None = 50,
        after: str | None = strawberry.UNSET,
        since: DateTime | None = strawberry.UNSET,
        until: DateTime | None = strawberry.UNSET,
    ) -> JourneyItemConnection:
        request = web_journeys.timeline_request(
            self.head.member_ids,
            50 if first is None else first,
            _given(after),
            _given(since),
            _given(until),
        )
        loaders = info.context.loaders
        part = web_journeys.conversations_part(request, _conversation_fields(info))
        conversations = loaders.conversation_page.load(part)
        cookies = await self._cookies(info)
        sessions = await loaders.web.sessions.load(web_journeys.sessions_part(request, cookies))
        page = web_journeys.merge(request, await conversations, sessions)

        async def total() -> int:  # both kinds within since/until (only when selected)
            ctx = info.context
            [count] = await web_sessions.session_counts(
                ctx.store, ctx.org, [cookies], request.since, request.until
            )
            return count + await (await conversations).total()

        page.total = total
        return Connection.of(page, _item, after_given=request.after is not None)


SESSION_ONLY = frozenset(
    {"endedAt", "pageViews", "eventCount", "landingUrl", "exitUrl", "referrer", "events"}
)


def _conversation_fields(info: Info) -> tuple[str, ...] | None:
    """The conversation fields a timeline's selection reads (its sessions' own fields left
    out), as a projection; None (whole documents) for a field the mapping does not know."""
    return node_projection(n for n in node_fields(info) if n not in SESSION_ONLY)


@strawberry.type
class WebMutation:
    @strawberry.mutation(
        description="Store a web tracker's batch of 1 to 500 events: each cookie resolves as a "
        "WEB_MESSAGING interaction would; a FORM_SUBMIT with provided data stitches it.",
        permission_classes=[CanIngestConversations],
    )
    async def record_web_events(self, info: Info, events: list[WebEventInput]) -> WebEventsResult:
        ctx = info.context
        raw = cast("list[Mapping[str, Any]]", events)  # coerced mappings: see _as_coerced
        result = await web_events.record_web_events(ctx.store, ctx.principal, raw)
        return WebEventsResult(
            accepted=result.accepted,
            contact_ids=[strawberry.ID(i) for i in result.contact_ids],
        )
