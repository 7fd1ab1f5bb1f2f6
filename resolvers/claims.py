"""Claiming identifiers: the unique ``{org, key}`` index on ``identifiers`` decides every race.

A claim says which (canonical) contact an identifier points to. Rules:
- a contact claims the values its fields list; when several contacts list a value, the one
  created first (``since``, ties by id) holds it, also when their creations race;
- a claim made through an interaction or a merge is sticky: it stays until its holder is
  deleted or unmerged;
- a claim whose holder is gone, expired or an ancestor is stale and may be taken over.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from pymongo.asynchronous.client_session import AsyncClientSession
from pymongo.errors import DuplicateKeyError

from resolvers import blocked_identifiers
from resolvers.clock import now
from resolvers.documents import ClaimDoc, ContactDoc
from resolvers.errors import Conflict
from resolvers.identifiers import split_key
from resolvers.liveness import is_expired, is_live
from resolvers.store import Store

VIA_FIELD = "field"
VIA_INTERACTION = "interaction"
VIA_MERGE = "merge"

MAX_CLAIM_ATTEMPTS = 16

HOLDER_PROJECTION = {"since": 1, "readOnly": 1, "expiresAt": 1}


def oldest_first(docs: list[ContactDoc]) -> list[ContactDoc]:
    return sorted(docs, key=lambda d: (d["createdAt"], d["_id"]))


def rank(contact: Mapping[str, Any]) -> tuple[datetime, str]:
    """Claim priority: the contact created first wins (a merge set is as old as its oldest)."""
    return (contact["since"], contact["_id"])


def claim_doc(org: str, identifier_key: str, contact: ContactDoc, via: str) -> ClaimDoc:
    """The claim ``contact`` makes on ``identifier_key`` now (it expires with the contact)."""
    kind, value = split_key(identifier_key)
    return {
        "org": org,
        "key": identifier_key,
        "type": str(kind),
        "value": value,
        "contactId": contact["_id"],
        "claimedAt": now(),
        "via": via,
        "expiresAt": contact.get("expiresAt"),
    }


async def claim(
    store: Store,
    org: str,
    identifier_key: str,
    contact: ContactDoc,
    via: str,
    *,
    session: AsyncClientSession | None = None,
) -> str:
    """Claim ``identifier_key`` for ``contact`` if the rules allow; returns the holder's id after.

    Outside a transaction the insert goes first and the unique index decides. Inside one
    (``session`` given) the snapshot is read first: a concurrent insert then surfaces as a
    write conflict or duplicate key that aborts and retries the whole transaction.
    """
    contact_id: str = contact["_id"]
    for _ in range(MAX_CLAIM_ATTEMPTS):
        if session is None:
            found = await _insert_or_read(store, org, identifier_key, contact, via)
        else:
            found = await _read_or_insert(store, org, identifier_key, contact, via, session)
        if isinstance(found, str):
            return found  # decided
        if found is None:
            continue  # released in between: try again
        holder_id = found["contactId"]
        if holder_id == contact_id:
            return contact_id
        if await _claim_stands(store, org, found, contact, via, session):
            return holder_id
        replaced = await store.identifiers.update_one(
            {"org": org, "contactId": holder_id, "key": identifier_key},
            {"$set": claim_doc(org, identifier_key, contact, via)},
            session=session,
        )
        if replaced.modified_count == 1:
            if session is None:
                return await _confirm_holder(store, org, identifier_key, contact_id)
            return contact_id
    raise Conflict("the identifier is being changed concurrently; try again")


async def _insert_or_read(
    store: Store, org: str, identifier_key: str, contact: ContactDoc, via: str
) -> str | ClaimDoc | None:
    """Outside a transaction: the holder's id when the insert won, else the current claim."""
    try:
        await store.identifiers.insert_one(claim_doc(org, identifier_key, contact, via))
    except DuplicateKeyError:
        return await store.identifiers.find_one({"org": org, "key": identifier_key})
    return await _confirm_holder(store, org, identifier_key, contact["_id"])


async def _read_or_insert(
    store: Store,
    org: str,
    identifier_key: str,
    contact: ContactDoc,
    via: str,
    session: AsyncClientSession,
) -> str | ClaimDoc:
    """Inside a transaction: the current claim, or the contact's id when there was none."""
    current = await store.identifiers.find_one({"org": org, "key": identifier_key}, session=session)
    if current is not None:
        return current
    await store.identifiers.insert_one(
        claim_doc(org, identifier_key, contact, via), session=session
    )
    return contact["_id"]


async def _claim_stands(
    store: Store,
    org: str,
    current: ClaimDoc,
    contact: ContactDoc,
    via: str,
    session: AsyncClientSession | None,
) -> bool:
    """Whether ``current`` holds against ``contact``: it is not stale (its holder gone,
    expired or an ancestor, or itself expired), and it is sticky or its holder ranks first."""
    holder = await store.contacts.find_one(
        {"_id": current["contactId"], "org": org}, HOLDER_PROJECTION, session=session
    )
    return claim_stands(current, holder, contact, via, now())


def claim_stands(
    current: ClaimDoc,
    holder: Mapping[str, Any] | None,
    contact: Mapping[str, Any],
    via: str,
    moment: datetime,
) -> bool:
    """The rule of :func:`_claim_stands` on a holder already read (``HOLDER_PROJECTION``;
    None when gone): batch claims (resolvers/bulk_claims.py) read all holders at once."""
    if (
        holder is None
        or holder.get("readOnly", False)
        or is_expired(holder, moment)
        or is_expired(current, moment)
    ):
        return False
    if via != VIA_FIELD or current.get("via") != VIA_FIELD:
        return True
    return rank(holder) <= rank(contact)


async def _confirm_holder(store: Store, org: str, identifier_key: str, contact_id: str) -> str:
    """Make a claim written outside a transaction safe against a concurrent merge.

    Touching the holder after the claim is written means a merge transaction that makes the
    holder an ancestor either sees the claim (its snapshot is later) or hits a write conflict
    on the holder and retries. If the holder already is an ancestor, the claim moves to its
    canonical contact; if it is gone, the claim is dropped again.
    """
    touched = await store.contacts.update_one(
        {"_id": contact_id, "org": org, "readOnly": False}, {"$inc": {"claimSeq": 1}}
    )
    if touched.matched_count == 1:
        return contact_id
    holder = await store.contacts.find_one(
        {"_id": contact_id, "org": org}, {"canonicalId": 1, "readOnly": 1}
    )
    if holder is None:
        await store.identifiers.delete_one(
            {"org": org, "key": identifier_key, "contactId": contact_id}
        )
        return contact_id
    canonical_id: str = holder["canonicalId"]
    await store.identifiers.update_one(
        {"org": org, "key": identifier_key, "contactId": contact_id},
        {"$set": {"contactId": canonical_id, "via": VIA_MERGE, "expiresAt": None}},
    )
    return canonical_id


async def claim_all(
    store: Store,
    org: str,
    keys: list[str],
    contact: ContactDoc,
    via: str,
    *,
    session: AsyncClientSession | None = None,
) -> None:
    """Claim each key the rules allow; blocked values are never claimed."""
    keys = await blocked_identifiers.usable_keys(store, org, keys, session=session)
    for identifier_key in keys:
        await claim(store, org, identifier_key, contact, via, session=session)


async def reclaim(
    store: Store,
    org: str,
    keys: list[str],
    *,
    exclude: list[str] | None = None,
    session: AsyncClientSession | None = None,
) -> None:
    """Give each released key to the oldest live contact that lists it (if any).

    The query names only indexed fields (``{org, keys}``); liveness is checked here, so every
    server can answer it from the index."""
    skip = set(exclude or ())
    keys = await blocked_identifiers.usable_keys(store, org, keys, session=session)
    moment = now()
    for identifier_key in keys:
        cursor = store.contacts.find(
            {"org": org, "keys": identifier_key},
            {"since": 1, "expiresAt": 1, "readOnly": 1},
            session=session,
        )
        candidates = [
            d for d in await cursor.to_list() if d["_id"] not in skip and is_live(d, moment)
        ]
        if candidates:
            oldest = min(candidates, key=rank)
            await claim(store, org, identifier_key, oldest, VIA_FIELD, session=session)


async def release(
    store: Store,
    org: str,
    contact_id: str,
    keys: list[str] | None = None,
    *,
    only_via: str | None = None,
    session: AsyncClientSession | None = None,
) -> list[str]:
    """Drop the contact's claims (all, or those of ``keys``); returns the released keys."""
    if keys is not None and not keys:
        return []
    query: dict[str, Any] = {"org": org, "contactId": contact_id}
    if keys is not None:
        query["key"] = {"$in": keys}
    found = await store.identifiers.find(query, {"key": 1, "via": 1}, session=session).to_list()
    held = [d["key"] for d in found if only_via is None or d.get("via") == only_via]
    if not held:
        return []
    await store.identifiers.delete_many(
        {"org": org, "contactId": contact_id, "key": {"$in": held}}, session=session
    )
    return held


async def set_claims_expiry(
    store: Store,
    org: str,
    contact_ids: list[str],
    expires_at: datetime | None,
    *,
    session: AsyncClientSession | None = None,
) -> None:
    """Claims expire with their holder, so an expired contact's identifiers become free."""
    await store.identifiers.update_many(
        {"org": org, "contactId": {"$in": contact_ids}},
        {"$set": {"expiresAt": expires_at}},
        session=session,
    )
