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
from datetime import timedelta
from typing import Any

from pymongo.asynchronous.client_session import AsyncClientSession

from resolvers import claims, contacts, merge_history
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
from resolvers.errors import BadUserInput, Conflict, MergeNotAllowed, NotFound
from resolvers.principal import Principal
from resolvers.store import Doc, Store

MIN_INPUTS = 2
MAX_INPUTS = 25
MAX_SET_SIZE = 52

MERGE = "MERGE"
UNMERGE = "UNMERGE"


async def get_merge_set(store: Store, org: str, contact_id: str) -> Doc | None:
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
) -> Doc:
    """Merge the contacts' canonical contacts under a new canonical contact; returns it."""
    ids = [str(i) for i in contact_ids]
    if not MIN_INPUTS <= len(ids) <= MAX_INPUTS:
        raise BadUserInput(f"a merge takes {MIN_INPUTS} to {MAX_INPUTS} contact ids")
    override = clean_input(value_override_patch or {}, store.config.default_region)

    async def work(session: AsyncClientSession) -> Doc:
        return await _merge(store, principal, ids, override, session)

    return await store.in_transaction(work)


async def unmerge_contacts(store: Store, principal: Principal, contact_id: str) -> list[Doc]:
    """Undo the latest merge of the contact's set; returns the restored contacts."""

    async def work(session: AsyncClientSession) -> list[Doc]:
        return await _unmerge(store, principal, str(contact_id), session)

    return await store.in_transaction(work)


# --- merge -------------------------------------------------------------------------------


async def _merge(
    store: Store,
    principal: Principal,
    ids: list[str],
    override: Doc,
    session: AsyncClientSession,
) -> Doc:
    org = principal.org
    inputs: list[Doc] = []
    for contact_id in ids:
        doc = await contacts.get_canonical(store, org, contact_id, session=session)
        if doc is None:
            raise NotFound(f"no contact with id {contact_id}")
        if doc["readOnly"] or doc["canonicalId"] != doc["_id"]:
            raise Conflict("the merge set changed concurrently; try again")
        if all(doc["_id"] != seen["_id"] for seen in inputs):
            inputs.append(doc)
    if len(inputs) < MIN_INPUTS:
        raise BadUserInput("these ids are already one contact: a merge needs two different ones")
    if sum(1 for doc in inputs if doc["type"] == ContactType.CURATED) > 1:
        raise MergeNotAllowed("at most one curated contact can be merged")

    input_sets: dict[str, Doc] = {}
    for doc in inputs:
        if doc.get("mergeSetId"):
            merge_set = await store.merge_sets.find_one(
                {"_id": doc["mergeSetId"], "org": org}, session=session
            )
            if merge_set is None or merge_set["canonicalId"] != doc["_id"]:
                raise Conflict("the merge set changed concurrently; try again")
            input_sets[doc["_id"]] = merge_set
    size = 1 + sum(
        len(input_sets[d["_id"]]["memberIds"]) if d["_id"] in input_sets else 1 for d in inputs
    )
    if size > MAX_SET_SIZE:
        raise MergeNotAllowed(
            f"a merge set has at most {MAX_SET_SIZE} members; this one would have {size}"
        )

    moment = now()
    fields = merged_fields(inputs, override)
    canonical = contacts.new_contact_doc(
        store, org, fields, _merged_type(inputs, fields), moment=moment
    )
    canonical["since"] = min(doc["since"] for doc in inputs)
    survivor = _survivor(inputs, input_sets)
    set_id = survivor["_id"] if survivor is not None else contacts.new_id()
    canonical["mergeSetId"] = set_id
    canonical_id = canonical["_id"]
    input_ids = [doc["_id"] for doc in inputs]

    held = await store.identifiers.find(
        {"org": org, "contactId": {"$in": input_ids}}, session=session
    ).to_list()
    ancestors = [
        member
        for merge_set in input_sets.values()
        for member in merge_set["memberIds"]
        if member != merge_set["canonicalId"]
    ]
    members = [*(survivor["memberIds"] if survivor is not None else [])]
    for doc in inputs:
        if survivor is not None and doc["_id"] == survivor["canonicalId"]:
            continue
        merge_set = input_sets.get(doc["_id"])
        members.extend(merge_set["memberIds"] if merge_set is not None else [doc["_id"]])
    members.append(canonical_id)

    event: Doc = {
        "id": contacts.new_id(),
        "kind": MERGE,
        "at": moment,
        "by": principal.sub,
        "inputIds": input_ids,
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

    # 1. the new canonical contact
    await store.contacts.insert_one(canonical, session=session)
    # 2. the inputs become ancestors
    result = await store.contacts.update_many(
        {"org": org, "_id": {"$in": input_ids}},  # read in this transaction: still canonical
        {
            "$set": {
                "readOnly": True,
                "canonicalId": canonical_id,
                "mergeSetId": set_id,
                "expiresAt": None,
            }
        },
        session=session,
    )
    _expect(result.matched_count, len(input_ids))
    # 3. the older ancestors of the input sets follow the new canonical
    if ancestors:
        result = await store.contacts.update_many(
            {"org": org, "_id": {"$in": ancestors}},
            {"$set": {"canonicalId": canonical_id, "mergeSetId": set_id}},
            session=session,
        )
        _expect(result.matched_count, len(ancestors))
    # 4. every identifier of the inputs moves to the new canonical
    if held:
        result = await store.identifiers.update_many(
            {"org": org, "contactId": {"$in": input_ids}},  # exactly ``held``: same snapshot
            {"$set": {"contactId": canonical_id, "claimedAt": moment, "expiresAt": None}},
            session=session,
        )
        _expect(result.matched_count, len(held))
        unlisted = [
            c["key"]
            for c in held
            if c.get("via") == claims.VIA_FIELD and c["key"] not in canonical["keys"]
        ]
        if unlisted:
            await store.identifiers.update_many(
                {"org": org, "contactId": canonical_id, "key": {"$in": unlisted}},
                {"$set": {"via": claims.VIA_MERGE}},
                session=session,
            )
    # 5. the merge set: grow the survivor (absorbing the other sets) or start a new one
    if survivor is not None:
        history = list(survivor.get("history", []))
        absorbed = [s for s in input_sets.values() if s["_id"] != survivor["_id"]]
        for merge_set in absorbed:
            history.extend(merge_set.get("history", []))
        if absorbed:
            history.sort(key=lambda e: (e["at"], e["id"]))
        result = await store.merge_sets.update_one(
            {"_id": survivor["_id"], "org": org, "canonicalId": survivor["canonicalId"]},
            {
                "$set": {
                    "canonicalId": canonical_id,
                    "memberIds": members,
                    "history": [*history, event],
                }
            },
            session=session,
        )
        _expect(result.matched_count, 1)
        if absorbed:
            deleted = await store.merge_sets.delete_many(
                {"_id": {"$in": [s["_id"] for s in absorbed]}, "org": org}, session=session
            )
            _expect(deleted.deleted_count, len(absorbed))
    else:
        await store.merge_sets.insert_one(
            {
                "_id": set_id,
                "org": org,
                "canonicalId": canonical_id,
                "memberIds": members,
                "history": [event],
            },
            session=session,
        )
    await merge_history.record(store, org, event, members, session)
    # 6. values the canonical lists that no input held: the ordinary field rule
    moved = {c["key"] for c in held}
    await claims.claim_all(
        store,
        org,
        [k for k in canonical["keys"] if k not in moved],
        canonical,
        claims.VIA_FIELD,
        session=session,
    )
    return canonical


def _survivor(inputs: list[Doc], input_sets: dict[str, Doc]) -> Doc | None:
    """The input set that grows: the largest, ties to the oldest canonical."""
    candidates = [d for d in inputs if d["_id"] in input_sets]
    if not candidates:
        return None
    best = min(candidates, key=lambda d: (-len(input_sets[d["_id"]]["memberIds"]), claims.rank(d)))
    return input_sets[best["_id"]]


def _merged_type(inputs: list[Doc], fields: Doc) -> ContactType:
    if any(doc["type"] == ContactType.CURATED for doc in inputs):
        return ContactType.CURATED
    if any(has_pii(doc) for doc in inputs) or has_pii(fields):
        return ContactType.IDENTIFIED
    return ContactType.EPHEMERAL


def merged_fields(inputs: Sequence[Doc], override: Mapping[str, Any]) -> Doc:
    """The new canonical's fields: the override where given, else the most recently modified
    input with a value; losing phones and emails move to free phone and email fields.

    ``externalIds`` are the union (most recent first, at most ``MAX_EXTERNAL_IDS``) and
    ``surveyOptOut`` is true when any input opted out, unless the override gives them.
    """
    recent = sorted(inputs, key=lambda d: (d["modifiedAt"], d["_id"]), reverse=True)
    fields: Doc = {}
    # the address is taken whole from one input, never mixed from several
    for field in (*NAME_FIELDS, *PHONE_FIELDS, *EMAIL_FIELDS, *SOCIAL_FIELDS, "address"):
        if field in override:
            fields[field] = override[field]
        else:
            fields[field] = next((d[field] for d in recent if d.get(field)), None)
    if "externalIds" in override:
        fields["externalIds"] = override["externalIds"]
    else:
        union: list[Doc] = []
        for doc in recent:
            for ext in doc.get("externalIds") or []:
                if ext not in union and len(union) < MAX_EXTERNAL_IDS:
                    union.append({"source": ext["source"], "value": ext["value"]})
        fields["externalIds"] = union
    if "surveyOptOut" in override:
        fields["surveyOptOut"] = bool(override["surveyOptOut"])
    else:
        fields["surveyOptOut"] = any(bool(d.get("surveyOptOut")) for d in recent)
    for group in (PHONE_FIELDS, EMAIL_FIELDS):
        present = {fields[f] for f in group if fields[f]}
        free = [f for f in group if fields[f] is None and f not in override]
        for doc in recent:
            for field in group:
                value = doc.get(field)
                if free and value and value not in present:
                    fields[free.pop(0)] = value
                    present.add(value)
    return fields


# --- unmerge -----------------------------------------------------------------------------


async def _unmerge(
    store: Store, principal: Principal, contact_id: str, session: AsyncClientSession
) -> list[Doc]:
    org = principal.org
    doc = await contacts.get_exact(store, org, contact_id, session=session)
    if doc is None:
        raise NotFound(f"no contact with id {contact_id}")
    if not doc.get("mergeSetId"):
        raise BadUserInput("this contact was never merged: there is nothing to unmerge")
    merge_set = await store.merge_sets.find_one(
        {"_id": doc["mergeSetId"], "org": org}, session=session
    )
    if merge_set is None:
        raise Conflict("the merge set changed concurrently; try again")
    canonical_id = merge_set["canonicalId"]
    history: list[Doc] = list(merge_set.get("history", []))
    event = next(
        (
            e
            for e in reversed(history)
            if e["kind"] == MERGE and e["canonicalId"] == canonical_id and "inputs" in e
        ),
        None,
    )
    if event is None:
        raise Conflict("the merge set has no merge to undo")
    moment = now()
    retention = timedelta(days=store.config.retention_days)

    # 1. the canonical contact the merge created goes
    deleted = await store.contacts.delete_one(
        {"_id": canonical_id, "org": org, "readOnly": False},  # the set's head in this snapshot
        session=session,
    )
    _expect(deleted.deleted_count, 1)
    # 2. the inputs are restored as they were before the merge
    restored: list[Doc] = []
    for item in event["inputs"]:
        contact = dict(item["contact"])
        expires = contact.get("expiresAt")
        if expires is not None and expires <= moment:
            # its old expiry passed while it was merged: give it a fresh lifetime, not oblivion
            contact["expiresAt"] = moment + retention
        result = await store.contacts.replace_one(
            {"_id": contact["_id"], "org": org, "readOnly": True},
            contact,
            session=session,
        )
        _expect(result.matched_count, 1)
        restored.append(contact)
    # 3. the older ancestors follow their own set's canonical again
    for snap in event["sets"]:
        ancestors = [m for m in snap["memberIds"] if m != snap["canonicalId"]]
        if ancestors:
            result = await store.contacts.update_many(
                {"org": org, "_id": {"$in": ancestors}},
                {"$set": {"canonicalId": snap["canonicalId"], "mergeSetId": snap["_id"]}},
                session=session,
            )
            _expect(result.matched_count, len(ancestors))
    # 4. the sets: the survivor shrinks back, absorbed sets come back, a new set goes
    by_id = {e["id"]: e for e in history}
    undo: Doc = {
        "id": contacts.new_id(),
        "kind": UNMERGE,
        "at": moment,
        "by": principal.sub,
        "inputIds": list(event["inputIds"]),
        "canonicalId": canonical_id,
        "undoes": event["id"],
    }
    done = {key: value for key, value in event.items() if key not in ("inputs", "sets")}
    done["undoneBy"] = undo["id"]
    snapshotted = {i for snap in event["sets"] for i in snap["eventIds"]}
    survivor_snap: Doc | None = None
    for snap in event["sets"]:
        if snap["_id"] == merge_set["_id"]:
            survivor_snap = snap
            continue
        await store.merge_sets.insert_one(
            {
                "_id": snap["_id"],
                "org": org,
                "canonicalId": snap["canonicalId"],
                "memberIds": snap["memberIds"],
                "history": [by_id[i] for i in snap["eventIds"] if i in by_id],
            },
            session=session,
        )
    if survivor_snap is not None:
        later = [
            done if e["id"] == event["id"] else e for e in history if e["id"] not in snapshotted
        ]
        result = await store.merge_sets.update_one(
            {"_id": merge_set["_id"], "org": org, "canonicalId": canonical_id},
            {
                "$set": {
                    "canonicalId": survivor_snap["canonicalId"],
                    "memberIds": survivor_snap["memberIds"],
                    "history": [
                        *(by_id[i] for i in survivor_snap["eventIds"] if i in by_id),
                        *later,
                        undo,
                    ],
                }
            },
            session=session,
        )
        _expect(result.matched_count, 1)
    else:
        # the merge started this set: undoing it leaves no set (and no member pointing at one)
        deleted = await store.merge_sets.delete_one(
            {"_id": merge_set["_id"], "org": org, "canonicalId": canonical_id}, session=session
        )
        _expect(deleted.deleted_count, 1)
    await merge_history.record(store, org, undo, merge_set["memberIds"], session)
    # 5. identifiers
    await _restore_claims(store, org, canonical_id, event, restored, session)
    # 6. notes written on the removed canonical stay with the set's oldest input
    oldest = min(restored, key=claims.rank)
    await store.notes.update_many(
        {"org": org, "contactId": canonical_id},
        {"$set": {"contactId": oldest["_id"]}},
        session=session,
    )
    # 7. conversations linked to the removed canonical (recorded while the set existed) are
    #    not orphaned either: they move to the same input; every other link stays exact
    await store.conversations.update_many(
        {"org": org, "externalContactId": canonical_id},
        {"$set": {"externalContactId": oldest["_id"]}},
        session=session,
    )
    return restored


async def _restore_claims(
    store: Store,
    org: str,
    canonical_id: str,
    event: Doc,
    restored: list[Doc],
    session: AsyncClientSession,
) -> None:
    held = await store.identifiers.find(
        {"org": org, "contactId": canonical_id}, session=session
    ).to_list()
    held_by_key = {c["key"]: c for c in held}
    by_contact = {c["_id"]: c for c in restored}
    returned: set[str] = set()
    lost: list[tuple[str, Doc, str]] = []
    for item in event["inputs"]:
        contact = by_contact[item["contact"]["_id"]]
        for snap in item["identifiers"]:
            current = held_by_key.get(snap["key"])
            if current is None:
                lost.append((snap["key"], contact, snap.get("via", claims.VIA_FIELD)))
                continue
            claim = {**snap, "expiresAt": contact.get("expiresAt")}
            if current["_id"] == claim["_id"]:
                result = await store.identifiers.replace_one(
                    {"org": org, "contactId": canonical_id, "key": current["key"]},
                    claim,
                    session=session,
                )
                _expect(result.matched_count, 1)
            else:
                gone = await store.identifiers.delete_one(
                    {"org": org, "contactId": canonical_id, "key": current["key"]},
                    session=session,
                )
                _expect(gone.deleted_count, 1)
                await store.identifiers.insert_one(claim, session=session)
            returned.add(snap["key"])
    # claims the removed canonical made after the merge: released, then the claim rule
    released = await claims.release(
        store,
        org,
        canonical_id,
        [k for k in held_by_key if k not in returned],
        session=session,
    )
    await claims.reclaim(store, org, released, exclude=[canonical_id], session=session)
    # claims an input held before the merge that its canonical lost meanwhile
    for identifier_key, contact, via in lost:
        await claims.claim(store, org, identifier_key, contact, via, session=session)
    # and every value an input lists, by the field rule (older listers keep theirs)
    for contact in sorted(restored, key=claims.rank):
        await claims.claim_all(
            store, org, contact["keys"], contact, claims.VIA_FIELD, session=session
        )


def _expect(count: int, wanted: int) -> None:
    if count != wanted:
        raise Conflict("the merge set changed concurrently; try again")
