"""claimIdentifier / releaseIdentifier: an agent moves an identifier by hand (CONTRACT
section 6), e.g. "this cookie is not this person".

- ``claimIdentifier`` gives a free value, or one held within the same merge set, to the
  contact's canonical contact; a value another live contact holds is ``CONFLICT``, a blocked
  one ``BAD_USER_INPUT``. The claim is sticky (like one made through an interaction).
- ``releaseIdentifier`` frees a value no live contact lists in its fields; a value still
  listed in a field is ``BAD_USER_INPUT`` (edit the contact instead), an unclaimed one
  ``NOT_FOUND``.

Each is one transaction: the claim document is read in the snapshot, so a concurrent claim
of the same value aborts and retries it (the unique ``{org, key}`` index decides).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pymongo.asynchronous.client_session import AsyncClientSession

from resolvers import blocked_identifiers, claims, liveness
from resolvers.changes import ChangeKind, record_change
from resolvers.clock import now
from resolvers.contacts import require_canonical
from resolvers.documents import ClaimDoc, ContactDoc
from resolvers.errors import BadUserInput, Conflict, NotFound
from resolvers.identifiers import IdentifierType
from resolvers.principal import Principal
from resolvers.store import Store


def identifier_key(kind: Any, value: Any, region: str) -> str:
    """The normalised ``TYPE:value`` key; BAD_USER_INPUT when the value does not normalise."""
    return blocked_identifiers.normalise_blocked(IdentifierType(kind), value, region)


async def claim_identifier(
    store: Store, principal: Principal, contact_id: str, identifier: Mapping[str, Any]
) -> ClaimDoc:
    org = principal.org
    wanted = identifier_key(identifier["type"], identifier["value"], store.config.default_region)

    async def work(session: AsyncClientSession) -> ClaimDoc:
        contact = await require_canonical(store, org, contact_id, session=session)
        block_list = await blocked_identifiers.load_block_list(store, org, session=session)
        if block_list.is_blocked(wanted):
            raise BadUserInput("this identifier value is blocked: it carries no identity")
        current = await store.identifiers.find_one({"org": org, "key": wanted}, session=session)
        doc = claims.claim_doc(org, wanted, contact, claims.VIA_INTERACTION)
        if current is None:
            await store.identifiers.insert_one(doc, session=session)
        elif current["contactId"] == contact["_id"]:
            return current
        else:
            await _check_takeover(store, org, current, contact, session)
            await store.identifiers.update_one(
                {"org": org, "key": wanted, "contactId": current["contactId"]},
                {"$set": doc},
                session=session,
            )
        await _record(
            store, session, principal, ChangeKind.IDENTIFIER_CLAIMED, contact["_id"], wanted
        )
        return doc

    return await store.in_transaction(work)


async def _record(
    store: Store,
    session: AsyncClientSession,
    principal: Principal,
    kind: ChangeKind,
    contact_id: str,
    identifier_key: str,
) -> None:
    """The change feed's record of a claim or release by hand, in its transaction."""
    await record_change(
        store,
        session,
        org=principal.org,
        kind=kind,
        by=principal.sub,
        contact_id=contact_id,
        identifier=identifier_key,
    )


async def _check_takeover(
    store: Store,
    org: str,
    current: ClaimDoc,
    contact: ContactDoc,
    session: AsyncClientSession,
) -> None:
    """CONFLICT unless the current holder is of the same merge set, or stale (gone, expired,
    an ancestor of another set)."""
    holder = await store.contacts.find_one(
        {"org": org, "_id": current["contactId"]},
        {"canonicalId": 1, "readOnly": 1, "expiresAt": 1},
        session=session,
    )
    moment = now()
    if holder is None or liveness.is_expired(current, moment):
        return
    if holder.get("canonicalId") == contact["_id"]:
        return  # the same merge set
    if holder.get("readOnly") or liveness.is_expired(holder, moment):
        return
    raise Conflict("another contact holds this identifier; release it first")


async def release_identifier(store: Store, principal: Principal, kind: Any, value: Any) -> bool:
    org = principal.org
    wanted = identifier_key(kind, value, store.config.default_region)

    async def work(session: AsyncClientSession) -> bool:
        current = await store.identifiers.find_one({"org": org, "key": wanted}, session=session)
        if current is None or liveness.is_expired(current, now()):
            raise NotFound("no contact claims this identifier")
        listers = await store.contacts.find(
            {"org": org, "keys": wanted}, {"readOnly": 1, "expiresAt": 1}, session=session
        ).to_list()
        moment = now()
        if any(liveness.is_live(d, moment) for d in listers):
            raise BadUserInput(
                "a contact lists this value in its fields: edit the contact to remove it"
            )
        await store.identifiers.delete_one(
            {"org": org, "key": wanted, "contactId": current["contactId"]}, session=session
        )
        await _record(
            store, session, principal, ChangeKind.IDENTIFIER_RELEASED, current["contactId"], wanted
        )
        return True

    return await store.in_transaction(work)
