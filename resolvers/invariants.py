"""Invariant checks over the stored data: what ``scv check`` and the tests look for.

Each violation is one human-readable line. The checks read the ``contacts``,
``identifiers`` and ``merge_sets`` collections with small projections; they do not
change anything.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from resolvers import claims
from resolvers.clock import now
from resolvers.contact_fields import ContactType
from resolvers.store import Doc, Store

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
    found: list[str] = []

    people: dict[str, Doc] = {}
    async for doc in store.contacts.find(scope, CONTACT_PROJECTION):
        people[doc["_id"]] = doc

    # identifiers
    seen_keys: dict[tuple[str, str], int] = defaultdict(int)
    async for ident in store.identifiers.find(scope, IDENTIFIER_PROJECTION):
        where = f"identifier {ident['key']} (org {ident['org']})"
        seen_keys[(ident["org"], ident["key"])] += 1
        if claims.is_expired(ident, moment):
            continue  # stale: free for the taking, and swept by the TTL index
        holder = people.get(ident["contactId"])
        if holder is None and org is not None:
            holder = await store.contacts.find_one({"_id": ident["contactId"]}, CONTACT_PROJECTION)
        if holder is None:
            found.append(f"{where} points to missing contact {ident['contactId']}")
        elif holder["org"] != ident["org"]:
            found.append(f"{where} points to contact {holder['_id']} of another org")
        elif claims.is_expired(holder, moment):
            found.append(f"{where} outlives its expired contact {holder['_id']}")
        elif holder.get("readOnly") or holder.get("canonicalId") != holder["_id"]:
            found.append(f"{where} points to ancestor {holder['_id']}, not a canonical contact")
        elif ident.get("expiresAt") != holder.get("expiresAt"):
            found.append(
                f"{where} expires at {ident.get('expiresAt')}, its contact {holder['_id']} "
                f"at {holder.get('expiresAt')}"
            )
        elif ident.get("via") == claims.VIA_FIELD and ident["key"] not in holder.get("keys", []):
            found.append(
                f"{where} is claimed through a field by contact {holder['_id']}, "
                "which no longer lists it"
            )
    for (key_org, identifier_key), count in seen_keys.items():
        if count > 1:
            found.append(f"identifier {identifier_key} (org {key_org}) is stored {count} times")

    # merge sets
    set_of: dict[str, list[str]] = defaultdict(list)
    sets: dict[str, Doc] = {}
    async for merge_set in store.merge_sets.find(scope, SET_PROJECTION):
        sets[merge_set["_id"]] = merge_set
        where = f"merge set {merge_set['_id']} (org {merge_set['org']})"
        member_ids: list[str] = merge_set.get("memberIds") or []
        canonical_id = merge_set.get("canonicalId")
        if len(set(member_ids)) != len(member_ids):
            found.append(f"{where} lists a member twice")
        if canonical_id not in member_ids:
            found.append(f"{where}: its canonical {canonical_id} is not a member")
        for member_id in dict.fromkeys(member_ids):
            set_of[member_id].append(merge_set["_id"])
            member = people.get(member_id)
            if member is None:
                found.append(f"{where}: member {member_id} is missing")
                continue
            if member["org"] != merge_set["org"]:
                found.append(f"{where}: member {member_id} belongs to another org")
            if member.get("mergeSetId") != merge_set["_id"]:
                found.append(
                    f"{where}: member {member_id} says it is in set {member.get('mergeSetId')}"
                )
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
    for member_id, set_ids in set_of.items():
        if len(set_ids) > 1:
            found.append(f"contact {member_id} is in {len(set_ids)} merge sets: {set_ids}")

    # contacts
    for contact_id, doc in people.items():
        where = f"contact {contact_id} (org {doc['org']})"
        set_id = doc.get("mergeSetId")
        if set_id is not None and contact_id not in set_of:
            found.append(f"{where} says it is in merge set {set_id}, which does not list it")
        if set_id is None and (doc.get("readOnly") or doc.get("canonicalId") != contact_id):
            found.append(f"{where} is an ancestor outside any merge set")
        if claims.is_expired(doc, moment):
            continue
        auto = doc.get("type") in (ContactType.IDENTIFIED, ContactType.EPHEMERAL)
        if auto and set_id is None and doc.get("expiresAt") is None:
            found.append(f"{where} is auto-created ({doc.get('type')}) and never expires")
        if doc.get("type") == ContactType.CURATED and doc.get("expiresAt") is not None:
            found.append(f"{where} is CURATED and expires")
    return found
