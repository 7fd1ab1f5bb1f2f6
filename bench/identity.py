"""`make bench` rows of identity intelligence (CONTRACT section 6, issue 15).

- Planted duplicates (:func:`plant`): in the seeded org, variants of seeded curated contacts
  that share one of their values — a typo or transposition of the name, a nickname of the
  first name (true duplicates), a family member with another first name sharing the phone,
  and strangers sharing junk values (blocked: no evidence). Their pairs are maintained as a
  write would (``matching_pairs.refresh``).
- ``matchSuggestions`` over HTTP vs the raw driver reads of its candidate keys, and
  ``duplicateClusters(first: 50)``'s first page vs reading its pairs and their contacts
  (:func:`operations`).
- Ingest with pair maintenance vs without (:func:`measure_ingest`): ``recordInteraction``'s
  resolver for new callers who give a name and an address, then the maintenance it triggers
  (``matching_writes.after_interaction``), interleaved.
- Quality (:func:`measure_quality`): precision and recall of the pairs inside
  ``duplicateClusters`` at 0.9 against the planted truth.
"""

from __future__ import annotations

import random
import statistics
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from bench.operations import Fixture, Operation, Work, gql
from resolvers import claims, clusters, interactions, matching_pairs, matching_writes
from resolvers.contact_fields import ContactType, clean_input
from resolvers.contacts import new_contact_doc
from resolvers.documents import ContactDoc
from resolvers.nicknames import NICKNAMES
from resolvers.principal import Principal
from resolvers.store import Store

TRUE_KINDS = ("typo", "nickname")
FALSE_KINDS = ("family", "junk")
OTHER_FIRST_NAMES = ("Zoltan", "Imogen", "Quentin", "Xiomara", "Bartholomew", "Ottilie")
JUNK = {"cellPhone": "0000000000", "personalEmail": "noreply@shop.example"}


@dataclass
class Planted:
    subjects: list[str] = field(default_factory=list)  # originals with a true duplicate
    true_pairs: set[frozenset[str]] = field(default_factory=set)
    contacts: list[ContactDoc] = field(default_factory=list)  # every planted contact


def _typo(text: str, rng: random.Random) -> str:
    """Swap two adjacent inner letters (a transposition), or double one letter."""
    if len(text) >= 5:
        i = rng.randrange(1, len(text) - 2)
        return text[:i] + text[i + 1] + text[i] + text[i + 2 :]
    return text + text[-1]


def _variant(original: ContactDoc, kind: str, rng: random.Random) -> dict[str, Any] | None:
    first, last = original.get("firstName") or "", original.get("lastName") or ""
    if kind == "typo":
        return {
            "firstName": first,
            "lastName": _typo(last, rng),
            "cellPhone": original["cellPhone"],
        }
    if kind == "nickname":
        short = NICKNAMES.get(first.casefold())
        if not short:
            return {"firstName": first, "lastName": last, "workEmail": original["workEmail"]}
        return {
            "firstName": short[0].title(),
            "lastName": last,
            "otherEmail": original["workEmail"],
        }
    if kind == "family":
        return {
            "firstName": rng.choice(OTHER_FIRST_NAMES),
            "lastName": last,
            "homePhone": original["cellPhone"],
        }
    return {
        "firstName": rng.choice(OTHER_FIRST_NAMES),
        "lastName": f"Stranger{rng.randrange(10**6)}",
        **JUNK,
    }


async def plant(store: Store, org: str, count: int, seed: int = 15) -> Planted:
    """``count`` variants of each kind, stored as IDENTIFIED contacts (as the ones an
    interaction with a form fill leaves), with their pairs maintained."""
    rng = random.Random(seed)
    originals = await store.contacts.find(
        {
            "org": org,
            "type": "CURATED",
            "mergeSetId": None,
            "cellPhone": {"$ne": None},
            "workEmail": {"$ne": None},
            "firstName": {"$ne": None},
        }
    ).to_list(4 * count)
    rng.shuffle(originals)
    planted = Planted()
    junk_original = await _store(store, org, {"firstName": "Junk", "lastName": "Holder", **JUNK})
    planted.contacts.append(junk_original)
    for n, original in enumerate(originals[: 4 * count]):
        kind = (*TRUE_KINDS, *FALSE_KINDS)[n % 4]
        fields = _variant(original, kind, rng)
        if fields is None:
            continue
        doc = await _store(store, org, fields)
        planted.contacts.append(doc)
        if kind in TRUE_KINDS:
            planted.true_pairs.add(frozenset((original["_id"], doc["_id"])))
            planted.subjects.append(original["_id"])
    for doc in planted.contacts:
        await matching_pairs.refresh(store, org, doc, claimed=True)
    return planted


async def _store(store: Store, org: str, fields: dict[str, Any]) -> ContactDoc:
    clean = clean_input(fields, store.config.default_region)
    doc = new_contact_doc(store, org, clean, ContactType.CURATED)
    doc["type"] = ContactType.IDENTIFIED  # never expiring here: the bench outlives no TTL
    await store.contacts.insert_one(doc)
    await claims.claim_all(store, org, doc["keys"], doc, claims.VIA_FIELD)
    return doc


# --- operations over HTTP ------------------------------------------------------------------

SUGGESTIONS = """query($id: ID!) { contact(id: $id) { matchSuggestions {
  score contact { id firstName lastName } reasons { kind field value } } } }"""
CLUSTERS = """query { duplicateClusters(first: 50) { totalCount
  edges { node { id score contacts { id firstName lastName } reasons { kind field value } } } } }"""


def operations(planted: Planted) -> list[Operation]:
    def subject(n: int) -> str:
        return planted.subjects[n % len(planted.subjects)]

    async def suggestions(f: Fixture, n: int) -> object:
        data = await gql(f.http, SUGGESTIONS, {"id": subject(n)})
        assert data["contact"]["matchSuggestions"], "a planted duplicate has suggestions"
        return data

    async def raw_candidate_keys(f: Fixture, n: int) -> object:
        """The least driver work: the subject, its claims, and who lists, holds or shares a
        name or address key with its values."""
        store, org = f.store, f.org
        doc = await store.contacts.find_one({"org": org, "_id": subject(n)})
        assert doc is not None
        claimed = await store.identifiers.find({"org": org, "contactId": doc["_id"]}).to_list()
        values = [*doc["keys"], *(c["key"] for c in claimed)]
        await store.identifiers.find({"org": org, "key": {"$in": values}}).to_list()
        await store.contacts.find({"org": org, "keys": {"$in": values}}).to_list()
        return await store.contacts.find(
            {"org": org, "matchKeys": {"$in": doc.get("matchKeys") or []}}
        ).to_list()

    async def first_page(f: Fixture, n: int) -> object:
        data = await gql(f.http, CLUSTERS, {})
        assert data["duplicateClusters"]["edges"]
        return data

    async def raw_pairs(f: Fixture, n: int) -> object:
        pairs = (
            await matching_pairs.pairs_collection(f.store)
            .find({"org": f.org, "score": {"$gte": 0.9}})
            .sort("score", -1)
            .to_list()
        )
        ids = list({i for p in pairs for i in p["ids"]})
        return await f.store.contacts.find({"org": f.org, "_id": {"$in": ids}}).to_list()

    pages: Work = first_page
    return [
        Operation("matchSuggestions (one contact)", suggestions, raw_candidate_keys),
        Operation("duplicateClusters(first: 50), first page", pages, raw_pairs),
    ]


# --- ingest with and without pair maintenance ---------------------------------------------


async def measure_ingest(store: Store, org: str, calls: int) -> tuple[list[float], list[float]]:
    """Seconds per new caller (a name and an address given) without and with the pair
    maintenance recordInteraction triggers; interleaved, the order alternating."""
    principal = Principal(org=org, sub="bench")
    times: dict[bool, list[float]] = {False: [], True: []}
    rng = random.Random(7)
    for n in range(calls):
        surname = "".join(rng.choice("bcdfghklmnprstvz") + rng.choice("aeiou") for _ in range(3))
        for maintained in (False, True) if n % 2 else (True, False):
            raw = {
                "conversationId": f"ingest-{maintained}-{n}",
                "channel": "VOICE",
                "startedAt": datetime.now(UTC),
                "identifiers": [{"type": "PHONE", "value": f"+1809{int(maintained)}{n:06d}"}],
                "provided": {
                    "firstName": "Ida",
                    "lastName": surname.title(),
                    "address": {"line1": f"{n} Pine St", "postalCode": "29201"},
                },
            }
            started = time.perf_counter()
            result = await interactions.record_interaction(store, principal, raw)
            if maintained and result.evidence_changed and result.contact is not None:
                await matching_writes.after_interaction(
                    store,
                    principal,
                    result.contact,
                    created=result.created,
                    keys=result.keys,
                    settings=result.identity,
                )
            times[maintained].append(time.perf_counter() - started)
    return times[False], times[True]


def ratio(without: list[float], with_: list[float]) -> float:
    return statistics.median(with_) / statistics.median(without)


# --- quality ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Quality:
    precision: float
    recall: float
    predicted: int
    true: int


async def measure_quality(store: Store, org: str, planted: Planted) -> Quality:
    """Pairs inside clusters at 0.9 that involve a planted contact, against the truth."""
    found = await clusters.all_clusters(store, org, 0.9)
    involved = {d["_id"] for d in planted.contacts} | {
        i for pair in planted.true_pairs for i in pair
    }
    predicted: set[frozenset[str]] = set()
    for cluster in found:
        ids = cluster.contact_ids
        predicted |= {
            frozenset((a, b))
            for x, a in enumerate(ids)
            for b in ids[x + 1 :]
            if a in involved or b in involved
        }
    hits = len(predicted & planted.true_pairs)
    precision = hits / len(predicted) if predicted else 1.0
    recall = hits / len(planted.true_pairs) if planted.true_pairs else 1.0
    return Quality(precision, recall, len(predicted), len(planted.true_pairs))
