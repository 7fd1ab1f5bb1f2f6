"""What a write that changed a contact's evidence does next (CONTRACT section 6): refresh the
contact's pairs (:mod:`resolvers.matching_pairs`) and, with the org's ``autoMerge`` on, merge
it with every suggestion scoring at least ``autoMergeMinScore`` that the merge rules allow,
as one merge by ``"auto"`` whose event carries the score and reasons.

Called by createContact, updateContact, recordInteraction (when it created or stitched),
claimIdentifier, and by other writes that add evidence (e.g. ``recordWebEvents`` form fills)
through :func:`auto_merge_after_write`::

    contact = await matching_writes.auto_merge_after_write(store, principal, contact_id)

It returns the contact to show: the new canonical contact after an automatic merge, else the
contact itself (None for an unknown id). An automatic merge is an ordinary merge:
``unmergeContacts`` undoes it. Two requests racing to merge the same contacts make one
merge: the second finds them in one set already (the merge refuses) and returns that set's
canonical contact.
"""

from __future__ import annotations

import logging
from collections.abc import Collection, Sequence

from pymongo.errors import PyMongoError

from resolvers import identity_settings, matching_batch, matching_pairs, merges
from resolvers.contact_fields import ContactType
from resolvers.contacts import get_canonical
from resolvers.documents import ContactDoc, MatchReasonDoc, MergeEvidenceDoc
from resolvers.errors import BadUserInput, Conflict, MergeNotAllowed, NotFound
from resolvers.matching import Reason, Suggestion, has_evidence
from resolvers.principal import Principal
from resolvers.store import Store

AUTO = "auto"  # MergeEvent.by of an automatic merge
logger = logging.getLogger(__name__)


async def after_write(
    store: Store,
    principal: Principal,
    contact: ContactDoc,
    *,
    claimed: bool = True,
    settings: identity_settings.IdentitySettings | None = None,
    evidence_changed: bool = True,
) -> ContactDoc:
    """Refresh the contact's pairs; merge it automatically when the org says so. A write
    that left the contact's evidence as it was (``evidence_changed`` False) leaves its pairs
    alone when the org does not merge automatically."""
    org = principal.org
    if settings is None:
        settings = await identity_settings.get_settings(store, org)
    if not evidence_changed and not settings.auto_merge:
        return contact
    found = await matching_pairs.refresh(
        store, org, contact, block_list=settings.block_list, claimed=claimed
    )
    if not settings.auto_merge:
        return contact
    strong = [s for s in found if s.score >= settings.auto_merge_min_score]
    if not strong:
        return contact
    return await _auto_merge(store, principal, contact, strong)


async def after_interaction(
    store: Store,
    principal: Principal,
    contact: ContactDoc,
    *,
    created: bool,
    keys: list[str],
    settings: identity_settings.IdentitySettings | None = None,
) -> ContactDoc:
    """After recordInteraction created or stitched ``contact``.

    An interaction never adds a *shared* identifier: resolution hands every value a live
    contact lists to that lister first, so what it creates or stitches nobody else lists.
    What can change is the name and address of a contact it created (from ``provided``).
    So with ``autoMerge`` off only such a contact is refreshed (one indexed read for its
    name/address candidates, none for a contact without them); with ``autoMerge`` on, the
    contact is scored like after any write (its existing pairs may now merge). ``settings``:
    the org's settings as the recording read them (read again when not given)."""
    if settings is None:
        settings = await identity_settings.get_settings(store, principal.org)
    if settings.auto_merge:
        return await after_write(
            store, principal, contact, claimed=has_evidence(keys), settings=settings
        )
    if created and contact.get("matchKeys"):
        await matching_pairs.refresh(
            store, principal.org, contact, block_list=settings.block_list, fresh=True
        )
    return contact


async def after_bulk_write(
    store: Store,
    principal: Principal,
    contacts: Sequence[ContactDoc],
    *,
    same_evidence: Collection[str] = (),
) -> dict[str, ContactDoc]:
    """:func:`after_write` for every contact a bulk create/update wrote: their pairs are
    refreshed together (:func:`resolvers.matching_batch.refresh_many`, a constant number of
    commands); with ``autoMerge`` on, only the contacts with a suggestion scoring at least
    ``autoMergeMinScore`` merge, one merge each (a contact an earlier one of the call merged
    with is shown as that merge's canonical contact). Returns the contact to show per id.
    With ``autoMerge`` off, the contacts in ``same_evidence`` (edits that left every matching
    field as it was) keep their pairs unread."""
    settings = await identity_settings.get_settings(store, principal.org)
    changed = contacts
    if not settings.auto_merge:
        changed = [c for c in contacts if c["_id"] not in same_evidence]
    found = await matching_batch.refresh_many(
        store, principal.org, changed, block_list=settings.block_list
    )
    shown: dict[str, ContactDoc] = {c["_id"]: c for c in contacts}
    if not settings.auto_merge:
        return shown
    merged_ids: set[str] = set()  # merged by an earlier item of this call
    for contact in contacts:
        strong = [
            s
            for s in found.get(contact["_id"], [])
            if s.score >= settings.auto_merge_min_score and s.contact["_id"] not in merged_ids
        ]
        chosen = allowed_partners(contact, strong)
        if contact["_id"] in merged_ids or not chosen:
            continue
        merged = await _auto_merge(store, principal, contact, strong)
        if merged is not contact:
            for member in (contact["_id"], *(s.contact["_id"] for s in chosen)):
                merged_ids.add(member)
                if member in shown:
                    shown[member] = merged
    return shown


async def auto_merge_after_write(
    store: Store, principal: Principal, contact_id: str
) -> ContactDoc | None:
    """:func:`after_write` for a contact id (an ancestor's acts on its canonical contact)."""
    contact = await get_canonical(store, principal.org, contact_id)
    if contact is None:
        return None
    return await after_write(store, principal, contact)


def allowed_partners(contact: ContactDoc, strong: list[Suggestion]) -> list[Suggestion]:
    """The suggestions one merge may take with the contact: at most one CURATED contact in
    all (the strongest), at most 24 partners (a merge takes 25 ids)."""
    curated = contact["type"] == ContactType.CURATED
    chosen: list[Suggestion] = []
    for suggestion in strong:
        if suggestion.contact["type"] == ContactType.CURATED:
            if curated:
                continue
            curated = True
        chosen.append(suggestion)
    return chosen[: merges.MAX_INPUTS - 1]


def evidence_of(chosen: list[Suggestion]) -> MergeEvidenceDoc:
    reasons: list[Reason] = list(dict.fromkeys(r for s in chosen for r in s.reasons))
    return {
        "score": min(s.score for s in chosen),
        "reasons": [MatchReasonDoc(kind=r.kind, field=r.field, value=r.value) for r in reasons],
    }


async def _auto_merge(
    store: Store, principal: Principal, contact: ContactDoc, strong: list[Suggestion]
) -> ContactDoc:
    chosen = allowed_partners(contact, strong)
    if not chosen:
        return contact
    auto = Principal(org=principal.org, sub=AUTO, permissions=principal.permissions)
    ids = [contact["_id"], *(s.contact["_id"] for s in chosen)]
    try:
        merged = await merges.merge_contacts(store, auto, ids, evidence=evidence_of(chosen))
    except (MergeNotAllowed, BadUserInput, NotFound, Conflict):
        # merged meanwhile (a racing request made the merge) or refused: show what is there
        return await get_canonical(store, principal.org, contact["_id"]) or contact
    except PyMongoError:
        # the merge's transaction left no trace; the write that triggered it stands
        logger.warning("automatic merge failed", exc_info=True)
        return contact
    await matching_pairs.refresh(store, principal.org, merged)
    return merged
