"""Contact writes for many items at once: create, update and delete, each item exactly what
the single mutation does (``createContact``, ``updateContact`` and ``deleteContact`` are these
functions with one item).

Items are independent: every item is validated first, and a bad item reports its error and
writes nothing. The good items are written in one transaction whose round trips do not grow
with the number of items: contacts are read with one ``$in`` (and their canonicals with one
more), written with one ``insert_many``/``bulk_write``/``delete_many``, and their claims are
decided by :mod:`resolvers.bulk_claims` (one read of every claim, holder and lister, at most
two writes). The change feed (:mod:`resolvers.changes`) gets every item's change inside
the same transaction, with one more call (CONTACT_CREATED, CONTACT_UPDATED, CONTACT_DELETED
per written item, as the single mutations record them).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from pymongo import UpdateOne
from pymongo.asynchronous.client_session import AsyncClientSession

from resolvers import bulk_claims, claims, contacts, liveness, matching_pairs, merge_history
from resolvers.changes import ChangeKind, NewChange, claimed_changes, record_changes
from resolvers.clock import now
from resolvers.contact_fields import ContactType, clean_input
from resolvers.documents import ContactDoc, ContactFields, field_of
from resolvers.errors import BadUserInput, Conflict, DomainError, NotFound
from resolvers.identifiers import MAX_STRING
from resolvers.principal import Principal
from resolvers.store import Store

MAX_ITEMS = 200
EDITED = ("modifiedAt", "type", "expiresAt")  # besides contacts.DERIVED and the given fields


@dataclass
class ItemResult:
    """One item's outcome: its contact (for a delete: the canonical contact deleted), or the
    error that kept it from being written."""

    index: int
    contact: ContactDoc | None = None
    error: DomainError | None = None
    evidence_changed: bool = True  # an update that left every matching field as it was: False

    def unwrap(self) -> ContactDoc:
        """The contact, or the item's error raised (the single mutations)."""
        if self.error is not None:
            raise self.error
        assert self.contact is not None
        return self.contact


def check_items(items: Sequence[Any]) -> None:
    if not 1 <= len(items) <= MAX_ITEMS:
        raise BadUserInput(f"between 1 and {MAX_ITEMS} items")


def curated_doc(store: Store, org: str, fields: ContactFields) -> ContactDoc:
    """A new CURATED contact from cleaned ``fields``; first and last name required."""
    if not fields.get("firstName") or not fields.get("lastName"):
        raise BadUserInput("firstName and lastName are required")
    return contacts.new_contact_doc(store, org, fields, ContactType.CURATED)


async def insert_contacts(
    store: Store, org: str, docs: Sequence[ContactDoc], session: AsyncClientSession
) -> None:
    """New contacts and the claims their fields give them (the oldest lister wins; among
    the new ones, the first in order)."""
    await store.contacts.insert_many(list(docs), session=session)
    wanted = [(k, doc, claims.VIA_FIELD) for doc in docs for k in doc["keys"]]
    await bulk_claims.claim_many(store, org, wanted, session)


async def create_contacts(
    store: Store, principal: Principal, patches: Sequence[Mapping[str, Any]]
) -> list[ItemResult]:
    check_items(patches)
    results = [ItemResult(i) for i in range(len(patches))]
    docs: dict[int, ContactDoc] = {}
    for i, patch in enumerate(patches):
        try:
            fields = clean_input(patch, store.config.default_region)
            docs[i] = curated_doc(store, principal.org, fields)
        except DomainError as exc:
            results[i].error = exc
    if docs:

        async def work(session: AsyncClientSession) -> None:
            await insert_contacts(store, principal.org, list(docs.values()), session)
            created = [NewChange(ChangeKind.CONTACT_CREATED, d["_id"]) for d in docs.values()]
            await record_changes(
                store, session, org=principal.org, by=principal.sub, changes=created
            )

        await store.in_transaction(work)
    for i, doc in docs.items():
        results[i].contact = doc
    return results


async def canonicals(
    store: Store, org: str, ids: Sequence[str], session: AsyncClientSession
) -> dict[str, ContactDoc]:
    """Each known id's live canonical contact (an ancestor id: its merge set's head); two
    reads whatever the number of ids. Unknown or expired ids are absent."""
    wanted = list({i for i in ids if isinstance(i, str) and len(i) <= MAX_STRING})
    moment = now()
    exact = {
        d["_id"]: d
        for d in await store.contacts.find(
            {"org": org, "_id": {"$in": wanted}}, session=session
        ).to_list()
        if not liveness.is_expired(d, moment)
    }
    missing = list({d["canonicalId"] for d in exact.values()} - set(exact))
    if missing:
        heads = await store.contacts.find(
            {"org": org, "_id": {"$in": missing}}, session=session
        ).to_list()
        exact.update({d["_id"]: d for d in heads if not liveness.is_expired(d, moment)})
    return {i: exact[d["canonicalId"]] for i, d in exact.items() if d["canonicalId"] in exact}


Edit = tuple[str, ContactFields]  # contact id (an ancestor's acts on its canonical), fields
Outcome = dict[int, ContactDoc | DomainError]


async def apply_updates(
    store: Store,
    org: str,
    edits: Mapping[int, Edit],
    session: AsyncClientSession,
    handed_on: list[tuple[str, str]] | None = None,
    same_evidence: set[str] | None = None,
) -> Outcome:
    """``updateContact`` for each edit, in order (two edits of one contact apply one after
    the other), inside the caller's transaction: the contacts in one ``bulk_write``, their
    claims (promotion, released values handed on, new values claimed) batched. The (key,
    contact id) claims of values handed on to other listers are added to ``handed_on``, the
    ids of contacts whose edits left their match evidence as it was to ``same_evidence``."""
    heads = await canonicals(store, org, [i for i, _ in edits.values()], session)
    originals: dict[str, ContactDoc] = {}
    edited: dict[str, ContactDoc] = {}
    touched: dict[str, set[str]] = {}
    outcome: Outcome = {}
    for index, (contact_id, fields) in edits.items():
        head = heads.get(contact_id)
        if head is None:
            outcome[index] = NotFound(f"no contact with id {contact_id}")
            continue
        originals.setdefault(head["_id"], head)
        edited[head["_id"]] = contacts.edited(store, edited.get(head["_id"], head), fields)
        touched.setdefault(head["_id"], set()).update(fields)
        outcome[index] = edited[head["_id"]]
    if edited:
        await _write_edits(store, org, originals, edited, touched, session)
        made = await _reclaim_edited(store, org, originals, edited, session)
        if handed_on is not None:
            handed_on += made
        if same_evidence is not None:
            same_evidence.update(
                cid
                for cid, doc in edited.items()
                if matching_pairs.same_evidence(originals[cid], doc)
            )
    return outcome


async def _write_edits(
    store: Store,
    org: str,
    originals: dict[str, ContactDoc],
    edited: dict[str, ContactDoc],
    touched: dict[str, set[str]],
    session: AsyncClientSession,
) -> None:
    # $set, not a whole replacement: a concurrent renewal or merge keeps its own fields;
    # modifiedAt is the compare-and-set version (as in updateContact)
    writes = [
        UpdateOne(
            {"_id": cid, "org": org, "modifiedAt": originals[cid]["modifiedAt"], "readOnly": False},
            {"$set": {n: field_of(doc, n) for n in (*touched[cid], *contacts.DERIVED, *EDITED)}},
        )
        for cid, doc in edited.items()
    ]
    written = await store.contacts.bulk_write(writes, session=session)
    if written.matched_count != len(writes):
        raise Conflict("a contact changed concurrently; try again")
    promoted = [cid for cid, doc in originals.items() if doc["type"] != ContactType.CURATED]
    if promoted:
        await claims.set_claims_expiry(store, org, promoted, None, session=session)


async def _reclaim_edited(
    store: Store,
    org: str,
    originals: dict[str, ContactDoc],
    edited: dict[str, ContactDoc],
    session: AsyncClientSession,
) -> list[tuple[str, str]]:
    """Values removed from fields are released (claims through fields only) and handed to
    their oldest other lister (the claims so made are returned); values added are claimed."""
    removed = [
        (cid, [k for k in originals[cid]["keys"] if k not in doc["keys"]])
        for cid, doc in edited.items()
    ]
    released = await bulk_claims.release_many(
        store, org, removed, session, only_via=claims.VIA_FIELD
    )
    made = await bulk_claims.reclaim_many(store, org, released, session)
    added = [
        (k, doc, claims.VIA_FIELD)
        for cid, doc in edited.items()
        for k in doc["keys"]
        if k not in originals[cid]["keys"]
    ]
    await bulk_claims.claim_many(store, org, added, session)
    return made


async def record_updates(
    store: Store,
    session: AsyncClientSession,
    principal: Principal,
    outcome: Outcome,
    handed_on: Sequence[tuple[str, str]] = (),
) -> None:
    """CONTACT_UPDATED for every item written (in item order), then IDENTIFIER_CLAIMED for
    each value the edits handed on to another contact."""
    updated = [
        NewChange(ChangeKind.CONTACT_UPDATED, doc["_id"])
        for _, doc in sorted(outcome.items())
        if not isinstance(doc, DomainError)
    ]
    found = [*updated, *claimed_changes(handed_on)]
    await record_changes(store, session, org=principal.org, by=principal.sub, changes=found)


async def update_contacts(
    store: Store, principal: Principal, updates: Sequence[tuple[str, Mapping[str, Any]]]
) -> list[ItemResult]:
    check_items(updates)
    results = [ItemResult(i) for i in range(len(updates))]
    edits: dict[int, Edit] = {}
    for i, (contact_id, patch) in enumerate(updates):
        try:
            edits[i] = (contact_id, clean_input(patch, store.config.default_region))
        except DomainError as exc:
            results[i].error = exc
    if edits:
        unchanged: set[str] = set()

        async def work(session: AsyncClientSession) -> Outcome:
            handed_on: list[tuple[str, str]] = []
            unchanged.clear()  # a retried attempt starts over
            outcome = await apply_updates(
                store, principal.org, edits, session, handed_on, unchanged
            )
            await record_updates(store, session, principal, outcome, handed_on)
            return outcome

        for i, done in (await store.in_transaction(work)).items():
            if isinstance(done, DomainError):
                results[i].error = done
            else:
                results[i].contact = done
                results[i].evidence_changed = done["_id"] not in unchanged
    return results


async def delete_contacts(
    store: Store, principal: Principal, ids: Sequence[str]
) -> list[ItemResult]:
    """``deleteContact`` for each id: the contact, or its whole merge set, with notes and
    claims (handed on to the oldest other lister). An id whose contact an earlier item of
    the call deleted is NOT_FOUND, as a second deleteContact would be."""
    check_items(ids)

    async def work(session: AsyncClientSession) -> list[ItemResult]:
        heads = await canonicals(store, principal.org, ids, session)
        results = [ItemResult(i) for i in range(len(ids))]
        doomed: dict[str, ContactDoc] = {}
        for i, contact_id in enumerate(ids):
            head = heads.get(contact_id)
            if head is None or head["_id"] in doomed:
                results[i].error = NotFound(f"no contact with id {contact_id}")
            else:
                doomed[head["_id"]] = results[i].contact = head
        if doomed:
            handed_on: list[tuple[str, str]] = []
            doomed_heads = list(doomed.values())
            removed = await remove_contacts(store, principal.org, doomed_heads, session, handed_on)
            deleted = [
                NewChange(ChangeKind.CONTACT_DELETED, head, [head, *members])
                for head, members in removed.items()
            ]
            deleted += claimed_changes(handed_on)  # their values handed on to other contacts
            await record_changes(
                store, session, org=principal.org, by=principal.sub, changes=deleted
            )
        return results

    return await store.in_transaction(work)


async def remove_contacts(
    store: Store,
    org: str,
    heads: Sequence[ContactDoc],
    session: AsyncClientSession,
    handed_on: list[tuple[str, str]] | None = None,
) -> dict[str, list[str]]:
    """Deletes canonical contacts with their merge sets, notes, merge history and claims
    (released values go to their oldest other live lister, those claims added to
    ``handed_on``); returns each head's members."""
    members = {h["_id"]: [h["_id"]] for h in heads}
    set_ids = {h["mergeSetId"]: h["_id"] for h in heads if h.get("mergeSetId")}
    if set_ids:
        sets = await store.merge_sets.find(
            {"org": org, "_id": {"$in": list(set_ids)}}, session=session
        ).to_list()
        for merge_set in sets:
            head = set_ids[merge_set["_id"]]
            members[head] = list(dict.fromkeys([*merge_set["memberIds"], head]))
        await store.merge_sets.delete_many(
            {"org": org, "_id": {"$in": list(set_ids)}}, session=session
        )
    member_ids = [m for ids in members.values() for m in ids]
    await store.contacts.delete_many({"org": org, "_id": {"$in": member_ids}}, session=session)
    await store.notes.delete_many({"org": org, "contactId": {"$in": member_ids}}, session=session)
    await merge_history.forget(store, org, member_ids, session)
    released = await bulk_claims.release_many(store, org, [(m, None) for m in member_ids], session)
    made = await bulk_claims.reclaim_many(store, org, released, session, exclude=member_ids)
    if handed_on is not None:
        handed_on += made
    return members
