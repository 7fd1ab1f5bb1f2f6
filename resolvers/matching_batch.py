"""Match pairs for many contacts at once: bulk writes, ``scv seed``, ``scv import`` and
``scv pairs`` (CONTRACT section 6, kept like :mod:`resolvers.matching_pairs` keeps them per
write, in a number of commands that does not grow with the contacts).

:func:`refresh_many` replaces the pairs of a batch of contacts with their suggestions
(≥ ``PAIR_FLOOR``, at most ``PAIRS_PER_CONTACT`` each) in three rounds of indexed reads for
the whole batch, as :func:`resolvers.matching.find_candidates` reads for one contact: the
subjects' claims (``{org, contactId}``), the org's block list and the contacts sharing a
name/address key (``{org, matchKeys}``); the holders (``{org, key}``) and listers
(``{org, keys}``) of their values; the holders not yet read (``{org, _id}``). Then one
delete and one bulk write. Each read is bounded by the single contact's limit times the
batch's size.

:func:`rebuild_org` refreshes every live canonical contact of an org, batch by batch in id
order per type, for data written without
the per-write refresh (the seeded data set, the CSV import). It reads them with the scan
of ``scanContacts`` (:func:`resolvers.scan.scan_contacts`: id windows of ``org_scan``,
so a page never reads the rest of its type), at most 200 a batch.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from pymongo import ReplaceOne

from resolvers import blocked_identifiers, liveness, matching, scan
from resolvers.blocked_identifiers import BlockList
from resolvers.clock import now
from resolvers.contact_fields import ContactType
from resolvers.documents import ContactDoc
from resolvers.matching import Candidates, Suggestion
from resolvers.matching_pairs import (
    PAIR_FLOOR,
    PAIRS_PER_CONTACT,
    pair_id,
    pairs_collection,
    replacement,
)
from resolvers.store import Store

BATCH = 200  # contacts refreshed together (a bulk write's most)
PROJECTION = {"nameTokens": 0}  # matchKeys kept: they say whose name candidate a contact is

Progress = Callable[[int], None]


@dataclass(frozen=True)
class _Found:
    """What the batch's reads found: claims per subject, holders, candidate documents."""

    claimed: dict[str, list[str]]  # subject id -> keys it claims
    holders: dict[str, str]  # value -> live holder id
    blocks: BlockList
    contacts: dict[str, ContactDoc]  # every candidate by id
    by_key: dict[str, list[str]]  # a listed value or a name/address key -> candidate ids


def _index(contacts: dict[str, ContactDoc]) -> dict[str, list[str]]:
    by_key: dict[str, list[str]] = {}
    for contact_id, doc in contacts.items():
        for k in [*(doc.get("keys") or ()), *(doc.get("matchKeys") or ())]:
            by_key.setdefault(k, []).append(contact_id)
    return by_key


async def _first_round(
    store: Store, org: str, subjects: Sequence[ContactDoc], given: BlockList | None
) -> tuple[dict[str, list[str]], list[ContactDoc], BlockList]:
    ids = [s["_id"] for s in subjects]
    name_keys = list({k for s in subjects for k in s.get("matchKeys") or []})
    claims_read = store.identifiers.find(
        {"org": org, "contactId": {"$in": ids}},
        {"key": 1, "contactId": 1},
        limit=matching.CLAIMS_LIMIT * len(ids),
    ).to_list()
    names_read = (
        store.contacts.find(
            {"org": org, "matchKeys": {"$in": name_keys}},
            PROJECTION,
            limit=matching.NAME_LIMIT * len(ids),
        ).to_list()
        if name_keys
        else asyncio.sleep(0, [])
    )
    blocks_read = (
        asyncio.sleep(0, given)
        if given is not None
        else blocked_identifiers.load_block_list(store, org)
    )
    claims, named, blocks = await asyncio.gather(claims_read, names_read, blocks_read)
    claimed: dict[str, list[str]] = {}
    for claim in claims:
        claimed.setdefault(claim["contactId"], []).append(claim["key"])
    return claimed, named, blocks


async def _find(
    store: Store, org: str, subjects: Sequence[ContactDoc], given: BlockList | None
) -> _Found:
    claimed, named, blocks = await _first_round(store, org, subjects, given)
    found = {d["_id"]: d for d in named}
    evidence = list({k for s in subjects for k in _evidence(s, claimed.get(s["_id"], []), blocks)})
    holders = await matching.read_holders(
        store,
        org,
        evidence,
        found,
        projection=PROJECTION,
        limit=matching.LISTERS_LIMIT * len(subjects),
    )
    return _Found(
        claimed=claimed, holders=holders, blocks=blocks, contacts=found, by_key=_index(found)
    )


def _evidence(subject: ContactDoc, claimed: list[str], blocks: BlockList) -> list[str]:
    values = dict.fromkeys([*subject.get("keys", []), *claimed])
    return [k for k in blocks.keep(values) if matching.is_evidence(k)]


def _suggestions_of(subject: ContactDoc, found: _Found, region: str) -> list[Suggestion]:
    """The subject's suggestions among what the batch read (as matching.suggestions)."""
    evidence = _evidence(subject, found.claimed.get(subject["_id"], []), found.blocks)
    holders = {k: found.holders[k] for k in evidence if k in found.holders}
    candidates = Candidates(evidence=evidence, holders=holders, contacts={})
    related = set(holders.values())
    for k in [*evidence, *(subject.get("matchKeys") or ())]:
        related.update(found.by_key.get(k, ()))
    subject_fields = matching.fields_by_key(subject, region)
    moment = now()
    result: list[Suggestion] = []
    for candidate_id in related:
        candidate = found.contacts.get(candidate_id)
        if candidate is None or not matching.eligible(subject, candidate, moment):
            continue
        shared = matching.shared_values(candidates, candidate)
        score, reasons = matching.assess(subject, candidate, shared, subject_fields)
        if score >= PAIR_FLOOR:
            result.append(Suggestion(candidate, score, reasons))
    result.sort(key=lambda s: (-s.score, s.contact["createdAt"], s.contact["_id"]))
    return result[:PAIRS_PER_CONTACT]


async def suggestions_many(
    store: Store, org: str, subjects: Sequence[ContactDoc], *, block_list: BlockList | None = None
) -> dict[str, list[Suggestion]]:
    """Each live subject's suggestions scoring at least PAIR_FLOOR, best first."""
    moment = now()
    live = [s for s in subjects if liveness.is_live(s, moment)]
    if not live:
        return {}
    found = await _find(store, org, live, block_list)
    region = store.config.default_region
    return {s["_id"]: _suggestions_of(s, found, region) for s in live}


async def refresh_many(
    store: Store,
    org: str,
    subjects: Sequence[ContactDoc],
    *,
    block_list: BlockList | None = None,
) -> dict[str, list[Suggestion]]:
    """Replace the subjects' pairs with their current suggestions; returns them by id."""
    found = await suggestions_many(store, org, subjects, block_list=block_list)
    if not found:
        return found
    pairs = pairs_collection(store)
    await pairs.delete_many({"org": org, "ids": {"$in": list(found)}})
    writes: dict[str, ReplaceOne[Any]] = {}
    for subject_id, suggestions in found.items():
        for s in suggestions:
            pair = pair_id(org, subject_id, s.contact["_id"])
            writes.setdefault(pair, replacement(org, subject_id, s))
    if writes:
        await pairs.bulk_write(list(writes.values()), ordered=False)
    return found


async def rebuild_org(
    store: Store, org: str, *, progress: Progress | None = None, batch: int = BATCH
) -> int:
    """Recompute the pairs of every live canonical contact of ``org`` in batches; returns
    how many pairs it wrote. ``progress`` gets the number of contacts just read."""
    await pairs_collection(store).delete_many({"org": org})
    written: set[str] = set()
    blocks = await blocked_identifiers.load_block_list(store, org)
    for kind in ContactType:  # one type at a time: an empty page ends its type
        after: str | None = None
        while True:
            page = await scan.scan_contacts(store, org, batch, after, [kind])
            found = await refresh_many(store, org, page.docs, block_list=blocks)
            written.update(pair_id(org, i, s.contact["_id"]) for i, ss in found.items() for s in ss)
            if progress is not None and page.docs:
                progress(len(page.docs))
            if not page.has_next or page.end_cursor is None:
                break
            after = page.end_cursor
    return len(written)
