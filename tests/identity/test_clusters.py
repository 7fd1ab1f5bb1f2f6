"""duplicateClusters and mergeDuplicateClusters: connected groups at a score, cut at 25,
best first, types, keyset pages; merges with score and reasons, refusals skipped."""

from __future__ import annotations

import pytest

from resolvers import clusters, matching_pairs
from resolvers.contact_fields import ContactType
from resolvers.documents import ContactDoc
from resolvers.errors import BadUserInput
from resolvers.store import Store
from tests.conftest import Api, codes, principal
from tests.factories import add_contact, auto_contact

P = principal()


async def pairs_of(store: Store, *docs: ContactDoc) -> None:
    for doc in docs:
        await matching_pairs.refresh(store, "acme", doc)


def ids(cluster: clusters.Cluster) -> set[str]:
    return set(cluster.contact_ids)


async def test_connected_pairs_form_one_cluster_held_by_its_weakest_pair(store: Store) -> None:
    ann = await auto_contact(
        store,
        firstName="Ann",
        lastName="Lee",
        cellPhone="+18035550001",
        personalEmail="ann@example.com",
    )
    anne = await auto_contact(store, firstName="Anne", lastName="Lee", workPhone="+18035550001")
    annie = await auto_contact(
        store, firstName="Annie", lastName="Lee", workEmail="ann@example.com"
    )
    await auto_contact(store, firstName="Zed", lastName="Quinn", cellPhone="+18035550999")
    await pairs_of(store, ann, anne, annie)
    found = await clusters.all_clusters(store, "acme", 0.9)
    assert [ids(c) for c in found] == [{ann["_id"], anne["_id"], annie["_id"]}]
    [cluster] = found
    assert cluster.contacts[0]["_id"] == ann["_id"]  # oldest first
    assert 0.9 <= cluster.score < 1
    assert {r.kind for r in cluster.reasons} == {"SHARED_IDENTIFIER", "SIMILAR_NAME"}
    assert cluster.reasons[0].kind == "SHARED_IDENTIFIER"


async def test_min_score_and_types_filter(store: Store) -> None:
    alexis = await add_contact(
        store, firstName="Alexis", lastName="Smith", workPhone="+18031230000"
    )
    david = await auto_contact(store, firstName="David", lastName="Jones", cellPhone="+18031230000")
    await pairs_of(store, alexis, david)
    assert await clusters.all_clusters(store, "acme", 0.9) == []  # Alexis and David: < 0.9
    [possible] = await clusters.all_clusters(store, "acme", 0.5)
    assert ids(possible) == {alexis["_id"], david["_id"]}
    assert await clusters.all_clusters(store, "acme", 0.5, ["CURATED"]) == []
    assert len(await clusters.all_clusters(store, "acme", 0.5, ["CURATED", "IDENTIFIED"])) == 1


async def test_a_big_group_is_cut_into_parts_of_at_most_25(store: Store) -> None:
    docs = [
        await auto_contact(
            store,
            firstName="Kim",
            lastName="Park",
            cellPhone="+18035550100",
            personalEmail=f"kim{n}@example.com",
        )
        for n in range(30)
    ]
    await pairs_of(store, *docs)
    found = await clusters.all_clusters(store, "acme", 0.9)
    assert sorted(len(c.contacts) for c in found) == [5, 25]
    assert set().union(*(ids(c) for c in found)) == {d["_id"] for d in docs}


async def test_merged_deleted_and_expired_contacts_leave_their_pairs(store: Store) -> None:
    a = await auto_contact(store, firstName="Kim", lastName="Park", cellPhone="+18035550100")
    b = await auto_contact(store, firstName="Kim", lastName="Park", workPhone="+18035550100")
    await pairs_of(store, a, b)
    assert len(await clusters.all_clusters(store, "acme", 0.9)) == 1
    await store.contacts.delete_one({"_id": b["_id"]})
    assert await clusters.all_clusters(store, "acme", 0.9) == []


async def test_merge_clusters_merges_each_with_its_evidence_and_skips_refusals(
    store: Store,
) -> None:
    kim = await add_contact(store, firstName="Kim", lastName="Park", workPhone="+18035550100")
    kim2 = await auto_contact(store, firstName="Kim", lastName="Park", cellPhone="+18035550100")
    two = [
        await add_contact(store, firstName="Bo", lastName="Ek", workEmail="bo@example.com"),
        await add_contact(store, firstName="Bo", lastName="Ek", otherEmail="bo@example.com"),
    ]  # two CURATED: the merge rules refuse them
    await pairs_of(store, kim, kim2, *two)
    assert len(await clusters.all_clusters(store, "acme", 0.9)) == 2
    merged = await clusters.merge_clusters(store, P, min_score=0.9, first=10)
    assert len(merged) == 1
    canonical = merged[0]
    event = await store.merge_events.find_one({"canonicalId": canonical["_id"]})
    assert event is not None and event["by"] == "agent-1"
    assert event["score"] >= 0.9
    assert event["reasons"][0] == {  # as the last refreshed of the pair (kim2) saw it
        "kind": "SHARED_IDENTIFIER",
        "field": "cellPhone",
        "value": "+18035550100",
    }
    left = await clusters.all_clusters(store, "acme", 0.9)
    assert [ids(c) for c in left] == [{d["_id"] for d in two}]  # the refused one stays


@pytest.mark.parametrize("min_score,first", [(-0.1, 10), (1.1, 10), (0.9, 0), (0.9, 101)])
async def test_bad_arguments(store: Store, min_score: float, first: int) -> None:
    with pytest.raises(BadUserInput):
        await clusters.cluster_page(
            store, "acme", min_score=min_score, types=None, first=first, after=None
        )
    with pytest.raises(BadUserInput):
        await clusters.merge_clusters(store, P, min_score=min_score, first=first)


PAGE = """query($after: String, $min: Float) {
  duplicateClusters(first: 2, after: $after, minScore: $min) {
    totalCount pageInfo { hasNextPage endCursor }
    edges { node { id score contacts { id } reasons { kind field value } } }
  }
}"""
CREATE = "mutation($i: ContactInput!) { createContact(input: $i) { id } }"


async def test_pages_over_the_api(api: Api, store: Store) -> None:
    for n in range(5):  # five pairs of curated contacts sharing a number and a name
        for field in ("workPhone", "cellPhone"):
            await api.gql(
                CREATE,
                {"i": {"firstName": f"Kim{n}x", "lastName": "Park", field: f"+1803555{n:04d}"}},
            )
    seen: list[str] = []
    after = None
    while True:
        data = (await api.gql(PAGE, {"after": after}))["duplicateClusters"]
        assert data["totalCount"] == 5
        seen += [e["node"]["id"] for e in data["edges"]]
        assert all(len(e["node"]["contacts"]) == 2 for e in data["edges"])
        if not data["pageInfo"]["hasNextPage"]:
            break
        after = data["pageInfo"]["endCursor"]
    assert len(seen) == len(set(seen)) == 5
    _, errors = await api.gql_error(PAGE, {"after": "garbage!"})
    assert codes(errors) == ["BAD_USER_INPUT"]
    _, errors = await api.gql_error(PAGE, {"min": 2})
    assert codes(errors) == ["BAD_USER_INPUT"]


MERGE_CLUSTERS = """mutation { mergeDuplicateClusters(minScore: 0.9) {
  id mergeSet { history { kind by score reasons { kind field value } } }
} }"""
RECORD = """mutation($i: InteractionInput!) { recordInteraction(input: $i) { contact { id } } }"""


async def test_merge_duplicate_clusters_over_the_api_and_undo(api: Api, store: Store) -> None:
    kim = (
        await api.gql(
            CREATE, {"i": {"firstName": "Kim", "lastName": "Park", "workEmail": "kim@example.com"}}
        )
    )["createContact"]["id"]
    other = await auto_contact(
        store,
        ContactType.IDENTIFIED,
        firstName="Kim",
        lastName="Parks",
        personalEmail="kim@example.com",
    )
    await pairs_of(store, other)
    data = await api.gql(MERGE_CLUSTERS)
    [merged] = data["mergeDuplicateClusters"]
    [event] = merged["mergeSet"]["history"]
    assert event["kind"] == "MERGE" and event["by"] == "agent-1" and event["score"] >= 0.9
    assert event["reasons"] == [
        {"kind": "SHARED_IDENTIFIER", "field": "personalEmail", "value": "kim@example.com"},
        {"kind": "SIMILAR_NAME", "field": "name", "value": "Kim Park"},
    ]
    undone = await api.gql(
        "mutation($id: ID!) { unmergeContacts(contactId: $id) { id } }", {"id": merged["id"]}
    )
    assert {c["id"] for c in undone["unmergeContacts"]} == {kim, other["_id"]}
