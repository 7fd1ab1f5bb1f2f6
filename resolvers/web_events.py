"""recordWebEvents: store a web tracker's batch of events, resolve their cookies, keep sessions.

The whole batch is validated before anything is written (``BAD_USER_INPUT`` for the whole
call otherwise). Then, in input order:

- each distinct cookie is resolved the way a ``WEB_MESSAGING`` interaction would resolve it
  (``interactions.claimed_holders`` for every cookie of the batch in one read, then
  ``interactions.resolve_and_stitch`` for a cookie nobody claims: an ``EPHEMERAL`` contact);
- a ``FORM_SUBMIT`` with ``provided`` data resolves like a web form fill (its email or phone
  first, then the cookie is stitched) and, when the cookie belongs to a cookie-only
  ephemeral visitor, moves the cookie to the person (``resolvers.web_stitching``).

The writes of the batch run in one transaction: the sessions around the new events first
(``web_sessions.rebuild``, whose writes make two batches of one cookie conflict), the new
events (``insert_many``; an ``eventId`` already stored is skipped, so a retried batch is
stored once), the cookie moves and the contacts' expiry renewals. Events expire
``retention_days`` after they happened.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from pymongo import UpdateMany, UpdateOne
from pymongo.asynchronous.client_session import AsyncClientSession
from pymongo.errors import DuplicateKeyError

from resolvers import (
    blocked_identifiers,
    interactions,
    matching_writes,
    web_sessions,
    web_stitching,
)
from resolvers.blocked_identifiers import BlockList
from resolvers.changes import ChangeKind, NewChange, record_changes
from resolvers.clock import now, to_db_precision
from resolvers.contact_fields import ContactType, clean_input
from resolvers.contacts import get_canonical, new_id
from resolvers.conversations import Channel, Direction
from resolvers.documents import ContactDoc
from resolvers.errors import BadUserInput, Conflict
from resolvers.identifiers import MAX_STRING, IdentifierType, key, priority_of
from resolvers.principal import Principal
from resolvers.store import Store
from resolvers.web_documents import KeyValueDoc, WebEventDoc

MAX_EVENTS = 500
MAX_ATTRIBUTES = 20
MAX_FUTURE = timedelta(days=1)  # an `at` later than this is a broken clock, not a visit
MAX_ATTEMPTS = 3
RENEW_STEP = timedelta(hours=1)  # an expiry moves when an event moves it this much or more
TEXT_FIELDS = ("url", "title", "referrer", "name")


class WebEventType(StrEnum):
    PAGE_VIEW = "PAGE_VIEW"
    FORM_SUBMIT = "FORM_SUBMIT"
    CUSTOM = "CUSTOM"


@dataclass(frozen=True)
class WebEvent:
    """A validated event: its document (without org, id and expiry) and its form data."""

    cookie: str
    event_id: str | None
    type: WebEventType
    at: datetime
    details: dict[str, str | None]
    attributes: list[KeyValueDoc]
    provided: dict[str, Any]

    @property
    def cookie_key(self) -> str:
        return key(IdentifierType.COOKIE, self.cookie)


@dataclass
class WebEventsResult:
    accepted: int
    contact_ids: list[str]
    created: list[str] = field(default_factory=list)  # contacts auto-created by the batch
    moves: list[web_stitching.CookieMove] = field(default_factory=list)


# --- validation ----------------------------------------------------------------------------


def _text(value: Any, name: str) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or len(value) > MAX_STRING:
        raise BadUserInput(f"{name} is longer than {MAX_STRING} characters")
    return value


def _cookie(value: Any, blocked: BlockList) -> str:
    text = _text(value, "cookie")
    cookie = (text or "").strip()
    if not cookie:
        raise BadUserInput("cookie is empty")
    if blocked.is_blocked(key(IdentifierType.COOKIE, cookie)):
        raise BadUserInput("a cookie value is blocked: it identifies no one")
    return cookie


def _at(value: Any, moment: datetime, retention_days: int) -> datetime:
    if not isinstance(value, datetime):
        raise BadUserInput("at must be a date-time")
    at = to_db_precision(value)
    if at > moment + MAX_FUTURE:
        raise BadUserInput("at is too far in the future")
    try:
        at + timedelta(days=retention_days)  # its expiry must be a date
    except OverflowError:
        raise BadUserInput("at is too far in the future") from None
    return at


def _attributes(value: Any) -> list[KeyValueDoc]:
    items = list(value or [])
    if len(items) > MAX_ATTRIBUTES:
        raise BadUserInput(f"at most {MAX_ATTRIBUTES} attributes")
    return [
        {"key": _text(i["key"], "attribute key") or "", "value": _text(i["value"], "value") or ""}
        for i in items
    ]


@dataclass(frozen=True)
class Checks:
    """What validating a batch needs: the time, the settings and the org's block list."""

    moment: datetime
    region: str
    retention_days: int
    blocked: BlockList


def parse_event(raw: Mapping[str, Any], checks: Checks) -> WebEvent:
    kind = WebEventType(raw["type"])
    provided = raw.get("provided")
    if provided is not None and kind is not WebEventType.FORM_SUBMIT:
        raise BadUserInput("provided is only for FORM_SUBMIT events")
    cleaned = clean_input(provided or {}, checks.region)
    event_id = raw.get("eventId")
    return WebEvent(
        cookie=_cookie(raw.get("cookie"), checks.blocked),
        event_id=_text(str(event_id) if event_id is not None else None, "eventId"),
        type=kind,
        at=_at(raw.get("at"), checks.moment, checks.retention_days),
        details={name: _text(raw.get(name), name) for name in TEXT_FIELDS},
        attributes=_attributes(raw.get("attributes")),
        provided={k: v for k, v in cleaned.items() if v is not None},
    )


async def parse_events(
    store: Store, org: str, raw_events: Sequence[Mapping[str, Any]]
) -> tuple[list[WebEvent], BlockList]:
    """Every event validated (one read: the org's block list), or BAD_USER_INPUT for the
    whole call."""
    if not 1 <= len(raw_events) <= MAX_EVENTS:
        raise BadUserInput(f"between 1 and {MAX_EVENTS} events a call")
    config = store.config
    blocked = await blocked_identifiers.load_block_list(store, org)
    checks = Checks(now(), config.default_region, config.retention_days, blocked)
    return [parse_event(raw, checks) for raw in raw_events], blocked


# --- resolution ----------------------------------------------------------------------------


def _interaction(event: WebEvent, region: str, blocked: BlockList) -> interactions.Interaction:
    """The web form fill (or plain visit) as the interaction it resolves like (blocked
    provided values are no identifiers)."""
    keys = blocked.keep([event.cookie_key, *interactions.provided_keys(event.provided, region)])
    return interactions.Interaction(
        conversation_id="",
        channel=Channel.WEB_MESSAGING,
        direction=Direction.INBOUND,
        started_at=event.at,
        ended_at=None,
        seen=[],
        keys=sorted(dict.fromkeys(keys), key=priority_of),
        provided=event.provided,
        details={},
    )


@dataclass
class Resolver:
    """Who each cookie of a batch resolves to, as the events are walked in input order."""

    store: Store
    principal: Principal
    current: dict[str, ContactDoc]
    result: WebEventsResult
    blocked: BlockList
    latest: dict[str, datetime] = field(default_factory=dict)  # renewals still to write
    seen: dict[str, ContactDoc] = field(default_factory=dict)  # every contact resolved, by id
    # the contacts form fills resolved to (what automatic merging looks at after the write)
    filled: dict[str, tuple[ContactDoc, bool, list[str]]] = field(default_factory=dict)
    # what resolving wrote before the batch's transaction: undone if it fails
    undo: list[tuple[ContactDoc, bool, list[str]]] = field(default_factory=list)

    @property
    def org(self) -> str:
        return self.principal.org

    async def undo_all(self) -> None:
        for contact, created, stitched in reversed(self.undo):
            await interactions.undo(
                self.store, self.principal, contact, created=created, stitched=stitched
            )

    async def contact_of(self, event: WebEvent) -> ContactDoc:
        if event.type is WebEventType.FORM_SUBMIT and event.provided:
            return await self._form_fill(event)
        known = self.current.get(event.cookie)
        if known is None:
            known = await self._resolve(event)
            self.current[event.cookie] = known
            return known
        self.seen[known["_id"]] = known
        self.latest[known["_id"]] = max(event.at, self.latest.get(known["_id"], event.at))
        return known

    async def _resolve(self, event: WebEvent) -> ContactDoc:
        region = self.store.config.default_region
        contact, created, stitched = await interactions.resolve_and_stitch(
            self.store, self.principal, _interaction(event, region, self.blocked)
        )
        self.undo.append((contact, created, stitched))
        if created:
            self.result.created.append(contact["_id"])
        self.seen[contact["_id"]] = contact
        return contact

    async def _form_fill(self, event: WebEvent) -> ContactDoc:
        """Resolved like a web form fill; the cookie's later events go to whoever holds it
        after: the person when it was free or moves, else its (non-ephemeral) holder."""
        contact = await self._resolve(event)
        keys = _interaction(event, self.store.config.default_region, self.blocked).keys
        self.filled[contact["_id"]] = (contact, self.undo[-1][1], keys)
        moves: list[web_stitching.CookieMove] = []
        if web_stitching.identifies(event.provided):
            moves = await web_stitching.movable_cookies(
                self.store, self.org, [event.cookie_key], contact
            )
            self.result.moves.extend(moves)
        if moves or event.cookie not in self.current:
            self.current[event.cookie] = contact
        return contact


async def _known_cookies(store: Store, org: str, events: list[WebEvent]) -> dict[str, ContactDoc]:
    """The canonical contact of every claimed cookie of the batch (one read; an ancestor
    holder, which a merge re-points at once, is looked up on its own)."""
    cookies = list(dict.fromkeys(e.cookie for e in events))
    by_key, _ = await interactions.claimed_holders(
        store, org, [key(IdentifierType.COOKIE, c) for c in cookies]
    )
    known: dict[str, ContactDoc] = {}
    for cookie in cookies:
        holder = by_key.get(key(IdentifierType.COOKIE, cookie))
        if holder is not None and holder["readOnly"]:
            holder = await get_canonical(store, org, holder["canonicalId"])
        if holder is not None:
            known[cookie] = holder
    return known


# --- the write -----------------------------------------------------------------------------


def event_doc(org: str, event: WebEvent, retention_days: int) -> WebEventDoc:
    """The stored document of ``event`` (also what the privacy bench stores)."""
    doc: WebEventDoc = {
        "_id": new_id(),
        "org": org,
        "cookie": event.cookie,
        "type": str(event.type),
        "at": event.at,
        "url": event.details["url"],
        "title": event.details["title"],
        "referrer": event.details["referrer"],
        "name": event.details["name"],
        "attributes": event.attributes,
        "expiresAt": event.at + timedelta(days=retention_days),
        "eventId": "",
    }
    doc["eventId"] = event.event_id if event.event_id is not None else doc["_id"]
    return doc


async def _new_docs(
    store: Store, org: str, events: list[WebEvent], session: AsyncClientSession
) -> list[WebEventDoc]:
    """The documents of the events not stored yet (an eventId stored before, or twice in the
    batch, is stored once)."""
    ids = sorted({e.event_id for e in events if e.event_id is not None})
    stored: set[str] = set()
    if ids:
        found = await store.web_events.find(
            {"org": org, "eventId": {"$in": ids}}, {"eventId": 1}, session=session
        ).to_list()
        stored = {d["eventId"] for d in found}
    docs: list[WebEventDoc] = []
    for event in events:
        if event.event_id is not None:
            if event.event_id in stored:
                continue
            stored.add(event.event_id)
        docs.append(event_doc(org, event, store.config.retention_days))
    return docs


async def _renew(
    store: Store,
    org: str,
    contacts: Mapping[str, ContactDoc],
    latest: Mapping[str, datetime],
    session: AsyncClientSession,
) -> None:
    """Auto-created, unmerged contacts live until their latest event + the retention period
    (and so do their claims): two commands for the whole batch, when any expiry moves by
    :data:`RENEW_STEP` or more. A visitor's stream of events renews its contact about once
    an hour instead of with every batch (each renewal rewrites the contact and its claims),
    so an expiry may be up to an hour short of the latest event + the retention period."""
    retention = timedelta(days=store.config.retention_days)
    renewals = {
        contact_id: at + retention
        for contact_id, at in latest.items()
        if contacts[contact_id]["type"] != ContactType.CURATED
        and not contacts[contact_id].get("mergeSetId")
        and at + retention - (contacts[contact_id].get("expiresAt") or at) >= RENEW_STEP
    }
    if not renewals:
        return
    await store.contacts.bulk_write(
        [
            UpdateOne(
                {"_id": i, "org": org, "readOnly": False},
                {"$max": {"expiresAt": expires, "lastSeenAt": expires - retention}},
            )
            for i, expires in renewals.items()
        ],
        ordered=False,
        session=session,
    )
    await store.identifiers.bulk_write(
        [
            UpdateMany({"org": org, "contactId": i}, {"$max": {"expiresAt": expires}})
            for i, expires in renewals.items()
        ],
        ordered=False,
        session=session,
    )


def _changes(resolver: Resolver, moved: list[web_stitching.CookieMove]) -> list[NewChange]:
    """The batch's changes: each auto-created contact, each identifier a contact claimed
    (an auto-created one's cookie, what a form fill stitched), each cookie moved to the
    person who filled in a form — as recordInteraction records them."""
    created = [NewChange(ChangeKind.CONTACT_CREATED, i) for i in resolver.result.created]
    stitched = [
        NewChange(ChangeKind.IDENTIFIER_CLAIMED, contact["_id"], identifier=claimed)
        for contact, _, keys in resolver.undo
        for claimed in keys
    ]
    return [*created, *stitched, *web_stitching.moved_changes(moved)]


async def _write(
    store: Store, principal: Principal, events: list[WebEvent], resolver: Resolver
) -> list[web_stitching.CookieMove]:
    org = principal.org
    contacts = resolver.seen

    async def work(session: AsyncClientSession) -> list[web_stitching.CookieMove]:
        docs = await _new_docs(store, org, events, session)
        # The sessions first: two batches of one cookie in flight conflict on their first
        # write (the later one retries with the other's sessions in view), before either
        # inserts its events.
        await web_sessions.rebuild(store, org, docs, session)
        if docs:
            await store.web_events.insert_many(docs, ordered=True, session=session)
        moved = await web_stitching.move_claims(store, org, resolver.result.moves, session)
        await _renew(store, org, contacts, resolver.latest, session)
        changes = _changes(resolver, moved)  # last: the feed records what the batch changed
        await record_changes(store, session, org=org, by=principal.sub, changes=changes)
        return moved

    for _ in range(MAX_ATTEMPTS):
        try:
            return await store.in_transaction(work)
        except DuplicateKeyError:
            continue  # the same eventId stored concurrently: read the stored ids again
    raise Conflict("the same events are being recorded concurrently; try again")


async def record_web_events(
    store: Store, principal: Principal, raw_events: Sequence[Mapping[str, Any]]
) -> WebEventsResult:
    org = principal.org
    events, blocked = await parse_events(store, org, raw_events)
    result = WebEventsResult(accepted=len(events), contact_ids=[])
    known = await _known_cookies(store, org, events)
    resolver = Resolver(store, principal, known, result, blocked)
    try:
        for event in events:
            contact = await resolver.contact_of(event)
            result.contact_ids.append(contact["_id"])
        result.moves = await _write(store, principal, events, resolver)
    except BaseException:
        await resolver.undo_all()  # no auto-created contact or new claim of a failed call
        raise
    await _merge_automatically(store, principal, resolver, result)
    return result


async def _merge_automatically(
    store: Store, principal: Principal, resolver: Resolver, result: WebEventsResult
) -> None:
    """A form fill is new evidence: with the org's ``autoMerge`` on, its contact merges with
    its strong suggestions (section 6), as after recordInteraction; the events' contact ids
    then name the new canonical contact."""
    renamed: dict[str, str] = {}
    for contact, created, keys in resolver.filled.values():
        after = await matching_writes.after_interaction(
            store, principal, contact, created=created, keys=keys
        )
        if after["_id"] != contact["_id"]:
            renamed[contact["_id"]] = after["_id"]
    if renamed:
        result.contact_ids = [renamed.get(i, i) for i in result.contact_ids]
