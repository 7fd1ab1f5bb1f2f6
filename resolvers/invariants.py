"""Invariant checks over the stored data: what ``scv check`` and the tests look for.

Each violation is one human-readable line. The checks read the ``contacts``,
``identifiers`` and ``merge_sets`` collections with small projections; they do not
change anything.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime
from typing import Any

from resolvers import claims, liveness
from resolvers.clock import now
from resolvers.contact_fields import ContactType
from resolvers.documents import ClaimDoc, ContactDoc, MergeSetDoc
from resolvers.store import Store

CONTACT_PROJECTION = {
    "org": 1,
    "type": 1,
    "canonicalId": 1,
    "mergeSetId": 1,
    "readOnly": 1,
    "expiresAt": 1,
    "keys": 1,
}
IDENTIFIER_PROJECTION = {"org": 1, "key": 1, "contactId": 1, "expiresAt": 1, "via": 1}
SET_PROJECTION = {"org": 1, "canonicalId": 1, "memberIds": 1}


async def find_violations(store: Store, org: str | None = None) -> list[str]:
    """Every broken invariant of one org (or of all orgs), as readable lines; [] when sound.

    - every (unexpired) identifier points to a live canonical contact of its org, and
      expires with it; no two identifiers share ``(org, key)``; a claim made through a
      field (``via: field``) is on a contact whose fields still list the value (claims made
      through an interaction or a merge are sticky and need not be listed);
    - no contact is in two merge sets; every member of a set says so (``mergeSetId``);
      the canonical is editable and its own canonical; every other member is a readOnly
      ancestor whose canonical is the set's canonical; no member expires;
    - a contact that is an ancestor (readOnly or another canonical) belongs to a set;
    - a live auto-created (IDENTIFIED/EPHEMERAL) canonical contact outside merge sets has
      an expiry, and a CURATED contact has none.
    """
    scope: dict[str, Any] = {} if org is None else {"org": org}
    moment = now()
    people = {doc["_id"]: doc async for doc in store.contacts.find(scope, CONTACT_PROJECTION)}
    found: list[str] = []
    seen_keys: dict[tuple[str, str], int] = defaultdict(int)
    async for ident in store.identifiers.find(scope, IDENTIFIER_PROJECTION):
        seen_keys[(ident["org"], ident["key"])] += 1
        if liveness.is_expired(ident, moment):
            continue  # stale: free for the taking, and swept by the TTL index
        holder = people.get(ident["contactId"])
        if holder is None and org is not None:
            holder = await store.contacts.find_one({"_id": ident["contactId"]}, CONTACT_PROJECTION)
        found.extend(_claim_violations(ident, holder, moment))
    for (key_org, identifier_key), count in seen_keys.items():
        if count > 1:
            found.append(f"identifier {identifier_key} (org {key_org}) is stored {count} times")
    set_of: dict[str, list[str]] = defaultdict(list)
    async for merge_set in store.merge_sets.find(scope, SET_PROJECTION):
        found.extend(_set_violations(merge_set, people, set_of))
    for member_id, set_ids in set_of.items():
        if len(set_ids) > 1:
            found.append(f"contact {member_id} is in {len(set_ids)} merge sets: {set_ids}")
    for doc in people.values():
        found.extend(_contact_violations(doc, set_of, moment))
    return found


def _claim_violations(ident: ClaimDoc, holder: ContactDoc | None, moment: datetime) -> list[str]:
    """A live claim points to a live canonical contact of its org that lists a field claim,
    and expires with it."""
    where = f"identifier {ident['key']} (org {ident['org']})"
    if holder is None:
        return [f"{where} points to missing contact {ident['contactId']}"]
    if holder["org"] != ident["org"]:
        return [f"{where} points to contact {holder['_id']} of another org"]
    if liveness.is_expired(holder, moment):
        return [f"{where} outlives its expired contact {holder['_id']}"]
    if holder.get("readOnly") or holder.get("canonicalId") != holder["_id"]:
        return [f"{where} points to ancestor {holder['_id']}, not a canonical contact"]
    if ident.get("expiresAt") != holder.get("expiresAt"):
        return [
            f"{where} expires at {ident.get('expiresAt')}, its contact {holder['_id']} "
            f"at {holder.get('expiresAt')}"
        ]
    if ident.get("via") == claims.VIA_FIELD and ident["key"] not in holder.get("keys", []):
        return [
            f"{where} is claimed through a field by contact {holder['_id']}, "
            "which no longer lists it"
        ]
    return []


def _set_violations(
    merge_set: MergeSetDoc, people: dict[str, ContactDoc], set_of: dict[str, list[str]]
) -> list[str]:
    """A set lists each member once, its canonical among them; records each member's set in
    ``set_of``."""
    where = f"merge set {merge_set['_id']} (org {merge_set['org']})"
    member_ids: list[str] = merge_set.get("memberIds") or []
    canonical_id = merge_set.get("canonicalId")
    found: list[str] = []
    if len(set(member_ids)) != len(member_ids):
        found.append(f"{where} lists a member twice")
    if canonical_id not in member_ids:
        found.append(f"{where}: its canonical {canonical_id} is not a member")
    for member_id in dict.fromkeys(member_ids):
        set_of[member_id].append(merge_set["_id"])
        member = people.get(member_id)
        if member is None:
            found.append(f"{where}: member {member_id} is missing")
        else:
            found.extend(_member_violations(where, merge_set, member))
    return found


def _member_violations(where: str, merge_set: MergeSetDoc, member: ContactDoc) -> list[str]:
    """A member is of the set's org, says it is in the set, never expires; the canonical is
    editable and its own canonical, every other member a readOnly alias of it."""
    member_id, canonical_id = member["_id"], merge_set.get("canonicalId")
    found: list[str] = []
    if member["org"] != merge_set["org"]:
        found.append(f"{where}: member {member_id} belongs to another org")
    if member.get("mergeSetId") != merge_set["_id"]:
        found.append(f"{where}: member {member_id} says it is in set {member.get('mergeSetId')}")
    if member.get("expiresAt") is not None:
        found.append(f"{where}: member {member_id} expires")
    if member_id == canonical_id:
        if member.get("readOnly") or member.get("canonicalId") != member_id:
            found.append(f"{where}: canonical {member_id} is not editable and canonical")
    elif not member.get("readOnly") or member.get("canonicalId") != canonical_id:
        found.append(
            f"{where}: ancestor {member_id} is not a readOnly alias of {canonical_id} "
            f"(readOnly={member.get('readOnly')}, canonicalId={member.get('canonicalId')})"
        )
    return found


def _contact_violations(
    doc: ContactDoc, set_of: dict[str, list[str]], moment: datetime
) -> list[str]:
    """An ancestor belongs to a set that lists it; an auto-created canonical outside sets
    expires, a CURATED contact never does."""
    contact_id = doc["_id"]
    where = f"contact {contact_id} (org {doc['org']})"
    set_id = doc.get("mergeSetId")
    found: list[str] = []
    if set_id is not None and contact_id not in set_of:
        found.append(f"{where} says it is in merge set {set_id}, which does not list it")
    if set_id is None and (doc.get("readOnly") or doc.get("canonicalId") != contact_id):
        found.append(f"{where} is an ancestor outside any merge set")
    if liveness.is_expired(doc, moment):
        return found
    auto = doc.get("type") in (ContactType.IDENTIFIED, ContactType.EPHEMERAL)
    if auto and set_id is None and doc.get("expiresAt") is None:
        found.append(f"{where} is auto-created ({doc.get('type')}) and never expires")
    if doc.get("type") == ContactType.CURATED and doc.get("expiresAt") is not None:
        found.append(f"{where} is CURATED and expires")
    return found
