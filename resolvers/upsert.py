"""upsertContact: find a contact by identifiers, then update it, or create a CURATED one.

``match`` (1 to 25 identifiers) is resolved like an interaction's identifiers
(:func:`interactions.seen_identifiers`, :func:`interactions.claimed_contact`): priority order
EXTERNAL_ID, EMAIL, PHONE, social, COOKIE; the canonical contact of the first claimed one is
updated as ``updateContact`` would (an auto-created contact is promoted), with the input's
fields overwriting (``PREFER_PROVIDED``) or filling only empty fields (``PREFER_EXISTING``).
No claimed identifier: a CURATED contact is created from the input (first and last name
required). Either way, the match identifiers nobody holds are then claimed by the contact
(sticky, as an interaction's are), so the same upsert finds it again even when its fields
do not list them.

Resolution and write are one transaction: two concurrent upserts of one new identifier
create one contact (the second one's claim conflicts, it retries and finds the first).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from enum import StrEnum
from typing import Any, NamedTuple

from pymongo.asynchronous.client_session import AsyncClientSession

from resolvers import blocked_identifiers, bulk, bulk_claims, claims, interactions
from resolvers.changes import ChangeKind, NewChange, claimed_changes, record_changes
from resolvers.contact_fields import clean_input
from resolvers.conversations import Channel
from resolvers.documents import ContactDoc, ContactFields
from resolvers.errors import BadUserInput, DomainError
from resolvers.identifiers import priority_of
from resolvers.principal import Principal
from resolvers.store import Store

MAX_MATCH = 25


class UpsertRule(StrEnum):
    PREFER_PROVIDED = "PREFER_PROVIDED"
    PREFER_EXISTING = "PREFER_EXISTING"


def match_keys(match: Sequence[Mapping[str, Any]], region: str) -> list[str]:
    """The usable identifier keys of ``match``, priority order; BAD_USER_INPUT when none."""
    if not 1 <= len(match) <= MAX_MATCH:
        raise BadUserInput(f"match takes between 1 and {MAX_MATCH} identifiers")
    _, keys = interactions.seen_identifiers(list(match), Channel.VOICE, region)
    if not keys:
        raise BadUserInput("match has no usable identifier")
    return sorted(dict.fromkeys(keys), key=priority_of)


def _empty(value: Any) -> bool:
    return value is None or value == [] or value == ""


def preferred(existing: ContactDoc, fields: ContactFields, rule: UpsertRule) -> ContactFields:
    """The fields to write: all given (PREFER_PROVIDED), or those empty on the contact."""
    if rule is UpsertRule.PREFER_PROVIDED:
        return fields
    return {name: value for name, value in fields.items() if _empty(existing.get(name))}


class Upserted(NamedTuple):
    contact: ContactDoc
    created: bool
    evidence_changed: bool


async def upsert_contact(
    store: Store,
    principal: Principal,
    match: Sequence[Mapping[str, Any]],
    patch: Mapping[str, Any],
    rule: UpsertRule = UpsertRule.PREFER_PROVIDED,
) -> Upserted:
    """The contact updated or created, whether it was created, and whether its match
    evidence changed (False for an update that changed no matching field and claimed no
    identifier anew)."""
    region = store.config.default_region
    org = principal.org
    # blocked values (resolvers/blocked_identifiers.py) are no identifiers at all
    keys = await blocked_identifiers.usable_keys(store, org, match_keys(match, region))
    if not keys:
        raise BadUserInput("match has no usable identifier (every value is blocked)")
    fields = clean_input(patch, region)

    async def work(session: AsyncClientSession) -> Upserted:
        handed_on: list[tuple[str, str]] = []  # values the update handed on to other contacts
        unchanged: set[str] = set()  # the contact, when the update left its evidence
        found, _ = await interactions.claimed_contact(store, org, keys, session=session)
        if found is None:
            contact = bulk.curated_doc(store, org, fields)
            await bulk.insert_contacts(store, org, [contact], session)
        else:
            edits = {0: (found["_id"], preferred(found, fields, rule))}
            done = (await bulk.apply_updates(store, org, edits, session, handed_on, unchanged))[0]
            if isinstance(done, DomainError):
                raise done
            contact = done
        stitched = [(k, contact, claims.VIA_INTERACTION) for k in keys]
        claimed: set[str] = set()
        await bulk_claims.claim_many(store, org, stitched, session, changed=claimed)
        kind = ChangeKind.CONTACT_CREATED if found is None else ChangeKind.CONTACT_UPDATED
        written = [NewChange(kind, contact["_id"]), *claimed_changes(handed_on)]
        await record_changes(store, session, org=org, by=principal.sub, changes=written)
        same = not claimed and contact["_id"] in unchanged
        return Upserted(contact, found is None, evidence_changed=not same)

    return await store.in_transaction(work)
