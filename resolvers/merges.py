"""Merge sets: merging contacts under a new canonical contact, and undoing the latest merge.

A merge set is one ``merge_sets`` document ``{_id, org, canonicalId, memberIds, history}``.
Its members are the canonical contact (editable, ``canonicalId`` = itself) and ancestors
(``readOnly``, ``canonicalId`` = the set's canonical). Every member has ``mergeSetId`` set
and never expires.

A MERGE creates a new canonical contact from the inputs (each input is a canonical contact:
standalone, or the head of a set). When inputs already head sets, the largest set survives
(grows) and the others are absorbed into it. The MERGE history entry carries what undoing it
needs, so an UNMERGE restores the state before the merge exactly:

- ``inputs``: per input, the full contact document before the merge and the identifier
  documents it held;
- ``sets``: per input set, its ``_id``, ``canonicalId``, ``memberIds`` and the ids of its
  history events (the absorbed sets' events are moved into the survivor's history, which
  stays the whole tree's history, oldest first).

Identifiers on merge: every identifier an input holds moves to the new canonical contact
(same document, new ``contactId``, ``claimedAt`` = merge time, no expiry). A field claim stays
``via: "field"`` when the new canonical's own fields list the value, otherwise it becomes
``via: "merge"`` (sticky: no field lists it, but it belongs to the set); interaction and merge
claims keep their ``via``. The new canonical then claims the values its fields list that no
input held, by the ordinary field rule (with ``since`` = its oldest input's).

Identifiers on unmerge: a snapshotted claim still held by the removed canonical goes back to
its input exactly as it was (same document); one the removed canonical lost meanwhile is
claimed again by the claim rule; the removed canonical's other claims (made after the merge)
are released and re-claimed by the oldest live contact listing each value; finally every
restored input claims the values its fields list by the field rule.

Merge and unmerge each run as ONE transaction (``Store.in_transaction``): inputs are re-read
inside it and every write goes to what was read (a concurrent change to it is a write
conflict that retries the transaction), so concurrent merges over an overlapping contact
serialize or fail with CONFLICT, and a failed step leaves no trace. Write filters name only
indexed fields (``{org, _id}`` plus ``readOnly`` on ``org_id_state``, ``{org, contactId,
key}`` for claims): a predicate beyond an index makes the embedded server scan.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from pymongo import ReplaceOne
from pymongo.asynchronous.client_session import AsyncClientSession

from resolvers import bulk_claims, claims, contacts, merge_history
from resolvers.bulk_claims import Wanted
from resolvers.changes import ChangeKind, record_change
from resolvers.clock import now
from resolvers.contact_fields import (
    EMAIL_FIELDS,
    MAX_EXTERNAL_IDS,
    NAME_FIELDS,
    PHONE_FIELDS,
    SOCIAL_FIELDS,
    ContactType,
    clean_input,
    has_pii,
)
from resolvers.documents import (
    ClaimDoc,
    ContactDoc,
    ContactFields,
    ExternalIdDoc,
    MergeEntryDoc,
    MergeEvidenceDoc,
    MergeSetDoc,
    SetSnapshotDoc,
    field_of,
)
from resolvers.errors import BadUserInput, Conflict, MergeNotAllowed, NotFound
from resolvers.principal import Principal
from resolvers.store import Store

MIN_INPUTS = 2
MAX_INPUTS = 25
MAX_SET_SIZE = 52

MERGE = "MERGE"
UNMERGE = "UNMERGE"

CHANGED = "the merge set changed concurrently; try again"


async def get_merge_set(store: Store, org: str, contact_id: str) -> MergeSetDoc | None:
    """The merge set of any member (canonical or ancestor); None when never merged or unknown."""
    doc = await contacts.get_exact(store, org, contact_id)
    if doc is None or not doc.get("mergeSetId"):
        return None
    return await store.merge_sets.find_one({"_id": doc["mergeSetId"], "org": org})


async def merge_contacts(
    store: Store,
    principal: Principal,
    contact_ids: Sequence[str],
    value_override_patch: Mapping[str, Any] | None = None,
    *,
    evidence: MergeEvidenceDoc | None = None,
) -> ContactDoc:
    """Merge the contacts' canonical contacts under a new canonical contact; returns it.

    ``evidence``: the score and reasons of a merge of probable duplicates, kept on its event."""
    ids = [str(i) for i in contact_ids]
    if not MIN_INPUTS <= len(ids) <= MAX_INPUTS:
        raise BadUserInput(f"a merge takes {MIN_INPUTS} to {MAX_INPUTS} contact ids")
    override = clean_input(value_override_patch or {}, store.config.default_region)

    async def work(session: AsyncClientSession) -> ContactDoc:
        return await _merge(store, principal, ids, override, session, evidence)

    return await store.in_transaction(work)


async def unmerge_contacts(store: Store, principal: Principal, contact_id: str) -> list[ContactDoc]:
    """Undo the latest merge of the contact's set; returns the restored contacts."""

    async def work(session: AsyncClientSession) -> list[ContactDoc]:
        return await _unmerge(store, principal, str(contact_id), session)

    return await store.in_transaction(work)


# --- merge -------------------------------------------------------------------------------


@dataclass
class _Merge:
    """What a merge read and decided, before it writes anything."""

    org: str
    session: AsyncClientSession
    inputs: list[ContactDoc]
    input_sets: dict[str, MergeSetDoc]  # by the id of the input heading the set
    canonical: ContactDoc
    survivor: MergeSetDoc | None  # the input set that grows; None: a new set
    held: list[ClaimDoc]  # every claim the inputs hold
    members: list[str]
    event: MergeEntryDoc

    @property
    def input_ids(self) -> list[str]:
        return [doc["_id"] for doc in self.inputs]

    @property
    def set_id(self) -> str:
        return self.canonical["mergeSetId"] or ""


async def _merge(
    store: Store,
    principal: Principal,
    ids: list[str],
    override: ContactFields,
    session: AsyncClientSession,
    evidence: MergeEvidenceDoc | None = None,
) -> ContactDoc:
    merge = await _plan_merge(store, principal, ids, override, session)
    if evidence is not None:
        merge.event["score"] = evidence["score"]
        merge.event["reasons"] = evidence["reasons"]
    await store.contacts.insert_one(merge.canonical, session=session)
    await _make_ancestors(store, merge)
    await _move_claims(store, merge)
    await _write_merge_set(store, merge)
    await merge_history.record(store, merge.org, merge.event, merge.members, session)
    await _claim_new_values(store, merge)
    await record_change(
        store,
        session,
        org=merge.org,
        kind=ChangeKind.CONTACTS_MERGED,
        by=principal.sub,
        contact_id=merge.canonical["_id"],
        contact_ids=[merge.canonical["_id"], *merge.input_ids],
    )
    return merge.canonical


async def _plan_merge(
    store: Store,
    principal: Principal,
    ids: list[str],
    override: ContactFields,
    session: AsyncClientSession,
) -> _Merge:
    org = principal.org
    inputs = await _read_inputs(store, org, ids, session)
    input_sets = await _read_input_sets(store, org, inputs, session)
    _check_size(inputs, input_sets)
    moment = now()
    survivor = _survivor(inputs, input_sets)
    set_id = survivor["_id"] if survivor is not None else contacts.new_id()
    canonical = _new_canonical(store, org, inputs, override, set_id, moment)
    held = await store.identifiers.find(
        {"org": org, "contactId": {"$in": [doc["_id"] for doc in inputs]}}, session=session
    ).to_list()
    members = _members(inputs, input_sets, survivor, canonical["_id"])
    event = _merge_event(principal, moment, canonical["_id"], inputs, input_sets, held)
    return _Merge(org, session, inputs, input_sets, canonical, survivor, held, members, event)


async def _read_inputs(
    store: Store, org: str, ids: list[str], session: AsyncClientSession
) -> list[ContactDoc]:
    """The distinct canonical contacts of ``ids``; at least two, at most one CURATED."""
    inputs: list[ContactDoc] = []
    for contact_id in ids:
        doc = await contacts.get_canonical(store, org, contact_id, session=session)
        if doc is None:
            raise NotFound(f"no contact with id {contact_id}")
        if doc["readOnly"] or doc["canonicalId"] != doc["_id"]:
            raise Conflict(CHANGED)
        if all(doc["_id"] != seen["_id"] for seen in inputs):
            inputs.append(doc)
    if len(inputs) < MIN_INPUTS:
        raise BadUserInput("these ids are already one contact: a merge needs two different ones")
    if sum(1 for doc in inputs if doc["type"] == ContactType.CURATED) > 1:
        raise MergeNotAllowed("at most one curated contact can be merged")
    return inputs


async def _read_input_sets(
    store: Store, org: str, inputs: list[ContactDoc], session: AsyncClientSession
) -> dict[str, MergeSetDoc]:
    """The merge sets the inputs head, by input id."""
    input_sets: dict[str, MergeSetDoc] = {}
    for doc in inputs:
        if doc.get("mergeSetId"):
            merge_set = await store.merge_sets.find_one(
                {"_id": doc["mergeSetId"], "org": org}, session=session
            )
            if merge_set is None or merge_set["canonicalId"] != doc["_id"]:
                raise Conflict(CHANGED)
            input_sets[doc["_id"]] = merge_set
    return input_sets


def _check_size(inputs: list[ContactDoc], input_sets: dict[str, MergeSetDoc]) -> None:
    size = 1 + sum(
        len(input_sets[d["_id"]]["memberIds"]) if d["_id"] in input_sets else 1 for d in inputs
    )
    if size > MAX_SET_SIZE:
        raise MergeNotAllowed(
            f"a merge set has at most {MAX_SET_SIZE} members; this one would have {size}"
        )


def _new_canonical(
    store: Store,
    org: str,
    inputs: list[ContactDoc],
    override: ContactFields,
    set_id: str,
    moment: datetime,
) -> ContactDoc:
    fields = merged_fields(inputs, override)
    kind = _merged_type(inputs, fields)
    canonical = contacts.new_contact_doc(store, org, fields, kind, moment=moment)
    canonical["since"] = min(doc["since"] for doc in inputs)
    canonical["mergeSetId"] = set_id
    return canonical


def _members(
    inputs: list[ContactDoc],
    input_sets: dict[str, MergeSetDoc],
    survivor: MergeSetDoc | None,
    canonical_id: str,
) -> list[str]:
    """The merged set's members: the survivor's, every other input (with its set), the new
    canonical last."""
    members = [*(survivor["memberIds"] if survivor is not None else [])]
    for doc in inputs:
        if survivor is not None and doc["_id"] == survivor["canonicalId"]:
            continue
        merge_set = input_sets.get(doc["_id"])
        members.extend(merge_set["memberIds"] if merge_set is not None else [doc["_id"]])
    members.append(canonical_id)
    return members


def _merge_event(
    principal: Principal,
    moment: datetime,
    canonical_id: str,
    inputs: list[ContactDoc],
    input_sets: dict[str, MergeSetDoc],
    held: list[ClaimDoc],
) -> MergeEntryDoc:
    """The MERGE history entry, with the snapshots undoing it needs."""
    return {
        "id": contacts.new_id(),
        "kind": MERGE,
        "at": moment,
        "by": principal.sub,
        "inputIds": [doc["_id"] for doc in inputs],
        "canonicalId": canonical_id,
        "inputs": [
            {"contact": doc, "identifiers": [c for c in held if c["contactId"] == doc["_id"]]}
            for doc in inputs
        ],
        "sets": [
            {
                "_id": merge_set["_id"],
                "canonicalId": merge_set["canonicalId"],
                "memberIds": merge_set["memberIds"],
                "eventIds": [e["id"] for e in merge_set.get("history", [])],
            }
            for merge_set in input_sets.values()
        ],
    }


async def _make_ancestors(store: Store, merge: _Merge) -> None:
    """The inputs become read-only ancestors of the new canonical; the older ancestors of
    their sets follow it."""
    canonical_id, set_id, org = merge.canonical["_id"], merge.set_id, merge.org
    result = await store.contacts.update_many(
        {"org": org, "_id": {"$in": merge.input_ids}},  # read in this transaction: still canonical
        {
            "$set": {
                "readOnly": True,
                "canonicalId": canonical_id,
                "mergeSetId": set_id,
                "expiresAt": None,
            }
        },
        session=merge.session,
    )
    _expect(result.matched_count, len(merge.inputs))
    ancestors = [
        member
        for merge_set in merge.input_sets.values()
        for member in merge_set["memberIds"]
        if member != merge_set["canonicalId"]
    ]
    if ancestors:
        result = await store.contacts.update_many(
            {"org": org, "_id": {"$in": ancestors}},
            {"$set": {"canonicalId": canonical_id, "mergeSetId": set_id}},
            session=merge.session,
        )
        _expect(result.matched_count, len(ancestors))


async def _move_claims(store: Store, merge: _Merge) -> None:
    """Every identifier of the inputs moves to the new canonical; a field claim its fields
    do not list becomes a merge claim."""
    if not merge.held:
        return
    canonical = merge.canonical
    result = await store.identifiers.update_many(
        # exactly ``held``: same snapshot
        {"org": merge.org, "contactId": {"$in": merge.input_ids}},
        {
            "$set": {
                "contactId": canonical["_id"],
                "claimedAt": canonical["createdAt"],  # the merge time
                "expiresAt": None,
            }
        },
        session=merge.session,
    )
    _expect(result.matched_count, len(merge.held))
    unlisted = [
        c["key"]
        for c in merge.held
        if c.get("via") == claims.VIA_FIELD and c["key"] not in canonical["keys"]
    ]
    if unlisted:
        await store.identifiers.update_many(
            {"org": merge.org, "contactId": canonical["_id"], "key": {"$in": unlisted}},
            {"$set": {"via": claims.VIA_MERGE}},
            session=merge.session,
        )


async def _write_merge_set(store: Store, merge: _Merge) -> None:
    """Grow the survivor (absorbing the other input sets) or start a new set."""
    survivor, org = merge.survivor, merge.org
    if survivor is None:
        await store.merge_sets.insert_one(
            {
                "_id": merge.set_id,
                "org": org,
                "canonicalId": merge.canonical["_id"],
                "memberIds": merge.members,
                "history": [merge.event],
            },
            session=merge.session,
        )
        return
    absorbed = [s for s in merge.input_sets.values() if s["_id"] != survivor["_id"]]
    history = list(survivor.get("history", []))
    for merge_set in absorbed:
        history.extend(merge_set.get("history", []))
    if absorbed:
        history.sort(key=lambda e: (e["at"], e["id"]))
    result = await store.merge_sets.update_one(
        {"_id": survivor["_id"], "org": org, "canonicalId": survivor["canonicalId"]},
        {
            "$set": {
                "canonicalId": merge.canonical["_id"],
                "memberIds": merge.members,
                "history": [*history, merge.event],
            }
        },
        session=merge.session,
    )
    _expect(result.matched_count, 1)
    if absorbed:
        deleted = await store.merge_sets.delete_many(
            {"_id": {"$in": [s["_id"] for s in absorbed]}, "org": org}, session=merge.session
        )
        _expect(deleted.deleted_count, len(absorbed))


async def _claim_new_values(store: Store, merge: _Merge) -> None:
    """Values the canonical lists that no input held: the ordinary field rule."""
    moved = {c["key"] for c in merge.held}
    canonical = merge.canonical
    await claims.claim_all(
        store,
        merge.org,
        [k for k in canonical["keys"] if k not in moved],
        canonical,
        claims.VIA_FIELD,
        session=merge.session,
    )


def _survivor(inputs: list[ContactDoc], input_sets: dict[str, MergeSetDoc]) -> MergeSetDoc | None:
    """The input set that grows: the largest, ties to the oldest canonical."""
    candidates = [d for d in inputs if d["_id"] in input_sets]
    if not candidates:
        return None
    best = min(candidates, key=lambda d: (-len(input_sets[d["_id"]]["memberIds"]), claims.rank(d)))
    return input_sets[best["_id"]]


def _merged_type(inputs: list[ContactDoc], fields: ContactFields) -> ContactType:
    if any(doc["type"] == ContactType.CURATED for doc in inputs):
        return ContactType.CURATED
    if any(has_pii(doc) for doc in inputs) or has_pii(fields):
        return ContactType.IDENTIFIED
    return ContactType.EPHEMERAL


def merged_fields(inputs: Sequence[ContactDoc], override: Mapping[str, Any]) -> ContactFields:
    """The new canonical's fields: the override where given, else the most recently modified
    input with a value; losing phones and emails move to free phone and email fields.

    ``externalIds`` are the union (most recent first, at most ``MAX_EXTERNAL_IDS``) and
    ``surveyOptOut`` is true when any input opted out, unless the override gives them.
    """
    recent = sorted(inputs, key=lambda d: (d["modifiedAt"], d["_id"]), reverse=True)
    fields: ContactFields = {}
    # the address is taken whole from one input, never mixed from several
    for field in (*NAME_FIELDS, *PHONE_FIELDS, *EMAIL_FIELDS, *SOCIAL_FIELDS, "address"):
        if field in override:
            fields[field] = override[field]
        else:
            fields[field] = next((field_of(d, field) for d in recent if field_of(d, field)), None)
    fields["externalIds"] = (
        override["externalIds"] if "externalIds" in override else _external_ids_union(recent)
    )
    fields["surveyOptOut"] = (
        bool(override["surveyOptOut"])
        if "surveyOptOut" in override
        else any(d["surveyOptOut"] for d in recent)
    )
    for group in (PHONE_FIELDS, EMAIL_FIELDS):
        _keep_losing_values(fields, group, recent, override)
    return fields


def _external_ids_union(recent: list[ContactDoc]) -> list[ExternalIdDoc]:
    union: list[ExternalIdDoc] = []
    for doc in recent:
        for ext in doc.get("externalIds") or []:
            if ext not in union and len(union) < MAX_EXTERNAL_IDS:
                union.append({"source": ext["source"], "value": ext["value"]})
    return union


def _keep_losing_values(
    fields: ContactFields,
    group: tuple[str, ...],
    recent: list[ContactDoc],
    override: Mapping[str, Any],
) -> None:
    """The group's values no chosen field holds fill the group's free fields, most recent
    input first."""
    present = {fields[f] for f in group if fields[f]}
    free = [f for f in group if fields[f] is None and f not in override]
    for doc in recent:
        for field in group:
            value = field_of(doc, field)
            if free and value and value not in present:
                fields[free.pop(0)] = value
                present.add(value)


# --- unmerge -----------------------------------------------------------------------------


@dataclass
class _Unmerge:
    """The set being undone, its latest merge, and what undoing it restores."""

    org: str
    session: AsyncClientSession
    merge_set: MergeSetDoc
    event: MergeEntryDoc  # the MERGE undone (with its snapshots)
    moment: datetime

    @property
    def canonical_id(self) -> str:
        return self.merge_set["canonicalId"]


async def _unmerge(
    store: Store, principal: Principal, contact_id: str, session: AsyncClientSession
) -> list[ContactDoc]:
    undo = await _latest_merge(store, principal.org, contact_id, session)
    deleted = await store.contacts.delete_one(
        {"_id": undo.canonical_id, "org": undo.org, "readOnly": False},  # the set's head now
        session=session,
    )
    _expect(deleted.deleted_count, 1)
    restored = await _restore_inputs(store, undo)
    await _reattach_ancestors(store, undo)
    entry = _unmerge_event(principal, undo)
    await _restore_sets(store, undo, entry)
    await merge_history.record(store, undo.org, entry, undo.merge_set["memberIds"], session)
    await _restore_claims(store, undo, restored)
    await _hand_on_links(store, undo, min(restored, key=claims.rank))
    await record_change(
        store,
        session,
        org=undo.org,
        kind=ChangeKind.CONTACTS_UNMERGED,
        by=principal.sub,
        contact_id=undo.canonical_id,
        contact_ids=[undo.canonical_id, *(doc["_id"] for doc in restored)],
    )
    return restored


async def _latest_merge(
    store: Store, org: str, contact_id: str, session: AsyncClientSession
) -> _Unmerge:
    """The contact's set and the merge that made its current canonical."""
    doc = await contacts.get_exact(store, org, contact_id, session=session)
    if doc is None:
        raise NotFound(f"no contact with id {contact_id}")
    if not doc.get("mergeSetId"):
        raise BadUserInput("this contact was never merged: there is nothing to unmerge")
    merge_set = await store.merge_sets.find_one(
        {"_id": doc["mergeSetId"], "org": org}, session=session
    )
    if merge_set is None:
        raise Conflict(CHANGED)
    canonical_id = merge_set["canonicalId"]
    event = next(
        (
            e
            for e in reversed(merge_set.get("history", []))
            if e["kind"] == MERGE and e["canonicalId"] == canonical_id and "inputs" in e
        ),
        None,
    )
    if event is None:
        raise Conflict("the merge set has no merge to undo")
    return _Unmerge(org, session, merge_set, event, now())


async def _restore_inputs(store: Store, undo: _Unmerge) -> list[ContactDoc]:
    """The inputs as they were before the merge (a passed expiry gets a fresh lifetime)."""
    retention = timedelta(days=store.config.retention_days)
    restored: list[ContactDoc] = []
    for item in undo.event.get("inputs", []):
        contact = item["contact"].copy()
        expires = contact.get("expiresAt")
        if expires is not None and expires <= undo.moment:
            # its old expiry passed while it was merged: give it a fresh lifetime, not oblivion
            contact["expiresAt"] = undo.moment + retention
        result = await store.contacts.replace_one(
            {"_id": contact["_id"], "org": undo.org, "readOnly": True},
            contact,
            session=undo.session,
        )
        _expect(result.matched_count, 1)
        restored.append(contact)
    return restored


async def _reattach_ancestors(store: Store, undo: _Unmerge) -> None:
    """The older ancestors follow their own set's canonical again."""
    for snap in undo.event.get("sets", []):
        ancestors = [m for m in snap["memberIds"] if m != snap["canonicalId"]]
        if ancestors:
            result = await store.contacts.update_many(
                {"org": undo.org, "_id": {"$in": ancestors}},
                {"$set": {"canonicalId": snap["canonicalId"], "mergeSetId": snap["_id"]}},
                session=undo.session,
            )
            _expect(result.matched_count, len(ancestors))


def _unmerge_event(principal: Principal, undo: _Unmerge) -> MergeEntryDoc:
    return {
        "id": contacts.new_id(),
        "kind": UNMERGE,
        "at": undo.moment,
        "by": principal.sub,
        "inputIds": list(undo.event["inputIds"]),
        "canonicalId": undo.canonical_id,
        "undoes": undo.event["id"],
    }


async def _restore_sets(store: Store, undo: _Unmerge, entry: MergeEntryDoc) -> None:
    """The survivor shrinks back, absorbed sets come back, a set the merge started goes."""
    history = undo.merge_set.get("history", [])
    by_id = {e["id"]: e for e in history}
    survivor_snap: SetSnapshotDoc | None = None
    for snap in undo.event.get("sets", []):
        if snap["_id"] == undo.merge_set["_id"]:
            survivor_snap = snap
            continue
        await store.merge_sets.insert_one(
            {
                "_id": snap["_id"],
                "org": undo.org,
                "canonicalId": snap["canonicalId"],
                "memberIds": snap["memberIds"],
                "history": [by_id[i] for i in snap["eventIds"] if i in by_id],
            },
            session=undo.session,
        )
    if survivor_snap is None:
        # the merge started this set: undoing it leaves no set (and no member pointing at one)
        deleted = await store.merge_sets.delete_one(
            {"_id": undo.merge_set["_id"], "org": undo.org, "canonicalId": undo.canonical_id},
            session=undo.session,
        )
        _expect(deleted.deleted_count, 1)
        return
    result = await store.merge_sets.update_one(
        {"_id": undo.merge_set["_id"], "org": undo.org, "canonicalId": undo.canonical_id},
        {
            "$set": {
                "canonicalId": survivor_snap["canonicalId"],
                "memberIds": survivor_snap["memberIds"],
                "history": _shrunk_history(undo, survivor_snap, entry),
            }
        },
        session=undo.session,
    )
    _expect(result.matched_count, 1)


def _shrunk_history(
    undo: _Unmerge, survivor_snap: SetSnapshotDoc, entry: MergeEntryDoc
) -> list[MergeEntryDoc]:
    """The survivor's history before the merge, then its later events (the undone merge
    without its snapshots, marked undone), then the UNMERGE."""
    history = undo.merge_set.get("history", [])
    by_id = {e["id"]: e for e in history}
    snapshotted = {i for snap in undo.event.get("sets", []) for i in snap["eventIds"]}
    done = undo.event.copy()
    done.pop("inputs", None)
    done.pop("sets", None)
    done["undoneBy"] = entry["id"]
    later = [done if e["id"] == done["id"] else e for e in history if e["id"] not in snapshotted]
    return [*(by_id[i] for i in survivor_snap["eventIds"] if i in by_id), *later, entry]


async def _hand_on_links(store: Store, undo: _Unmerge, oldest: ContactDoc) -> None:
    """Notes written on the removed canonical, and conversations linked to it (recorded while
    the set existed), stay with the set's oldest input; every other link stays exact."""
    await store.notes.update_many(
        {"org": undo.org, "contactId": undo.canonical_id},
        {"$set": {"contactId": oldest["_id"]}},
        session=undo.session,
    )
    await store.conversations.update_many(
        {"org": undo.org, "externalContactId": undo.canonical_id},
        {"$set": {"externalContactId": oldest["_id"]}},
        session=undo.session,
    )


async def _restore_claims(store: Store, undo: _Unmerge, restored: list[ContactDoc]) -> None:
    """Snapshotted claims the removed canonical still holds go back as they were; its other
    claims are released and re-claimed by the claim rule; claims an input lost meanwhile are
    claimed again; every restored input claims the values its fields list."""
    org, canonical_id, session = undo.org, undo.canonical_id, undo.session
    held = await store.identifiers.find(
        {"org": org, "contactId": canonical_id}, session=session
    ).to_list()
    held_by_key = {c["key"]: c for c in held}
    returned, lost = await _return_snapshotted(store, undo, restored, held_by_key)
    released = await claims.release(
        store,
        org,
        canonical_id,
        [k for k in held_by_key if k not in returned],
        session=session,
    )
    await claims.reclaim(store, org, released, exclude=[canonical_id], session=session)
    wanted: list[Wanted] = list(lost)
    for contact in sorted(restored, key=claims.rank):
        wanted.extend((k, contact, claims.VIA_FIELD) for k in contact["keys"])
    await bulk_claims.claim_many(store, org, wanted, session)  # one read, not one per key


async def _return_snapshotted(
    store: Store,
    undo: _Unmerge,
    restored: list[ContactDoc],
    held_by_key: dict[str, ClaimDoc],
) -> tuple[set[str], list[Wanted]]:
    """Each input's snapshotted claims, put back; returns the keys returned and the claims
    the removed canonical had lost (key, input, via)."""
    by_contact = {c["_id"]: c for c in restored}
    back: list[tuple[ClaimDoc, ClaimDoc]] = []  # (current, the snapshot to put back)
    lost: list[Wanted] = []
    for item in undo.event.get("inputs", []):
        contact = by_contact[item["contact"]["_id"]]
        for snap in item["identifiers"]:
            current = held_by_key.get(snap["key"])
            if current is None:
                lost.append((snap["key"], contact, snap.get("via", claims.VIA_FIELD)))
                continue
            claim = snap.copy()
            claim["expiresAt"] = contact.get("expiresAt")
            back.append((current, claim))
    await _put_back(store, undo, back)
    return {claim["key"] for _, claim in back}, lost


async def _put_back(store: Store, undo: _Unmerge, back: list[tuple[ClaimDoc, ClaimDoc]]) -> None:
    """Each snapshot in place of the claim the removed canonical holds for its key: replaced
    in one command where it is the same claim, else deleted and inserted (one each)."""
    held = {"org": undo.org, "contactId": undo.canonical_id}
    same = [claim for current, claim in back if current["_id"] == claim["_id"]]
    other = [claim for current, claim in back if current["_id"] != claim["_id"]]
    if same:
        replaces = [ReplaceOne({**held, "key": c["key"]}, c) for c in same]
        result = await store.identifiers.bulk_write(replaces, session=undo.session)
        _expect(result.matched_count, len(same))
    if other:
        keys = [c["key"] for c in other]
        gone = await store.identifiers.delete_many(
            {**held, "key": {"$in": keys}}, session=undo.session
        )
        _expect(gone.deleted_count, len(other))
        await store.identifiers.insert_many(other, session=undo.session)


def _expect(count: int, wanted: int) -> None:
    if count != wanted:
        raise Conflict(CHANGED)
