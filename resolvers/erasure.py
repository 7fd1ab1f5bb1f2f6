"""Erasure of a person (GDPR article 17), with a receipt that holds no personal data.

``erase_contact`` removes the whole merge set of a contact (an ancestor id works) in ONE
transaction (``Store.in_transaction``): a failure at any step leaves everything as it was.
The work is a list of steps (:data:`STEPS`), each taking the :class:`Erasure` under way
(its session, what was read, what the receipt will count), in this order:

1. ``members``: the merge set's contacts and every identifier key they list in fields;
   then ``contacts.remove_merge_set`` (shared with ``deleteContact``): every member, the
   set document, their notes, their claims released;
2. ``merge history``: events that involved only erased contacts go; events other contacts
   keep lose the erased ids (``merge_history.erase``); the duplicate pairs a member is half
   of go (``match_pairs``, whose reasons quote shared values);
3. ``conversations``: every conversation linked to any member goes (one ``delete_many`` on
   ``{org, externalContactId: {$in}}``), and the hourly and daily count buckets lose them
   (``conversation_counts.bucket_updates`` with -1, one ``bulk_write``);
3b. ``web visits``: the web events and sessions of every cookie the set held (one
   ``delete_many`` each on ``{org, cookie: {$in}}``);
4. ``suppress`` (``suppress: true``): the released values join the org's blocked
   identifiers (``blocked_identifiers.add_blocked``, never refused for the list's size);
5. ``claims``: each released value another live contact lists is claimed by the oldest of
   them, as on deletion (``claims.reclaim``; a suppressed value is blocked, so nobody);
6. ``mentions``: the erased values (what the set listed or held, unless another contact
   holds it now) are pulled from the ``identifiers`` of every remaining conversation that
   carries them (an unlinked callback, a conversation resolved to someone else), one
   ``update_many`` on the multikey index ``{org, identifiers.value}``;
7. ``changes``: retained changes of the feed keep their ids, but an erased identifier value
   or conversation id they name becomes its keyed one-way pseudonym
   (:mod:`resolvers.pseudonyms`), read by the indexes ``{org, identifier.value}`` and
   ``{org, conversationId}``, written in one ``bulk_write`` by ``_id``;
8. ``receipt``: an :class:`~resolvers.documents.ErasureReceiptDoc` with ids and counts;
9. ``CONTACT_ERASED``: recorded in the feed (``changes.record_change``), ids only.

Size of the transaction: a constant number of commands per step, whatever the person holds
(deletes by indexed keys, never one per document); only the reads that feed the count
buckets and the claims read documents, with small projections. The embedded server aborts
a transaction after 5 s (``gateway/embedded_daemon.py``); ``make bench`` measures a person
with 1,000 conversations.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime

from pymongo import UpdateOne
from pymongo.asynchronous.client_session import AsyncClientSession

from resolvers import (
    blocked_identifiers,
    claims,
    contacts,
    conversation_counts,
    matching_pairs,
    merge_history,
    pseudonyms,
)
from resolvers.changes import ChangeKind, record_change
from resolvers.clock import now
from resolvers.documents import ContactDoc, ErasureReceiptDoc
from resolvers.errors import BadUserInput
from resolvers.identifiers import IdentifierType, split_key
from resolvers.pagination import Page, check_first, decode_cursor, encode_cursor
from resolvers.principal import Principal
from resolvers.store import Store

MAX_REASON = 1000
MAX_RECEIPTS_PAGE = 100
RECEIPTS_CURSOR = "erasure"


@dataclass
class Erasure:
    """One erasure under way: what the steps read, decided and counted."""

    store: Store
    principal: Principal
    session: AsyncClientSession
    head: ContactDoc  # the canonical contact of the set
    reason: str | None
    suppress: bool
    at: datetime = field(default_factory=now)
    member_ids: list[str] = field(default_factory=list)
    listed: list[str] = field(default_factory=list)  # keys the members' fields list
    released: list[str] = field(default_factory=list)  # keys the members held
    erased: list[str] = field(default_factory=list)  # keys no other contact holds after
    conversation_ids: list[str] = field(default_factory=list)  # the erased ones (cid)
    conversations: int = 0
    web_events: int = 0
    notes: int = 0
    suppressed: int = 0
    receipt: ErasureReceiptDoc | None = None

    @property
    def org(self) -> str:
        return self.principal.org

    @property
    def person_keys(self) -> list[str]:
        """Every identifier key of the person: listed in a field or held."""
        return list(dict.fromkeys([*self.listed, *self.released]))


Step = Callable[[Erasure], Awaitable[None]]


def check_reason(reason: str | None) -> str | None:
    if reason is not None and len(reason) > MAX_REASON:
        raise BadUserInput(f"reason is at most {MAX_REASON} characters")
    return reason


async def erase_contact(
    store: Store,
    principal: Principal,
    contact_id: str,
    reason: str | None = None,
    *,
    suppress: bool = False,
) -> ErasureReceiptDoc:
    """Erase the contact's whole merge set (see the module's steps); returns the receipt.
    An unknown id (or another org's) is NOT_FOUND; nothing is half-erased."""
    reason = check_reason(reason)

    async def work(session: AsyncClientSession) -> ErasureReceiptDoc:
        head = await contacts.require_canonical(store, principal.org, contact_id, session=session)
        erasure = Erasure(store, principal, session, head, reason, suppress)
        for step in STEPS:
            await step(erasure)
        assert erasure.receipt is not None
        return erasure.receipt

    return await store.in_transaction(work)


# --- the steps ----------------------------------------------------------------------------


async def remove_members(e: Erasure) -> None:
    """The members (and the keys their fields list), then the set itself: contacts, set
    document, notes, claims (``contacts.remove_merge_set``, as ``deleteContact``)."""
    set_id = e.head.get("mergeSetId")
    members = (
        await e.store.contacts.find(
            {"org": e.org, "mergeSetId": set_id}, {"keys": 1}, session=e.session
        ).to_list()
        if set_id
        else [e.head]
    )
    e.listed = list(dict.fromkeys(k for m in members for k in m.get("keys") or []))
    removed = await contacts.remove_merge_set(e.store, e.org, e.head["_id"], e.session)
    e.member_ids = removed.member_ids
    e.released = removed.released
    e.notes = removed.notes


async def erase_merge_history(e: Erasure) -> None:
    await merge_history.erase(e.store, e.org, e.member_ids, e.session)


async def erase_web_visits(e: Erasure) -> None:
    """The web events and sessions of every cookie the set held (sessions belong to their
    cookie): one ``delete_many`` each on ``{org, cookie: {$in}}``."""
    cookies = [v for t, v in map(split_key, e.released) if t == IdentifierType.COOKIE]
    if not cookies:
        return
    scope = {"org": e.org, "cookie": {"$in": cookies}}
    gone = await e.store.web_events.delete_many(scope, session=e.session)
    e.web_events = gone.deleted_count
    await e.store.web_sessions.delete_many(scope, session=e.session)


async def forget_match_pairs(e: Erasure) -> None:
    """The duplicate pairs a member is half of go (their reasons quote shared values)."""
    await matching_pairs.pairs_collection(e.store).delete_many(
        {"org": e.org, "ids": {"$in": e.member_ids}}, session=e.session
    )


async def erase_conversations(e: Erasure) -> None:
    """Every conversation linked to a member, and its place in the count buckets."""
    linked = {"org": e.org, "externalContactId": {"$in": e.member_ids}}
    docs = await e.store.conversations.find(
        linked, {"cid": 1, "startedAt": 1, "channel": 1}, session=e.session
    ).to_list()
    if not docs:
        return
    e.conversation_ids = [d["cid"] for d in docs]
    deleted = await e.store.conversations.delete_many(linked, session=e.session)
    e.conversations = deleted.deleted_count
    changes = [(d["startedAt"], d["channel"], -1) for d in docs]
    updates = conversation_counts.bucket_updates(e.org, changes, e.store.config.retention_days)
    await e.store.conversation_counts.bulk_write(updates, ordered=False, session=e.session)


async def suppress_values(e: Erasure) -> None:
    """``suppress``: the released values join the org's blocked identifiers (never refused
    for the list's size), so they never resolve or stitch again."""
    if e.suppress and e.released:
        added = await blocked_identifiers.add_blocked(
            e.store, e.org, e.released, session=e.session, enforce_limit=False
        )
        e.suppressed = len(added)


async def hand_on_claims(e: Erasure) -> None:
    """A released value another live contact lists is claimed by the oldest of them (a
    suppressed, now blocked, value by nobody: ``claims.reclaim`` skips blocked values)."""
    await claims.reclaim(e.store, e.org, e.released, exclude=e.member_ids, session=e.session)


async def erased_keys(e: Erasure) -> list[str]:
    """The person's keys that no other contact holds now: the values erased everywhere."""
    keys = e.person_keys
    if not keys:
        return []
    held = await e.store.identifiers.find(
        {"org": e.org, "key": {"$in": keys}}, {"key": 1}, session=e.session
    ).to_list()
    taken = {c["key"] for c in held}
    return [k for k in keys if k not in taken]


async def scrub_mentions(e: Erasure) -> None:
    """Conversations that remain (unlinked, or someone else's) lose the erased values from
    the identifiers seen on them."""
    e.erased = await erased_keys(e)
    values = list(dict.fromkeys(split_key(k)[1] for k in e.erased))
    if values:
        await e.store.conversations.update_many(
            {"org": e.org, "identifiers.value": {"$in": values}},
            {"$pull": {"identifiers": {"value": {"$in": values}}}},
            session=e.session,
        )


async def pseudonymise_changes(e: Erasure) -> None:
    """Retained changes keep their ids but lose the erased values: an identifier value or a
    conversation id of the person becomes its keyed one-way pseudonym
    (:mod:`resolvers.pseudonyms`). Two indexed reads, one write by ``_id``."""
    values = list(dict.fromkeys(split_key(k)[1] for k in e.erased))
    named = (
        await e.store.changes.find(
            {"org": e.org, "identifier.value": {"$in": values}},
            {"identifier": 1},
            session=e.session,
        ).to_list()
        if values
        else []
    )
    linked = (
        await e.store.changes.find(
            {"org": e.org, "conversationId": {"$in": e.conversation_ids}},
            {"conversationId": 1},
            session=e.session,
        ).to_list()
        if e.conversation_ids
        else []
    )
    if not named and not linked:
        return
    key = await pseudonyms.org_key(e.store, e.org, e.session)
    erased = set(e.erased)
    updates = []
    for change in named:
        seen = change.get("identifier") or {"type": "", "value": ""}
        identifier_key = f"{seen['type']}:{seen['value']}"
        if identifier_key in erased:
            hidden = pseudonyms.pseudonym(key, identifier_key)
            updates.append(
                UpdateOne({"_id": change["_id"]}, {"$set": {"identifier.value": hidden}})
            )
    for change in linked:
        hidden = pseudonyms.pseudonym(key, f"conversation:{change.get('conversationId')}")
        updates.append(UpdateOne({"_id": change["_id"]}, {"$set": {"conversationId": hidden}}))
    if updates:
        await e.store.changes.bulk_write(updates, ordered=False, session=e.session)


async def record_erased(e: Erasure) -> None:
    """``CONTACT_ERASED`` in the feed, in the erasure's transaction: ids only."""
    await record_change(
        e.store,
        e.session,
        org=e.org,
        kind=ChangeKind.CONTACT_ERASED,
        by=e.principal.sub,
        contact_id=e.head["_id"],
        contact_ids=e.member_ids,
    )


async def write_receipt(e: Erasure) -> None:
    receipt: ErasureReceiptDoc = {
        "_id": contacts.new_id(),
        "org": e.org,
        "at": e.at,
        "by": e.principal.sub,
        "reason": e.reason,
        "contactIds": e.member_ids,
        "conversations": e.conversations,
        "webEvents": e.web_events,
        "notes": e.notes,
        "identifiers": len(e.released),
        "suppressed": e.suppressed,
    }
    await e.store.erasure_receipts.insert_one(receipt, session=e.session)
    e.receipt = receipt


STEPS: tuple[Step, ...] = (
    remove_members,
    erase_merge_history,
    forget_match_pairs,
    erase_conversations,
    erase_web_visits,
    suppress_values,
    hand_on_claims,
    scrub_mentions,
    pseudonymise_changes,
    write_receipt,
    record_erased,
)


# --- receipts -------------------------------------------------------------------------------


async def receipt_page(
    store: Store, org: str, first: int, after: str | None
) -> Page[ErasureReceiptDoc]:
    """The org's receipts, newest first (``at``, then id), keyset pages."""
    check_first(first, MAX_RECEIPTS_PAGE)
    query: dict[str, object] = {"org": org}
    position: tuple[datetime, str] | None = None
    if after is not None:
        at, receipt_id = decode_cursor(RECEIPTS_CURSOR, after, 2)
        if not isinstance(at, datetime) or not isinstance(receipt_id, str):
            raise BadUserInput("invalid cursor")
        position = (at, receipt_id)
        query["at"] = {"$lte": at}
    limit = first + 1
    while True:
        found = (
            await store.erasure_receipts.find(query)
            .sort([("at", -1), ("_id", -1)])
            .limit(limit)
            .to_list()
        )
        docs = [d for d in found if position is None or (d["at"], d["_id"]) < position]
        if len(docs) > first or len(found) < limit:
            break
        limit *= 2  # receipts at the cursor's instant filled the reply: read further
    docs = docs[: first + 1]
    page = docs[:first]
    cursors = [encode_cursor(RECEIPTS_CURSOR, d["at"], d["_id"]) for d in page]

    async def total() -> int:  # an index count of the org's receipts (few: one per erasure)
        return await store.erasure_receipts.count_documents({"org": org})

    return Page(page, len(docs) > first, cursors, total)
