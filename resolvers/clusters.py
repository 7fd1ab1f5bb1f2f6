"""duplicateClusters and mergeDuplicateClusters (CONTRACT section 6).

A cluster is a connected group of live canonical contacts whose pair scores
(:mod:`resolvers.matching_pairs`) are at least ``minScore``. Groups are built strongest pair
first (Kruskal's order) and a union that would pass 25 contacts is skipped, so a bigger group
is cut into its strongest parts. A cluster's score is the weakest pair that holds it
together; its reasons are those pairs' evidence. Order: score descending, then id; the
cursor is the last cluster's ``(score, id)`` (keyset: stable while nothing changes).

Reading costs two commands whatever the page: the pairs at or above ``minScore``
(``{org, score}``) and their contacts (``{org, _id: {$in}}``) to drop pairs whose contact
was merged, deleted or expired since.
"""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, cast

from resolvers import liveness, matching_pairs, merges
from resolvers.clock import now
from resolvers.contact_fields import ContactType
from resolvers.documents import ContactDoc, MatchReasonDoc, MergeEvidenceDoc
from resolvers.errors import BadUserInput, Conflict, MergeNotAllowed, NotFound
from resolvers.matching import SHARED_IDENTIFIER, SIMILAR_NAME, Reason
from resolvers.matching_pairs import PAIR_FLOOR, pairs_collection
from resolvers.principal import Principal
from resolvers.store import Store

MAX_CLUSTER = 25
MAX_FIRST = 100
MAX_PAIRS = 20_000  # pairs read per request (a directory of ~10,000 probable duplicates)
REASON_ORDER = {SHARED_IDENTIFIER: 0, SIMILAR_NAME: 1}


@dataclass
class Cluster:
    contacts: list[ContactDoc]  # oldest first
    score: float
    reasons: list[Reason] = field(default_factory=list)

    @property
    def id(self) -> str:
        ids = sorted(c["_id"] for c in self.contacts)
        return hashlib.sha256("|".join(ids).encode()).hexdigest()[:24]

    @property
    def contact_ids(self) -> list[str]:
        return [c["_id"] for c in self.contacts]


@dataclass(frozen=True)
class ClusterPage:
    clusters: list[Cluster]
    total: int
    has_next: bool


def check_arguments(min_score: float, first: int) -> None:
    if not 0.0 <= min_score <= 1.0:
        raise BadUserInput("minScore must be between 0 and 1")
    if not 1 <= first <= MAX_FIRST:
        raise BadUserInput(f"first must be between 1 and {MAX_FIRST}")


def encode_cursor(cluster: Cluster) -> str:
    raw = json.dumps([cluster.score, cluster.id]).encode()
    return base64.urlsafe_b64encode(raw).decode()


def decode_cursor(cursor: str) -> tuple[float, str]:
    try:
        score, cluster_id = json.loads(base64.urlsafe_b64decode(cursor.encode()))
        return float(score), str(cluster_id)
    except (ValueError, TypeError) as exc:
        raise BadUserInput("after is not a cursor of this list") from exc


async def all_clusters(
    store: Store, org: str, min_score: float, types: Sequence[str] | None = None
) -> list[Cluster]:
    """Every cluster at ``min_score``, best first."""
    floor = max(min_score, PAIR_FLOOR)
    pairs = await (
        pairs_collection(store)
        .find({"org": org, "score": {"$gte": floor}}, {"ids": 1, "score": 1, "reasons": 1})
        .sort("score", -1)
        .limit(MAX_PAIRS)
        .batch_size(MAX_PAIRS)
        .to_list()
    )
    ids = list({i for p in pairs for i in p["ids"]})
    contacts: dict[str, ContactDoc] = {}
    if ids:
        found = await store.contacts.find(
            {"org": org, "_id": {"$in": ids}}, {"nameTokens": 0, "matchKeys": 0}
        ).to_list()
        contacts = {d["_id"]: d for d in found}
    wanted = set(types) if types else None
    moment = now()

    def takes_part(contact: ContactDoc | None) -> bool:
        return (
            contact is not None
            and liveness.is_live(contact, moment)
            and (wanted is None or contact["type"] in wanted)
        )

    edges = [
        (p["score"], contacts[a], contacts[b], p["reasons"])
        for p in pairs
        for a, b in [p["ids"]]
        if takes_part(contacts.get(a))
        and takes_part(contacts.get(b))
        and not _same_set(contacts[a], contacts[b])
    ]
    return _group(edges)


def _same_set(a: ContactDoc, b: ContactDoc) -> bool:
    return a.get("mergeSetId") is not None and a.get("mergeSetId") == b.get("mergeSetId")


def _group(
    edges: list[tuple[float, ContactDoc, ContactDoc, list[dict[str, Any]]]],
) -> list[Cluster]:
    """Union strongest first, never past MAX_CLUSTER contacts (Kruskal with a cap)."""
    parent: dict[str, str] = {}
    members: dict[str, list[ContactDoc]] = {}
    weakest: dict[str, float] = {}
    reasons: dict[str, list[Reason]] = {}

    def root(node: str) -> str:
        while parent[node] != node:
            parent[node] = parent[parent[node]]
            node = parent[node]
        return node

    for score, a, b, pair_reasons in sorted(edges, key=lambda e: -e[0]):
        for doc in (a, b):
            if doc["_id"] not in parent:
                parent[doc["_id"]] = doc["_id"]
                members[doc["_id"]] = [doc]
                reasons[doc["_id"]] = []
        ra, rb = root(a["_id"]), root(b["_id"])
        if ra == rb or len(members[ra]) + len(members[rb]) > MAX_CLUSTER:
            continue
        parent[rb] = ra
        members[ra] += members.pop(rb)
        weakest[ra] = min(score, weakest.get(ra, score), weakest.pop(rb, score))
        reasons[ra] = _merge_reasons(reasons[ra], reasons.pop(rb), pair_reasons)
    clusters = [
        Cluster(
            contacts=sorted(group, key=lambda d: (d["createdAt"], d["_id"])),
            score=weakest[key],
            reasons=reasons[key],
        )
        for key, group in members.items()
        if len(group) >= 2
    ]
    clusters.sort(key=lambda c: (-c.score, c.id))
    return clusters


def _merge_reasons(
    mine: list[Reason], theirs: list[Reason], pair: list[dict[str, Any]]
) -> list[Reason]:
    found = [*mine, *theirs, *(Reason(r["kind"], r.get("field"), r.get("value")) for r in pair)]
    unique = list(dict.fromkeys(found))
    return sorted(unique, key=lambda r: REASON_ORDER.get(r.kind, 2))


async def cluster_page(
    store: Store,
    org: str,
    *,
    min_score: float,
    types: Sequence[str] | None,
    first: int,
    after: str | None,
) -> ClusterPage:
    check_arguments(min_score, first)
    clusters = await all_clusters(store, org, min_score, types)
    start = 0
    if after:
        score, cluster_id = decode_cursor(after)
        start = next(
            (n for n, c in enumerate(clusters) if (-c.score, c.id) > (-score, cluster_id)),
            len(clusters),
        )
    page = clusters[start : start + first]
    return ClusterPage(page, len(clusters), start + first < len(clusters))


async def merge_clusters(
    store: Store, principal: Principal, *, min_score: float, first: int
) -> list[ContactDoc]:
    """Merge the best ``first`` clusters, each as one merge with its score and reasons;
    clusters the merge rules refuse (two CURATED, a set over 52, changed meanwhile) are
    skipped. Returns the new canonical contacts."""
    check_arguments(min_score, first)
    merged: list[ContactDoc] = []
    for cluster in (await all_clusters(store, principal.org, min_score))[:first]:
        doc = await merge_cluster(store, principal, cluster)
        if doc is not None:
            merged.append(doc)
    return merged


async def merge_cluster(store: Store, principal: Principal, cluster: Cluster) -> ContactDoc | None:
    """One merge of the cluster, or None when the merge rules refuse it."""
    curated = [c for c in cluster.contacts if c["type"] == ContactType.CURATED]
    if len(curated) > 1:
        return None
    evidence: MergeEvidenceDoc = {
        "score": cluster.score,
        "reasons": [cast(MatchReasonDoc, r.as_doc()) for r in cluster.reasons],
    }
    try:
        doc = await merges.merge_contacts(store, principal, cluster.contact_ids, evidence=evidence)
    except (MergeNotAllowed, NotFound, BadUserInput, Conflict):
        return None
    await matching_pairs.refresh(store, principal.org, doc, claimed=True)
    return doc
