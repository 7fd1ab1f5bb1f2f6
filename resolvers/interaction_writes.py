"""recordInteraction's writes that the change feed sees, each one transaction with its changes.

- :func:`create_auto_contact`: the auto-created contact and its claim on the interaction's
  top identifier (CONTACT_CREATED, IDENTIFIER_CLAIMED). The unique claim index still decides
  a race: the loser's transaction writes nothing, and it resolves again.
- :func:`stitch`: the interaction's unclaimed identifiers claimed by its contact
  (IDENTIFIER_CLAIMED each), fenced against a concurrent merge by touching the contact.
- :func:`undo`: after a later step failed, the contact created or the claims stitched are
  removed again, with their changes (CONTACT_DELETED, IDENTIFIER_RELEASED): the feed never
  shows a write that does not exist, and a consumer sees it undone.

A recording that needs none of them (a known contact, identifiers already claimed) writes
no change and runs no transaction, as before.
"""

from __future__ import annotations

import contextlib

from pymongo.asynchronous.client_session import AsyncClientSession
from pymongo.errors import DuplicateKeyError, PyMongoError

from resolvers import claims
from resolvers.changes import (
    ChangeKind,
    NewChange,
    claimed_changes,
    record_changes,
    reserve_ahead,
)
from resolvers.documents import ContactDoc
from resolvers.store import Store


class _Lost(Exception):
    """Another contact won the claim: this attempt writes nothing."""


async def create_auto_contact(
    store: Store, org: str, by: str, draft: ContactDoc, first_key: str | None
) -> bool:
    """Store ``draft`` if it wins the claim on ``first_key``; False when another contact
    holds it (nothing written: resolve again)."""

    async def work(session: AsyncClientSession) -> None:
        # the feed positions are reserved while the contact and its claim are written
        ahead = reserve_ahead(store, session, org, 2 if first_key is not None else 1)
        await store.contacts.insert_one(draft, session=session)
        found = [NewChange(ChangeKind.CONTACT_CREATED, draft["_id"])]
        if first_key is not None:
            winner = await claims.claim(
                store, org, first_key, draft, claims.VIA_INTERACTION, session=session
            )
            if winner != draft["_id"]:
                raise _Lost
            found.append(
                NewChange(ChangeKind.IDENTIFIER_CLAIMED, draft["_id"], identifier=first_key)
            )
        await record_changes(store, session, org=org, by=by, changes=found, ahead=ahead)

    try:
        await store.in_transaction(work)
    except (_Lost, DuplicateKeyError):  # a concurrent first claim committed meanwhile
        return False
    return True


async def stitch(
    store: Store, org: str, by: str, contact: ContactDoc, keys: list[str]
) -> list[str]:
    """Claim ``keys`` for ``contact`` where the rules allow; returns the keys it claimed.
    Nothing when the contact became an ancestor or went meanwhile."""

    async def work(session: AsyncClientSession) -> list[str]:
        # the fence: a concurrent merge (which writes the contact) conflicts with this
        touched = await store.contacts.update_one(
            {"_id": contact["_id"], "org": org, "readOnly": False},
            {"$inc": {"claimSeq": 1}},
            session=session,
        )
        if touched.matched_count == 0:
            return []
        claimed: list[str] = []
        for identifier_key in keys:
            holder = await claims.claim(
                store, org, identifier_key, contact, claims.VIA_INTERACTION, session=session
            )
            if holder == contact["_id"]:
                claimed.append(identifier_key)
        found = [
            NewChange(ChangeKind.IDENTIFIER_CLAIMED, contact["_id"], identifier=k) for k in claimed
        ]
        await record_changes(store, session, org=org, by=by, changes=found)
        return claimed

    return await store.in_transaction(work)


async def reclaim(store: Store, org: str, by: str, keys: list[str]) -> None:
    """Hand unclaimed ``keys`` to the oldest live contacts that list them (IDENTIFIER_CLAIMED
    for each claim made), in one transaction."""

    async def work(session: AsyncClientSession) -> None:
        made = await claims.reclaim(store, org, keys, session=session)
        await record_changes(store, session, org=org, by=by, changes=claimed_changes(made))

    await store.in_transaction(work)


async def undo(
    store: Store,
    org: str,
    by: str,
    contact: ContactDoc | None,
    *,
    created: bool,
    stitched: list[str],
) -> None:
    """Best effort after a failed recording: no auto-created contact or new claim remains,
    and the feed says so."""
    if contact is None or not (created or stitched):
        return
    contact_id = contact["_id"]

    async def work(session: AsyncClientSession) -> None:
        if created:
            await store.identifiers.delete_many(
                {"org": org, "contactId": contact_id}, session=session
            )
            await store.contacts.delete_one({"_id": contact_id, "org": org}, session=session)
            found = [NewChange(ChangeKind.CONTACT_DELETED, contact_id)]
        else:
            await store.identifiers.delete_many(
                {"org": org, "contactId": contact_id, "key": {"$in": stitched}}, session=session
            )
            found = [
                NewChange(ChangeKind.IDENTIFIER_RELEASED, contact_id, identifier=k)
                for k in stitched
            ]
        await record_changes(store, session, org=org, by=by, changes=found)

    with contextlib.suppress(PyMongoError):
        await store.in_transaction(work)
