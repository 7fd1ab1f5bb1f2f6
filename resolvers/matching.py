"""Match suggestions: how likely two live canonical contacts are one person (CONTRACT section 6).

Evidence between two contacts of different merge sets:
- SHARED_IDENTIFIER: a phone, email, social or external id value both list in fields or
  claim (cookies cannot be shared: a cookie is claimed by one contact and listed by none);
- SIMILAR_NAME: :func:`resolvers.names.compare_names` says SIMILAR;
- SAME_ADDRESS: ``line1`` and ``postalCode`` equal after folding.
Blocked values (:mod:`resolvers.blocked_identifiers`) are never evidence.

Scores (:func:`score`) keep the contract's bands: a shared identifier with a similar name,
or two shared identifiers of different types with names not conflicting, ≥ 0.9; a shared
identifier with conflicting names or one side unnamed, and a similar name with the same
address, in [0.5, 0.9); a similar name alone below 0.5.

Candidates of one contact are found from indexed keys only, in a constant number of
commands whatever the directory size (:func:`find_candidates`): its claims, the org's block
list and its name/address keys (``{org, matchKeys}``) in one round; the holders
(``{org, key}``) and listers (``{org, keys}``) of its evidence in a second; the documents
of holders not yet read in a third. Each read is bounded (``limit`` = ``batch_size``, so no
``getMore``).
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from resolvers import blocked_identifiers, liveness
from resolvers.blocked_identifiers import BlockList
from resolvers.clock import now
from resolvers.contact_fields import EMAIL_FIELDS, PHONE_FIELDS, SOCIAL_FIELDS
from resolvers.documents import ContactDoc
from resolvers.errors import BadUserInput
from resolvers.identifiers import IdentifierType, key, normalize_phone, priority_of, split_key
from resolvers.names import NameMatch, address_key, compare_names, display_name, name_parts
from resolvers.store import Store

MAX_FIRST = 100
CLAIMS_LIMIT = 200  # claims of the subject read as evidence
LISTERS_LIMIT = 500  # contacts listing one of the subject's values
NAME_LIMIT = 200  # contacts sharing a name or address key

SHARED_IDENTIFIER = "SHARED_IDENTIFIER"
SIMILAR_NAME = "SIMILAR_NAME"
SAME_ADDRESS = "SAME_ADDRESS"


@dataclass(frozen=True)
class Reason:
    kind: str
    field: str | None = None
    value: str | None = None

    def as_doc(self) -> dict[str, str | None]:
        return {"kind": self.kind, "field": self.field, "value": self.value}


@dataclass(frozen=True)
class Suggestion:
    contact: ContactDoc
    score: float
    reasons: tuple[Reason, ...]


def check_arguments(first: int, min_score: float) -> None:
    if not 1 <= first <= MAX_FIRST:
        raise BadUserInput(f"first must be between 1 and {MAX_FIRST}")
    if not 0.0 <= min_score <= 1.0:
        raise BadUserInput("minScore must be between 0 and 1")


def is_evidence(identifier_key: str) -> bool:
    return split_key(identifier_key)[0] is not IdentifierType.COOKIE


def has_evidence(keys: Iterable[str]) -> bool:
    """Whether any of these keys can be evidence (anything but a cookie)."""
    return any(is_evidence(k) for k in keys)


def fields_by_key(doc: Mapping[str, Any], region: str) -> dict[str, str]:
    """Which of the contact's fields lists each identifier key (the first that does)."""
    found: dict[str, str] = {}
    for field in PHONE_FIELDS:
        phone = normalize_phone(doc[field], region) if doc.get(field) else None
        if phone:
            found.setdefault(key(IdentifierType.PHONE, phone), field)
    for field in EMAIL_FIELDS:
        if doc.get(field):
            found.setdefault(key(IdentifierType.EMAIL, doc[field]), field)
    for field, kind in SOCIAL_FIELDS.items():
        if doc.get(field):
            found.setdefault(key(kind, doc[field]), field)
    for ext in doc.get("externalIds") or []:
        found.setdefault(
            key(IdentifierType.EXTERNAL_ID, f"{ext['source']}:{ext['value']}"), "externalIds"
        )
    return found


def score(shared: Iterable[str], names: NameMatch, same_address: bool, exact_name: bool) -> float:
    """The pair's confidence in [0, 1]; 0 when nothing is shared."""
    kinds = len({split_key(k)[0] for k in shared})
    address = 0.02 if same_address else 0.0
    if kinds and names is NameMatch.SIMILAR:
        exact = 0.01 if exact_name else 0.0
        return min(0.92 + 0.03 * (min(kinds, 3) - 1) + address + exact, 0.99)
    if kinds >= 2 and names is NameMatch.UNKNOWN:
        return min(0.9 + 0.02 * (min(kinds, 4) - 2) + address, 0.97)
    if kinds and names is NameMatch.UNKNOWN:
        return 0.7 + 5 * address
    if kinds:  # conflicting names
        return 0.55 + 0.1 * (min(kinds, 3) - 1) + 2 * address
    if names is NameMatch.SIMILAR:
        return 0.72 + 0.1 * exact_name if same_address else 0.3 + 0.1 * exact_name
    return 0.0


def assess(
    subject: Mapping[str, Any],
    candidate: Mapping[str, Any],
    shared: list[str],
    subject_fields: dict[str, str],
) -> tuple[float, tuple[Reason, ...]]:
    """The pair's score and reasons (identifiers by priority, then name, then address)."""
    names = compare_names(subject, candidate)
    subject_address = address_key(subject)
    same_address = subject_address is not None and subject_address == address_key(candidate)
    exact = names is NameMatch.SIMILAR and name_parts(subject) == name_parts(candidate)
    reasons = [
        Reason(SHARED_IDENTIFIER, subject_fields.get(k), split_key(k)[1])
        for k in sorted(shared, key=priority_of)
    ]
    if names is NameMatch.SIMILAR:
        reasons.append(Reason(SIMILAR_NAME, "name", display_name(candidate)))
    if same_address:
        address = candidate.get("address") or {}
        reasons.append(
            Reason(SAME_ADDRESS, "address", f"{address.get('line1')}, {address.get('postalCode')}")
        )
    return round(score(shared, names, same_address, exact), 4), tuple(reasons)


@dataclass(frozen=True)
class Candidates:
    """What one round of reads found around a subject."""

    evidence: list[str]  # the subject's usable values: listed or claimed, not blocked
    holders: dict[str, str]  # value -> the contact id that claims it
    contacts: dict[str, ContactDoc]  # candidate contacts by id (not yet filtered)


CANDIDATE_PROJECTION = {
    "nameTokens": 0,
    "matchKeys": 0,
}


async def find_candidates(
    store: Store,
    org: str,
    subject: ContactDoc,
    *,
    block_list: BlockList | None = None,
    names_only: bool = False,
) -> Candidates:
    """Candidates of one canonical contact in three rounds of indexed reads (see module);
    ``names_only``: only its name and address candidates (a contact no one shares a value
    with, e.g. one an interaction has just created)."""
    if names_only:
        named = await _by_match_keys(store, org, subject.get("matchKeys") or [])
        return Candidates(evidence=[], holders={}, contacts={d["_id"]: d for d in named})
    subject_id = subject["_id"]
    claims_read = store.identifiers.find(
        {"org": org, "contactId": subject_id},
        {"key": 1},
        limit=CLAIMS_LIMIT,
        batch_size=CLAIMS_LIMIT,
    ).to_list()
    by_name = _by_match_keys(store, org, subject.get("matchKeys") or [])
    claimed, named, blocks = await asyncio.gather(
        claims_read, by_name, _block_list(store, org, block_list)
    )
    values = [*subject["keys"], *(c["key"] for c in claimed)]
    evidence = [k for k in blocks.keep(dict.fromkeys(values)) if is_evidence(k)]
    found = {d["_id"]: d for d in named}
    holders = await read_holders(
        store,
        org,
        evidence,
        found,
        projection=CANDIDATE_PROJECTION,
        limit=LISTERS_LIMIT,
        skip=subject_id,
    )
    return Candidates(evidence=evidence, holders=holders, contacts=found)


async def read_holders(
    store: Store,
    org: str,
    evidence: list[str],
    found: dict[str, ContactDoc],
    *,
    projection: Mapping[str, int],
    limit: int,
    skip: str | None = None,
) -> dict[str, str]:
    """The live holder of each value (returned), and into ``found`` the contacts listing
    one (at most ``limit``) and the holders not in it yet but ``skip`` (the subject): two
    rounds, none without values."""
    if not evidence:
        return {}
    held, listers = await asyncio.gather(
        store.identifiers.find(
            {"org": org, "key": {"$in": evidence}}, {"key": 1, "contactId": 1, "expiresAt": 1}
        ).to_list(),
        store.contacts.find(
            {"org": org, "keys": {"$in": evidence}}, projection, limit=limit, batch_size=limit
        ).to_list(),
    )
    moment = now()
    holders = {h["key"]: h["contactId"] for h in held if not liveness.is_expired(h, moment)}
    found.update((d["_id"], d) for d in listers)
    missing = list(set(holders.values()) - set(found) - {skip})
    if missing:
        more = await store.contacts.find(
            {"org": org, "_id": {"$in": missing}}, projection
        ).to_list()
        found.update((d["_id"], d) for d in more)
    return holders


async def _block_list(store: Store, org: str, given: BlockList | None) -> BlockList:
    return given if given is not None else await blocked_identifiers.load_block_list(store, org)


async def _by_match_keys(store: Store, org: str, keys: list[str]) -> list[ContactDoc]:
    if not keys:
        return []
    return await store.contacts.find(
        {"org": org, "matchKeys": {"$in": keys}},
        CANDIDATE_PROJECTION,
        limit=NAME_LIMIT,
        batch_size=NAME_LIMIT,
    ).to_list()


def eligible(subject: ContactDoc, candidate: ContactDoc, moment: Any) -> bool:
    """A live canonical contact outside the subject's merge set."""
    if candidate["_id"] == subject["_id"] or not liveness.is_live(candidate, moment):
        return False
    set_id = subject.get("mergeSetId")
    return set_id is None or candidate.get("mergeSetId") != set_id


def shared_values(candidates: Candidates, candidate: ContactDoc) -> list[str]:
    listed = set(candidate.get("keys") or ())
    return [
        k
        for k in candidates.evidence
        if k in listed or candidates.holders.get(k) == candidate["_id"]
    ]


async def suggestions(
    store: Store,
    org: str,
    subject: ContactDoc,
    *,
    first: int = 10,
    min_score: float = 0.5,
    block_list: BlockList | None = None,
    names_only: bool = False,
) -> list[Suggestion]:
    """The subject's (a canonical contact's) best suggestions, best first."""
    check_arguments(first, min_score)
    found = await find_candidates(store, org, subject, block_list=block_list, names_only=names_only)
    region = store.config.default_region
    subject_fields = fields_by_key(subject, region)
    moment = now()
    result: list[Suggestion] = []
    for candidate in found.contacts.values():
        if not eligible(subject, candidate, moment):
            continue
        pair_score, reasons = assess(
            subject, candidate, shared_values(found, candidate), subject_fields
        )
        if pair_score > 0 and pair_score >= min_score:
            result.append(Suggestion(candidate, pair_score, reasons))
    result.sort(key=lambda s: (-s.score, s.contact["createdAt"], s.contact["_id"]))
    return result[:first]
