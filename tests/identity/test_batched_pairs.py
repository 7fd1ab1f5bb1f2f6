"""Match pairs kept for many contacts at once (resolvers/matching_batch.py): bulk writes
refresh them and merge automatically like createContact; the seeded data set and the CSV
import get theirs from rebuild_org; the batch finds the pairs one refresh per contact finds."""

from __future__ import annotations

from typing import Any

from resolvers import clusters, matching_batch, matching_pairs
from resolvers.clock import now
from resolvers.importer import import_rows
from resolvers.store import Store
from tests.conftest import Api, principal
from tests.factories import auto_contact
from tests.identity.test_auto_merge import EMAIL, PHONE, SETTINGS, caller_with_phone_and_email

BULK_CREATE = """mutation($i: [ContactInput!]!) {
  bulkCreateContacts(inputs: $i) {
    index contact { id mergeSet { size history { kind by score } } } error { code } }
}"""
BULK_UPDATE = """mutation($u: [ContactUpdate!]!) {
  bulkUpdateContacts(updates: $u) { index contact { id } error { code } } }"""
CLUSTERS = """query { duplicateClusters(first: 100) {
  totalCount edges { node { score contacts { id } } } } }"""


def twins(n: int) -> list[dict[str, Any]]:
    """Pairs of curated contacts sharing a phone (in two fields) and a name."""
    return [
        {"firstName": f"Kim{i}x", "lastName": "Park", field: f"+1803555{i:04d}"}
        for i in range(n)
        for field in ("workPhone", "cellPhone")
    ]


async def cluster_sets(api: Api) -> list[set[str]]:
    data = (await api.gql(CLUSTERS))["duplicateClusters"]
    return [{c["id"] for c in e["node"]["contacts"]} for e in data["edges"]]


async def stored_pairs(store: Store) -> dict[str, float]:
    found = await matching_pairs.pairs_collection(store).find({"org": "acme"}).to_list()
    return {p["_id"]: p["score"] for p in found}


async def test_bulk_created_duplicates_form_clusters_as_single_writes_would(
    api: Api, store: Store
) -> None:
    made = (await api.gql(BULK_CREATE, {"i": twins(5)}))["bulkCreateContacts"]
    ids = [m["contact"]["id"] for m in made]
    assert sorted(map(sorted, await cluster_sets(api))) == sorted(
        sorted(ids[i : i + 2]) for i in range(0, 10, 2)
    )
    batched = await stored_pairs(store)
    # the same pairs, with the same scores, as one refresh per contact finds
    await matching_pairs.pairs_collection(store).delete_many({})
    docs = await store.contacts.find({"org": "acme"}).to_list()
    await matching_pairs.refresh_all(store, "acme", docs)
    assert await stored_pairs(store) == batched and len(batched) == 5


async def test_bulk_update_that_adds_a_shared_value_makes_a_pair(api: Api) -> None:
    made = await api.gql(
        BULK_CREATE, {"i": [twins(1)[0], {"firstName": "Kim0x", "lastName": "Park"}]}
    )
    first, second = (m["contact"]["id"] for m in made["bulkCreateContacts"])
    assert await cluster_sets(api) == []  # a similar name alone is below the floor
    updates = [{"id": second, "input": {"cellPhone": "+18035550000"}}]
    await api.gql(BULK_UPDATE, {"u": updates})
    assert await cluster_sets(api) == [{first, second}]


async def test_with_auto_merge_a_bulk_created_duplicate_merges_by_auto(api: Api) -> None:
    await api.gql(SETTINGS, {"i": {"autoMerge": True}})
    caller = await caller_with_phone_and_email(api, firstName="Kim", lastName="Park")
    items = [
        {"firstName": "Ann", "lastName": "Lee", "cellPhone": "+18035550999"},
        {"firstName": "Kim", "lastName": "Park", "workPhone": PHONE, "workEmail": EMAIL},
    ]
    plain, merged = (await api.gql(BULK_CREATE, {"i": items}))["bulkCreateContacts"]
    assert plain["contact"]["mergeSet"] is None
    assert merged["contact"]["mergeSet"]["size"] == 3
    [event] = merged["contact"]["mergeSet"]["history"]
    assert event["kind"] == "MERGE" and event["by"] == "auto" and event["score"] >= 0.95
    assert caller != merged["contact"]["id"]


async def test_with_auto_merge_off_a_bulk_created_duplicate_stays(api: Api) -> None:
    await caller_with_phone_and_email(api, firstName="Kim", lastName="Park")
    items = [{"firstName": "Kim", "lastName": "Park", "workPhone": PHONE, "workEmail": EMAIL}]
    [made] = (await api.gql(BULK_CREATE, {"i": items}))["bulkCreateContacts"]
    assert made["contact"]["mergeSet"] is None
    assert len(await cluster_sets(api)) == 1


async def test_the_seeded_twins_are_found_after_a_rebuild(store: Store) -> None:
    from gateway.seeding import seed

    await seed(store, "acme", contacts=200, merge_sets=0, conversations=0, seed=3)
    planted = await store.contacts.find(
        {"org": "acme", "type": "CURATED", "personalEmail": {"$ne": None}}
    ).to_list()
    assert planted, "the seed plants duplicates"
    page = await clusters.cluster_page(
        store, "acme", min_score=0.9, types=None, first=100, after=None
    )
    assert page.clusters == []  # inserted around the gateway: no pairs yet
    ticks: list[int] = []
    await matching_batch.rebuild_org(store, "acme", progress=ticks.append, batch=50)
    live = await store.contacts.count_documents(
        {"org": "acme", "$or": [{"expiresAt": None}, {"expiresAt": {"$gt": now()}}]}
    )
    assert sum(ticks) == live > 100 and max(ticks) <= 50  # every live one, 50 at a time
    page = await clusters.cluster_page(
        store, "acme", min_score=0.9, types=None, first=100, after=None
    )
    found = [set(c.contact_ids) for c in page.clusters]
    for twin in planted:
        original = await store.contacts.find_one(
            {"org": "acme", "workEmail": twin["personalEmail"]}
        )
        assert original is not None
        assert {original["_id"], twin["_id"]} in found


async def test_imported_near_duplicates_are_found_after_a_rebuild(store: Store) -> None:
    rows = [
        (2, {"firstName": "Jonathan", "lastName": "Smith", "cellPhone": "+18035551234"}),
        (3, {"firstName": "Jonathon", "lastName": "Smith", "workPhone": "803-555-1234"}),
    ]
    report = await import_rows(store, principal(), rows)
    assert report.created == 2
    await matching_batch.rebuild_org(store, "acme")
    page = await clusters.cluster_page(
        store, "acme", min_score=0.9, types=None, first=10, after=None
    )
    [cluster] = page.clusters
    names = {c["firstName"] for c in cluster.contacts}
    assert names == {"Jonathan", "Jonathon"}


MERGE = "mutation($ids: [ID!]!) { mergeContacts(contactIds: $ids) { id } }"
UNMERGE = "mutation($id: ID!) { unmergeContacts(contactId: $id) { id } }"


async def test_an_unmerge_gives_its_restored_contacts_back_their_pairs(
    api: Api, store: Store
) -> None:
    # a curated contact and two auto-created ones, each sharing a value and the name with it
    create = "mutation($i: ContactInput!) { createContact(input: $i) { id } }"
    curated = {
        "firstName": "Kimx",
        "lastName": "Park",
        "workPhone": "+18035550000",
        "personalEmail": "kimx@example.com",
    }
    kim = (await api.gql(create, {"i": curated}))["createContact"]["id"]
    callers = [
        await auto_contact(store, firstName="Kimx", lastName="Park", cellPhone="+18035550000"),
        await auto_contact(store, firstName="Kimx", lastName="Park", otherEmail="kimx@example.com"),
    ]
    for doc in callers:
        await matching_pairs.refresh(store, "acme", doc)
    ids = {kim, *(c["_id"] for c in callers)}
    assert await cluster_sets(api) == [ids]
    merged = (await api.gql(MERGE, {"ids": sorted(ids)}))["mergeContacts"]["id"]
    assert await cluster_sets(api) == []  # one merged contact: no pair left
    # the members' old pairs are only hidden while merged; drop them all, so that only the
    # unmerge's refreshes can bring the pairs back
    await matching_pairs.pairs_collection(store).delete_many({})
    restored = (await api.gql(UNMERGE, {"id": merged}))["unmergeContacts"]
    assert {c["id"] for c in restored} == ids
    assert await cluster_sets(api) == [ids]
    # the pairs the unmerge's refreshes wrote (concurrently) are those of one refresh each
    after_unmerge = await stored_pairs(store)
    await matching_pairs.pairs_collection(store).delete_many({})
    for doc in await store.contacts.find({"org": "acme", "_id": {"$in": list(ids)}}).to_list():
        await matching_pairs.refresh(store, "acme", doc, claimed=True)
    assert await stored_pairs(store) == after_unmerge and len(after_unmerge) == 2
