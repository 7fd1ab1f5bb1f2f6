"""A visitor who browsed before identifying: a form fill adopts the cookie's earlier visits.

When a form fill (a ``FORM_SUBMIT`` web event, or a ``WEB_MESSAGING`` interaction with a
provided email or phone) resolves to a contact while its cookie is claimed by another
contact that is ``EPHEMERAL`` and holds nothing but cookies (and is in no merge set), the
cookie's claim moves to the resolved contact: its sessions, before and after the form
fill, join the person's journey. The ephemeral contact keeps its conversations and expires
as usual. A cookie held by an ``IDENTIFIED`` or ``CURATED`` contact never moves this way.

The check (:func:`movable_cookies`) reads outside the write; the move
(:func:`move_claims`) is conditional on the claim still being the ephemeral contact's, so a
claim that changed meanwhile stays where it is.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from pymongo.asynchronous.client_session import AsyncClientSession

from resolvers import liveness
from resolvers.changes import ChangeKind, NewChange, record_changes
from resolvers.claims import VIA_INTERACTION, claim_doc
from resolvers.clock import now
from resolvers.contact_fields import EMAIL_FIELDS, PHONE_FIELDS, ContactType
from resolvers.documents import ContactDoc
from resolvers.identifiers import IdentifierType, split_key
from resolvers.store import Store


@dataclass(frozen=True)
class CookieMove:
    """A cookie's claim moving from an ephemeral contact to the contact a form resolved to."""

    key: str  # "COOKIE:value"
    from_id: str
    to: ContactDoc


def identifies(provided: Mapping[str, Any]) -> bool:
    """Whether provided data carries an email or phone (what makes a form fill identifying)."""
    return any(provided.get(name) for name in (*EMAIL_FIELDS, *PHONE_FIELDS))


def cookie_keys(keys: Iterable[str]) -> list[str]:
    return [k for k in keys if split_key(k)[0] is IdentifierType.COOKIE]


async def movable_cookies(
    store: Store, org: str, keys: Iterable[str], contact: ContactDoc
) -> list[CookieMove]:
    """The cookie claims among ``keys`` that the rule moves to ``contact``."""
    cookies = cookie_keys(keys)
    if not cookies:
        return []
    moment = now()
    held = await store.identifiers.find(
        {"org": org, "key": {"$in": cookies}}, {"key": 1, "contactId": 1, "expiresAt": 1}
    ).to_list()
    others = {
        c["key"]: c["contactId"]
        for c in held
        if c["contactId"] != contact["_id"] and not liveness.is_expired(c, moment)
    }
    if not others:
        return []
    movable = await _cookie_only_ephemerals(store, org, set(others.values()))
    return [
        CookieMove(key=k, from_id=holder, to=contact)
        for k, holder in others.items()
        if holder in movable
    ]


async def _cookie_only_ephemerals(store: Store, org: str, ids: set[str]) -> set[str]:
    """Those of ``ids`` that are live, unmerged EPHEMERAL contacts claiming only cookies."""
    holders = await store.contacts.find(
        {"org": org, "_id": {"$in": sorted(ids)}},
        {"type": 1, "mergeSetId": 1, "readOnly": 1, "expiresAt": 1},
    ).to_list()
    candidates = {
        h["_id"]
        for h in holders
        if h["type"] == ContactType.EPHEMERAL
        and not h.get("mergeSetId")
        and liveness.is_live(h, now())
    }
    if not candidates:
        return set()
    claims = await store.identifiers.find(
        {"org": org, "contactId": {"$in": sorted(candidates)}}, {"contactId": 1, "type": 1}
    ).to_list()
    return candidates - {c["contactId"] for c in claims if c["type"] != IdentifierType.COOKIE}


async def move_claims(
    store: Store, org: str, moves: Iterable[CookieMove], session: AsyncClientSession | None
) -> list[CookieMove]:
    """Move each claim that is still the ephemeral contact's; returns the moves made."""
    made: list[CookieMove] = []
    for move in moves:
        moved = await store.identifiers.update_one(
            {"org": org, "contactId": move.from_id, "key": move.key},
            {"$set": claim_doc(org, move.key, move.to, VIA_INTERACTION)},
            session=session,
        )
        if moved.modified_count == 1:
            made.append(move)
    return made


def moved_changes(moves: Iterable[CookieMove]) -> list[NewChange]:
    """An ``IDENTIFIER_CLAIMED`` change per move: about the new holder, touching both."""
    return [
        NewChange(
            ChangeKind.IDENTIFIER_CLAIMED,
            move.to["_id"],
            [move.to["_id"], move.from_id],
            identifier=move.key,
        )
        for move in moves
    ]


async def after_form_fill(
    store: Store,
    org: str,
    by: str,
    keys: list[str],
    provided: Mapping[str, Any],
    contact: ContactDoc,
) -> list[CookieMove]:
    """recordInteraction's form fill (``WEB_MESSAGING`` with a provided email or phone): the
    cookies of ephemeral visitors move to the resolved contact, in one transaction with
    their ``IDENTIFIER_CLAIMED`` changes."""
    if not identifies(provided):
        return []
    moves = await movable_cookies(store, org, keys, contact)
    if not moves:
        return []

    async def work(session: AsyncClientSession) -> list[CookieMove]:
        made = await move_claims(store, org, moves, session)
        await record_changes(store, session, org=org, by=by, changes=moved_changes(made))
        return made

    return await store.in_transaction(work)
