"""Automatic merging (autoMerge on): in the request that changed the evidence, one merge by
"auto" with score and reasons, undone by unmergeContacts; off by default; racing requests
make one merge."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime
from typing import Any

from pymongo import AsyncMongoClient

from resolvers.invariants import find_violations
from resolvers.store import Doc, Store
from tests.conftest import Api
from tests.schema.test_merge_api import failpoint

CREATE = """mutation($i: ContactInput!) {
  createContact(input: $i) {
    id type mergeSet { size history { kind by score reasons { kind field value } } }
  }
}"""
UPDATE = """mutation($id: ID!, $i: ContactInput!) {
  updateContact(id: $id, input: $i) { id mergeSet { size history { by score } } }
}"""
RECORD = """mutation($i: InteractionInput!) {
  recordInteraction(input: $i) { created contact { id mergeSet { size history { by } } } }
}"""
SETTINGS = """mutation($i: IdentitySettingsInput!) {
  updateIdentitySettings(input: $i) { autoMerge autoMergeMinScore }
}"""
UNMERGE = "mutation($id: ID!) { unmergeContacts(contactId: $id) { id } }"
PHONE = "+18035550142"
EMAIL = "kim@example.com"


async def visit(api: Api, *identifiers: tuple[str, str], **more: Any) -> dict[str, Any]:
    data = await api.gql(
        RECORD,
        {
            "i": {
                "conversationId": f"c-{uuid.uuid4().hex[:8]}",
                "channel": "VOICE",
                "startedAt": datetime.now(UTC).isoformat(),
                "identifiers": [{"type": t, "value": v} for t, v in identifiers],
                **more,
            }
        },
    )
    result: dict[str, Any] = data["recordInteraction"]
    return result


async def caller_with_phone_and_email(api: Api, **provided: str) -> str:
    """An IDENTIFIED contact from a call that carried a phone and an email (and the name the
    caller gave, if any)."""
    more = {"provided": provided} if provided else {}
    result = await visit(api, ("PHONE", PHONE), ("EMAIL", EMAIL), **more)
    assert result["created"]
    return str(result["contact"]["id"])


async def test_off_by_default_nothing_merges(api: Api) -> None:
    await caller_with_phone_and_email(api)
    data = await api.gql(
        CREATE,
        {"i": {"firstName": "Kim", "lastName": "Park", "workPhone": PHONE, "workEmail": EMAIL}},
    )
    assert data["createContact"]["mergeSet"] is None


async def test_create_contact_merges_with_a_strong_suggestion_and_unmerge_undoes_it(
    api: Api, store: Store
) -> None:
    await api.gql(SETTINGS, {"i": {"autoMerge": True}})  # at 0.95, the default
    caller = await caller_with_phone_and_email(api, firstName="Kim", lastName="Park")
    data = await api.gql(
        CREATE,
        {"i": {"firstName": "Kim", "lastName": "Park", "workPhone": PHONE, "workEmail": EMAIL}},
    )
    merged = data["createContact"]
    assert merged["type"] == "CURATED"
    assert merged["mergeSet"]["size"] == 3
    [event] = merged["mergeSet"]["history"]
    assert event["kind"] == "MERGE" and event["by"] == "auto"
    assert event["score"] >= 0.95
    assert [r["kind"] for r in event["reasons"]] == [
        "SHARED_IDENTIFIER",
        "SHARED_IDENTIFIER",
        "SIMILAR_NAME",
    ]
    [change] = await store.db["changes"].find({"kind": "CONTACTS_MERGED"}).to_list()
    assert change["by"] == "auto" and change["contactId"] == merged["id"]
    restored = await api.gql(UNMERGE, {"id": merged["id"]})
    assert caller in {c["id"] for c in restored["unmergeContacts"]}
    assert len(restored["unmergeContacts"]) == 2


async def test_below_the_threshold_nothing_merges(api: Api) -> None:
    await api.gql(SETTINGS, {"i": {"autoMerge": True, "autoMergeMinScore": 1.0}})
    await caller_with_phone_and_email(api)
    data = await api.gql(
        CREATE,
        {"i": {"firstName": "Kim", "lastName": "Park", "workPhone": PHONE, "workEmail": EMAIL}},
    )
    assert data["createContact"]["mergeSet"] is None


async def test_update_contact_that_adds_evidence_merges(api: Api) -> None:
    await api.gql(SETTINGS, {"i": {"autoMerge": True, "autoMergeMinScore": 0.9}})
    await caller_with_phone_and_email(api)
    made = await api.gql(
        CREATE, {"i": {"firstName": "Kim", "lastName": "Park", "workPhone": PHONE}}
    )
    assert made["createContact"]["mergeSet"] is None  # one shared value, unnamed caller: 0.7
    data = await api.gql(UPDATE, {"id": made["createContact"]["id"], "i": {"workEmail": EMAIL}})
    assert data["updateContact"]["mergeSet"]["history"][0]["by"] == "auto"


async def test_two_curated_contacts_never_merge_by_themselves(api: Api) -> None:
    await api.gql(SETTINGS, {"i": {"autoMerge": True, "autoMergeMinScore": 0.9}})
    await api.gql(CREATE, {"i": {"firstName": "Kim", "lastName": "Park", "workPhone": PHONE}})
    data = await api.gql(
        CREATE, {"i": {"firstName": "Kim", "lastName": "Park", "cellPhone": PHONE}}
    )
    assert data["createContact"]["mergeSet"] is None


async def test_racing_interactions_make_one_merge(api: Api, store: Store) -> None:
    """A caller and a curated contact share a phone and an email (autoMerge was off); then
    two interactions, one stitching a cookie to each, race to merge them: one merge."""
    caller = await caller_with_phone_and_email(api)
    made = await api.gql(
        CREATE,
        {
            "i": {
                "firstName": "Kim",
                "lastName": "Park",
                "workPhone": PHONE,
                "workEmail": EMAIL,
                "twitterId": "kimpark",
            }
        },
    )
    curated = made["createContact"]["id"]
    await api.gql(SETTINGS, {"i": {"autoMerge": True, "autoMergeMinScore": 0.9}})
    results = await asyncio.gather(
        visit(api, ("PHONE", PHONE), ("COOKIE", "gc-caller")),
        visit(api, ("TWITTER", "kimpark"), ("COOKIE", "gc-curated"), channel="TWITTER"),
    )
    events = await store.merge_events.find({"org": "acme"}).to_list()
    assert len(events) == 1
    assert set(events[0]["inputIds"]) == {caller, curated}
    heads = {r["contact"]["id"] for r in results}
    assert heads == {events[0]["canonicalId"]}  # both answer with the merged contact


async def test_a_failed_automatic_merge_leaves_no_trace_and_the_write_stands(
    api: Api, store: Store, client: AsyncMongoClient[Doc]
) -> None:
    await api.gql(SETTINGS, {"i": {"autoMerge": True}})
    await caller_with_phone_and_email(api, firstName="Kim", lastName="Park")
    # inserts: the contact, its two claims (both held already), then the merge's canonical
    async with failpoint(client, "insert", skip=3, labels=[]):
        data = await api.gql(
            CREATE,
            {"i": {"firstName": "Kim", "lastName": "Park", "workPhone": PHONE, "workEmail": EMAIL}},
        )
    assert data["createContact"]["mergeSet"] is None
    assert await store.merge_sets.count_documents({}) == 0
    assert await store.merge_events.count_documents({}) == 0
    assert await store.contacts.count_documents({"readOnly": True}) == 0
    assert await find_violations(store) == []
