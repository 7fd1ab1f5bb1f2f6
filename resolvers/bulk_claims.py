"""Claims for many contacts at once, inside one transaction: the batch form of
:func:`claims.claim`, :func:`claims.release` and :func:`claims.reclaim`.

Each function reads everything it decides on with one command (the claims of all keys, the
holders of all claims, the listers of all keys), applies the single-claim rules
(:func:`claims.claim_stands`, :func:`claims.rank`) in memory, in the order it was given,
and writes with at most two commands. The number of database round trips therefore does
not grow with the number of contacts or keys. The snapshot of the caller's transaction
makes the read-then-write safe: a concurrent claim on one of the keys surfaces as a write
conflict or duplicate key that aborts and retries the whole transaction (as
``claims._read_or_insert`` relies on for one key).
"""

from __future__ import annotations

from collections.abc import Sequence

from pymongo import UpdateOne
from pymongo.asynchronous.client_session import AsyncClientSession

from resolvers import blocked_identifiers, claims
from resolvers.clock import now
from resolvers.documents import ClaimDoc, ContactDoc
from resolvers.errors import Conflict
from resolvers.liveness import is_live
from resolvers.store import Store

# (identifier key, the contact that wants it, how: claims.VIA_FIELD …)
Wanted = tuple[str, ContactDoc, str]
LISTER_PROJECTION = {"since": 1, "expiresAt": 1, "readOnly": 1, "keys": 1}


async def claim_many(
    store: Store,
    org: str,
    wanted: Sequence[Wanted],
    session: AsyncClientSession,
    *,
    changed: set[str] | None = None,
) -> dict[str, str]:
    """:func:`claims.claim` for each wish, in order; returns each key's holder id after, and
    adds the keys whose claim it made or moved to ``changed``.
    Blocked values (:mod:`resolvers.blocked_identifiers`) are left out, as ``claim_all`` does.

    Four reads at most (the org's block list, claims, holders outside the batch) and two writes (new claims in one
    ``insert_many``, taken-over claims in one ``bulk_write``)."""
    keys = list(dict.fromkeys(k for k, _, _ in wanted))
    usable = set(await blocked_identifiers.usable_keys(store, org, keys, session=session))
    wanted = [w for w in wanted if w[0] in usable]  # a blocked value is never claimed
    keys = [k for k in keys if k in usable]
    if not wanted:
        return {}
    found = await store.identifiers.find(
        {"org": org, "key": {"$in": keys}}, session=session
    ).to_list()
    current: dict[str, ClaimDoc] = {d["key"]: d for d in found}
    holders = await _holders(store, org, wanted, list(current.values()), session)
    state = dict(current)
    moment = now()
    for identifier_key, contact, via in wanted:
        held = state.get(identifier_key)
        if held is not None and (
            held["contactId"] == contact["_id"]
            or claims.claim_stands(held, holders.get(held["contactId"]), contact, via, moment)
        ):
            continue
        state[identifier_key] = claims.claim_doc(org, identifier_key, contact, via)
        if changed is not None:
            changed.add(identifier_key)
    await _write(store, org, current, state, session)
    return {k: state[k]["contactId"] for k in keys}


async def _holders(
    store: Store,
    org: str,
    wanted: Sequence[Wanted],
    found: list[ClaimDoc],
    session: AsyncClientSession,
) -> dict[str, ContactDoc]:
    """The contacts holding ``found`` claims (one read), and the batch's own contacts."""
    own = {contact["_id"]: contact for _, contact, _ in wanted}
    outside = list({d["contactId"] for d in found} - set(own))
    holders: dict[str, ContactDoc] = {}
    if outside:
        cursor = store.contacts.find(
            {"org": org, "_id": {"$in": outside}}, claims.HOLDER_PROJECTION, session=session
        )
        holders = {h["_id"]: h for h in await cursor.to_list()}
    holders.update(own)
    return holders


async def _write(
    store: Store,
    org: str,
    current: dict[str, ClaimDoc],
    state: dict[str, ClaimDoc],
    session: AsyncClientSession,
) -> None:
    inserts = [doc for k, doc in state.items() if k not in current]
    moves = [
        UpdateOne({"org": org, "key": k, "contactId": current[k]["contactId"]}, {"$set": doc})
        for k, doc in state.items()
        if k in current and doc is not current[k]
    ]
    if inserts:
        await store.identifiers.insert_many(inserts, session=session)
    if moves:
        moved = await store.identifiers.bulk_write(moves, session=session)
        if moved.matched_count != len(moves):
            raise Conflict("an identifier is being changed concurrently; try again")


async def release_many(
    store: Store,
    org: str,
    held: Sequence[tuple[str, Sequence[str] | None]],
    session: AsyncClientSession,
    *,
    only_via: str | None = None,
) -> list[tuple[str, str]]:
    """:func:`claims.release` for each (contact id, its keys or None for all); returns the
    released (key, former holder) pairs. One read, one delete."""
    wanted = {contact_id: None if keys is None else set(keys) for contact_id, keys in held}
    if not wanted or all(keys is not None and not keys for keys in wanted.values()):
        return []
    found = await store.identifiers.find(
        {"org": org, "contactId": {"$in": list(wanted)}},
        {"key": 1, "via": 1, "contactId": 1},
        session=session,
    ).to_list()
    dropped = [
        d
        for d in found
        if (only_via is None or d.get("via") == only_via)
        and (wanted[d["contactId"]] is None or d["key"] in (wanted[d["contactId"]] or ()))
    ]
    if dropped:
        await store.identifiers.delete_many(
            {"_id": {"$in": [d["_id"] for d in dropped]}}, session=session
        )
    return [(d["key"], d["contactId"]) for d in dropped]


async def reclaim_many(
    store: Store,
    org: str,
    released: Sequence[tuple[str, str]],
    session: AsyncClientSession,
    *,
    exclude: Sequence[str] = (),
) -> list[tuple[str, str]]:
    """:func:`claims.reclaim` for each released (key, former holder): the oldest live contact
    listing the key, other than its former holder and ``exclude``, claims it. One read of
    all listers, then :func:`claim_many`. Returns the (key, contact id) claims it made, as
    ``claims.reclaim`` does (each one an IDENTIFIER_CLAIMED change)."""
    if not released:
        return []
    keys = list(dict.fromkeys(k for k, _ in released))
    listers = await store.contacts.find(
        {"org": org, "keys": {"$in": keys}}, LISTER_PROJECTION, session=session
    ).to_list()
    moment = now()
    skip = set(exclude)
    wanted: list[Wanted] = []
    for identifier_key, former in released:
        candidates = [
            d
            for d in listers
            if identifier_key in d["keys"]
            and d["_id"] not in skip
            and d["_id"] != former
            and is_live(d, moment)
        ]
        if candidates:
            wanted.append((identifier_key, min(candidates, key=claims.rank), claims.VIA_FIELD))
    holders = await claim_many(store, org, wanted, session)
    return [(k, c["_id"]) for k, c, _ in wanted if holders.get(k) == c["_id"]]
