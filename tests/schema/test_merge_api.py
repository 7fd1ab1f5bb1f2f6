"""Merge sets over HTTP: mergeContacts, unmergeContacts, mergeSet, aliases, faults and races."""

from __future__ import annotations

import asyncio
import contextlib
import random
from collections.abc import AsyncIterator
from typing import Any

import pytest
from pymongo import AsyncMongoClient

from resolvers.contact_fields import ContactType
from resolvers.invariants import find_violations
from resolvers.principal import Permission
from resolvers.store import Doc, Store
from tests.conftest import Api, codes
from tests.factories import insert_auto

PHONE_1 = "+18031230001"
PHONE_2 = "+18031230002"
PHONE_3 = "+18031230003"
UNKNOWN_ID = "000000000000000000000000"
COLLECTIONS = ("contacts", "identifiers", "conversations", "merge_sets", "notes")

CONTACT_FIELDS = """
fragment C on Contact {
  id type firstName lastName title cellPhone workPhone homePhone personalEmail
  expiresAt readOnly canonical { id }
  identifiers { type value }
}
"""
SET_FIELDS = """
fragment S on MergeSet {
  id size contactIds canonical { id } contacts { id readOnly }
  history { kind inputIds canonicalId by at }
}
"""
MERGE = (
    CONTACT_FIELDS
    + SET_FIELDS
    + """
mutation($ids: [ID!]!, $o: ContactInput) {
  mergeContacts(contactIds: $ids, valueOverride: $o) { ...C mergeSet { ...S } }
}"""
)
UNMERGE = (
    CONTACT_FIELDS
    + """
mutation($id: ID!) { unmergeContacts(contactId: $id) { ...C mergeSet { id } } }"""
)
MERGE_SET = SET_FIELDS + "query($id: ID!) { mergeSet(contactId: $id) { ...S } }"
CONTACT = (
    CONTACT_FIELDS
    + """
query($id: ID!) {
  contact(id: $id) { ...C notes { text contactId } mergeSet { id contactIds } }
}"""
)
CONTACTS = "query($ids: [ID!]!) { contacts(ids: $ids) { id } }"
IDENTIFIER = "query($v: String!) { identifier(type: PHONE, value: $v) { contact { id } } }"
CREATE = "mutation($i: ContactInput!) { createContact(input: $i) { id } }"
UPDATE = (
    CONTACT_FIELDS
    + "mutation($id: ID!, $i: ContactInput!) { updateContact(id: $id, input: $i) { ...C } }"
)
PROMOTE = CONTACT_FIELDS + "mutation($id: ID!) { promoteContact(id: $id) { ...C } }"
DELETE = "mutation($id: ID!) { deleteContact(id: $id) }"
ADD_NOTE = "mutation($id: ID!, $t: String!) { addNote(contactId: $id, text: $t) { id contactId } }"


async def create(api: Api, first: str = "Alexis", org: str = "acme", **fields: Any) -> str:
    data = await api.gql(
        CREATE, {"i": {"firstName": first, "lastName": "Smith", **fields}}, org=org
    )
    created: str = data["createContact"]["id"]
    return created


async def merge(api: Api, ids: list[str], override: dict[str, Any] | None = None) -> dict[str, Any]:
    data = await api.gql(MERGE, {"ids": ids, "o": override})
    merged: dict[str, Any] = data["mergeContacts"]
    return merged


async def merge_error(
    api: Api, ids: list[str], override: dict[str, Any] | None = None
) -> list[str]:
    data, errors = await api.gql_error(MERGE, {"ids": ids, "o": override})
    assert data is None
    return codes(errors)


async def fetch(api: Api, contact_id: str) -> dict[str, Any]:
    data = await api.gql(CONTACT, {"id": contact_id})
    found: dict[str, Any] = data["contact"]
    return found


async def snapshot(store: Store) -> dict[str, list[Doc]]:
    return {name: await store.db[name].find().sort("_id", 1).to_list() for name in COLLECTIONS}


def phones(contact: dict[str, Any]) -> set[str]:
    return {i["value"] for i in contact["identifiers"] if i["type"] == "PHONE"}


@contextlib.asynccontextmanager
async def failpoint(
    client: AsyncMongoClient[Doc],
    command: str,
    *,
    skip: int = 0,
    code: int = 2,
    labels: list[str] | None = None,
) -> AsyncIterator[None]:
    """Fail the (skip+1)-th ``command`` the server sees, once; always switched off after."""
    data: dict[str, Any] = {"failCommands": [command], "errorCode": code}
    if labels is not None:
        data["errorLabels"] = labels
    await client.admin.command(
        {"configureFailPoint": "failCommand", "mode": {"skip": skip, "times": 1}, "data": data}
    )
    try:
        yield
    finally:
        await client.admin.command({"configureFailPoint": "failCommand", "mode": "off"})


# --- the seed story ---------------------------------------------------------------------------


async def test_identified_caller_merged_into_curated_contact(api: Api, store: Store) -> None:
    alexis = await create(api, workPhone="+1 803-123-0001", personalEmail="alexis@example.com")
    caller = await insert_auto(store, cellPhone="(803) 123-0002")
    await api.gql(ADD_NOTE, {"id": alexis, "t": "prefers email"})
    await api.gql(ADD_NOTE, {"id": caller, "t": "called about billing"})

    merged = await merge(api, [caller, alexis])
    head = merged["id"]
    assert head not in (alexis, caller)
    assert merged["type"] == "CURATED"
    assert (merged["firstName"], merged["workPhone"], merged["cellPhone"]) == (
        "Alexis",
        PHONE_1,
        PHONE_2,
    )
    assert merged["expiresAt"] is None
    assert merged["readOnly"] is False
    assert phones(merged) == {PHONE_1, PHONE_2}
    merge_set = merged["mergeSet"]
    assert merge_set["contactIds"] == [caller, alexis, head]
    assert merge_set["size"] == 3
    assert merge_set["canonical"] == {"id": head}
    assert {c["id"]: c["readOnly"] for c in merge_set["contacts"]} == {
        caller: True,
        alexis: True,
        head: False,
    }
    [event] = merge_set["history"]
    assert {k: v for k, v in event.items() if k != "at"} == {
        "kind": "MERGE",
        "inputIds": [caller, alexis],
        "canonicalId": head,
        "by": "agent-1",
    }

    # the agent opens the caller's id and reads one contact with both phones and both notes
    seen = await fetch(api, caller)
    assert seen["id"] == head
    assert (seen["workPhone"], seen["cellPhone"]) == (PHONE_1, PHONE_2)
    assert phones(seen) == {PHONE_1, PHONE_2}
    assert sorted(n["text"] for n in seen["notes"]) == ["called about billing", "prefers email"]
    for value in (PHONE_1, PHONE_2):
        found = await api.gql(IDENTIFIER, {"v": value})
        assert found["identifier"]["contact"]["id"] == head
    assert await find_violations(store) == []


# --- rules and errors -------------------------------------------------------------------------


async def test_value_override_and_losing_values(api: Api, store: Store) -> None:
    a = await insert_auto(store, cellPhone=PHONE_1, firstName="Al")
    b = await insert_auto(store, cellPhone=PHONE_2, firstName="Bo")
    merged = await merge(api, [a, b], {"firstName": "Alice", "title": "Dr"})
    assert (merged["firstName"], merged["title"], merged["type"]) == ("Alice", "Dr", "IDENTIFIED")
    # the most recently modified input keeps cellPhone; the other phone moves to workPhone
    assert (merged["cellPhone"], merged["workPhone"]) == (PHONE_2, PHONE_1)


async def test_bad_override_is_bad_user_input_and_writes_nothing(api: Api, store: Store) -> None:
    a = await insert_auto(store, cellPhone=PHONE_1)
    b = await insert_auto(store, cellPhone=PHONE_2)
    before = await snapshot(store)
    assert await merge_error(api, [a, b], {"workEmail": "nope"}) == ["BAD_USER_INPUT"]
    assert await merge_error(api, [a, b], {"firstName": "x" * 5000}) == ["BAD_USER_INPUT"]
    assert await snapshot(store) == before


async def test_merge_errors(api: Api, store: Store) -> None:
    ada = await create(api, "Ada")
    bea = await create(api, "Bea")
    eph = await insert_auto(store, ContactType.EPHEMERAL)
    other_org = await create(api, "Olga", org="globex")
    before = await snapshot(store)
    assert await merge_error(api, [ada]) == ["BAD_USER_INPUT"]
    assert await merge_error(api, []) == ["BAD_USER_INPUT"]
    assert await merge_error(api, [ada, eph] * 13) == ["BAD_USER_INPUT"]  # 26 ids
    assert await merge_error(api, [ada, ada]) == ["BAD_USER_INPUT"]
    assert await merge_error(api, [ada, bea, eph]) == ["MERGE_NOT_ALLOWED"]
    assert await merge_error(api, [ada, UNKNOWN_ID]) == ["NOT_FOUND"]
    assert await merge_error(api, [ada, other_org]) == ["NOT_FOUND"]
    assert await snapshot(store) == before

    merged = await merge(api, [ada, eph])
    assert await merge_error(api, [eph, merged["id"]]) == ["BAD_USER_INPUT"]  # one contact
    assert await merge_error(api, [eph, bea]) == ["MERGE_NOT_ALLOWED"]  # curated set + curated

    _, errors = await api.gql_error(UNMERGE, {"id": bea})
    assert codes(errors) == ["BAD_USER_INPUT"]  # never merged
    for unknown in (UNKNOWN_ID, other_org):
        _, errors = await api.gql_error(UNMERGE, {"id": unknown})
        assert codes(errors) == ["NOT_FOUND"]


async def test_a_set_grows_to_at_most_52_members(api: Api, store: Store) -> None:
    ids = [await insert_auto(store, ContactType.EPHEMERAL) for _ in range(50)]
    first = await merge(api, ids[:25])
    big = await merge(api, [first["id"], *ids[25:48]])
    assert big["mergeSet"]["size"] == 50
    assert (await merge(api, [ids[0], ids[48]]))["mergeSet"]["size"] == 52
    assert await merge_error(api, [ids[0], ids[49]]) == ["MERGE_NOT_ALLOWED"]


async def test_merging_needs_the_merge_permission(api: Api, store: Store) -> None:
    a = await insert_auto(store, ContactType.EPHEMERAL)
    b = await insert_auto(store, ContactType.EPHEMERAL)
    viewer = [str(Permission.CONTACT_VIEW), str(Permission.CONTACT_EDIT)]
    data, errors = await api.gql_error(MERGE, {"ids": [a, b]}, permissions=viewer)
    assert (data, codes(errors)) == (None, ["FORBIDDEN"])
    merged = await merge(api, [a, b])
    _, errors = await api.gql_error(UNMERGE, {"id": a}, permissions=viewer)
    assert codes(errors) == ["FORBIDDEN"]
    data, errors = await api.gql_error(
        MERGE_SET, {"id": a}, permissions=[str(Permission.IDENTITY_MERGE)]
    )
    assert (data, codes(errors)) == ({"mergeSet": None}, ["FORBIDDEN"])
    only_merge = [str(Permission.IDENTITY_MERGE)]
    data = await api.gql(
        "mutation($id: ID!) { unmergeContacts(contactId: $id) { id } }",
        {"id": a},
        permissions=only_merge,
    )
    assert [c["id"] for c in data["unmergeContacts"]] == [a, b]
    assert merged["id"] not in {c["id"] for c in data["unmergeContacts"]}


# --- aliases ------------------------------------------------------------------------------------


async def test_ancestor_ids_are_aliases_of_the_canonical(api: Api, store: Store) -> None:
    ada = await create(api, "Ada", workPhone=PHONE_1)
    caller = await insert_auto(store, cellPhone=PHONE_2)
    head = (await merge(api, [ada, caller]))["id"]

    assert (await fetch(api, caller))["id"] == head
    assert (await fetch(api, ada))["canonical"] == {"id": head}
    data = await api.gql(CONTACTS, {"ids": [ada, caller, head, UNKNOWN_ID]})
    assert data["contacts"] == [{"id": head}, {"id": head}, {"id": head}, None]
    for member in (ada, caller, head):
        data = await api.gql(MERGE_SET, {"id": member})
        assert data["mergeSet"]["canonical"] == {"id": head}
    data = await api.gql(UPDATE, {"id": caller, "i": {"title": "Dr"}})
    assert (data["updateContact"]["id"], data["updateContact"]["title"]) == (head, "Dr")
    data = await api.gql(PROMOTE, {"id": ada})
    assert data["promoteContact"]["id"] == head
    _, errors = await api.gql_error(ADD_NOTE, {"id": caller, "t": "hi"})
    assert codes(errors) == ["READ_ONLY"]
    note = await api.gql(ADD_NOTE, {"id": head, "t": "hello"})
    assert note["addNote"]["contactId"] == head
    assert await find_violations(store) == []


async def test_promote_through_an_ancestor_promotes_the_canonical(api: Api, store: Store) -> None:
    a = await insert_auto(store, cellPhone=PHONE_1)
    b = await insert_auto(store, cellPhone=PHONE_2)
    head = (await merge(api, [a, b]))["id"]
    data = await api.gql(PROMOTE, {"id": a})
    assert (data["promoteContact"]["id"], data["promoteContact"]["type"]) == (head, "CURATED")
    assert data["promoteContact"]["expiresAt"] is None


async def test_deleting_an_ancestor_deletes_the_whole_set(api: Api, store: Store) -> None:
    ada = await create(api, "Ada", workPhone=PHONE_1)
    caller = await insert_auto(store, cellPhone=PHONE_2)
    head = (await merge(api, [ada, caller]))["id"]
    later = await insert_auto(store, cellPhone=PHONE_2)  # lists the set's phone too
    data = await api.gql(DELETE, {"id": caller})
    assert data["deleteContact"] is True
    for member in (ada, caller, head):
        assert (await api.gql(CONTACT, {"id": member}))["contact"] is None
        assert (await api.gql(MERGE_SET, {"id": member}))["mergeSet"] is None
    assert await store.merge_sets.count_documents({}) == 0
    found = await api.gql(IDENTIFIER, {"v": PHONE_2})
    assert found["identifier"]["contact"]["id"] == later  # released, then re-claimed
    assert (await api.gql(IDENTIFIER, {"v": PHONE_1}))["identifier"] is None
    assert await find_violations(store) == []


async def test_merge_set_of_a_never_merged_or_unknown_contact_is_null(api: Api) -> None:
    ada = await create(api)
    for contact_id in (ada, UNKNOWN_ID):
        assert (await api.gql(MERGE_SET, {"id": contact_id}))["mergeSet"] is None
    assert (await fetch(api, ada))["mergeSet"] is None


async def test_notes_of_every_member_show_on_the_canonical(api: Api, store: Store) -> None:
    a = await insert_auto(store, cellPhone=PHONE_1)
    b = await insert_auto(store, cellPhone=PHONE_2)
    c = await insert_auto(store, cellPhone=PHONE_3)
    for contact_id, text in ((a, "one"), (b, "two"), (c, "three")):
        await api.gql(ADD_NOTE, {"id": contact_id, "t": text})
    first = await merge(api, [a, b])
    await api.gql(ADD_NOTE, {"id": first["id"], "t": "four"})
    second = await merge(api, [first["id"], c])
    await api.gql(ADD_NOTE, {"id": second["id"], "t": "five"})
    seen = await fetch(api, a)
    assert [n["text"] for n in seen["notes"]] == ["five", "four", "three", "two", "one"]


# --- growing sets and unmerge ------------------------------------------------------------------


async def test_merge_of_a_merge_then_unmerges_walk_back(api: Api, store: Store) -> None:
    a = await insert_auto(store, cellPhone=PHONE_1, firstName="Al")
    b = await insert_auto(store, cellPhone=PHONE_2, firstName="Bo")
    c = await insert_auto(store, ContactType.EPHEMERAL)
    before_any = await fetch(api, a), await fetch(api, b)
    first = await merge(api, [a, b])
    second = await merge(api, [c, a])
    assert second["mergeSet"]["id"] == first["mergeSet"]["id"]
    assert second["mergeSet"]["contactIds"] == [a, b, first["id"], c, second["id"]]
    assert second["type"] == "IDENTIFIED"
    assert phones(second) == {PHONE_1, PHONE_2}
    assert [(e["kind"], e["canonicalId"]) for e in second["mergeSet"]["history"]] == [
        ("MERGE", first["id"]),
        ("MERGE", second["id"]),
    ]

    data = await api.gql(UNMERGE, {"id": b})
    restored = data["unmergeContacts"]
    assert [r["id"] for r in restored] == [c, first["id"]]
    assert restored[0]["type"] == "EPHEMERAL"
    assert restored[0]["expiresAt"] is not None
    assert restored[0]["mergeSet"] is None
    assert restored[1]["mergeSet"] == {"id": first["mergeSet"]["id"]}
    assert (await fetch(api, a))["id"] == first["id"]
    assert (await fetch(api, c))["id"] == c
    assert (await api.gql(CONTACT, {"id": second["id"]}))["contact"] is None
    merge_set = (await api.gql(MERGE_SET, {"id": a}))["mergeSet"]
    assert merge_set["canonical"] == {"id": first["id"]}
    assert [(e["kind"], e["canonicalId"], e["inputIds"]) for e in merge_set["history"]] == [
        ("MERGE", first["id"], [a, b]),
        ("MERGE", second["id"], [c, first["id"]]),
        ("UNMERGE", second["id"], [c, first["id"]]),
    ]

    data = await api.gql(UNMERGE, {"id": first["id"]})
    assert [r["id"] for r in data["unmergeContacts"]] == [a, b]
    assert (await fetch(api, a), await fetch(api, b)) == before_any
    assert (await api.gql(MERGE_SET, {"id": a}))["mergeSet"] is None
    assert await find_violations(store) == []


async def test_merging_two_sets_then_unmerging_restores_both(api: Api, store: Store) -> None:
    a, b, c, d = [await insert_auto(store, cellPhone=f"+1803123000{i}") for i in range(4)]
    left = await merge(api, [a, b])
    right = await merge(api, [c, d])
    both = await merge(api, [a, d])
    assert both["mergeSet"]["size"] == 7
    assert [e["canonicalId"] for e in both["mergeSet"]["history"]] == [
        left["id"],
        right["id"],
        both["id"],
    ]
    await api.gql(UNMERGE, {"id": c})
    for member, head in ((a, left["id"]), (b, left["id"]), (c, right["id"]), (d, right["id"])):
        merge_set = (await api.gql(MERGE_SET, {"id": member}))["mergeSet"]
        assert merge_set["canonical"] == {"id": head}
        assert merge_set["size"] == 3
    assert await find_violations(store) == []


async def test_unmerge_restores_every_document_exactly(api: Api, store: Store) -> None:
    ada = await create(api, "Ada", workPhone=PHONE_1, personalEmail="ada@example.com")
    caller = await insert_auto(store, cellPhone=PHONE_2, personalEmail="caller@example.com")
    await api.gql(ADD_NOTE, {"id": caller, "t": "note"})
    before = await snapshot(store)
    merged = await merge(api, [ada, caller], {"lastName": "King"})
    data = await api.gql(UNMERGE, {"id": merged["id"]})
    assert [r["id"] for r in data["unmergeContacts"]] == [ada, caller]
    assert await snapshot(store) == before


# --- faults ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("command", "skip"),
    [
        ("insert", 0),  # the new canonical contact
        ("update", 0),  # the inputs becoming ancestors
        ("update", 1),  # the identifiers moving to the new canonical
        ("insert", 1),  # the merge set, the last write
    ],
)
async def test_a_failed_merge_step_leaves_no_trace(
    api: Api, store: Store, client: AsyncMongoClient[Doc], command: str, skip: int
) -> None:
    ada = await create(api, "Ada", workPhone=PHONE_1)
    caller = await insert_auto(store, cellPhone=PHONE_2)
    before = await snapshot(store)
    async with failpoint(client, command, skip=skip):
        response = await api.post(MERGE, {"ids": [ada, caller]})
    assert response.status_code == 200
    body = response.json()
    assert body["data"] is None
    assert codes(body["errors"]) == ["INTERNAL_SERVER_ERROR"]
    assert "failpoint" not in response.text.lower()
    assert await snapshot(store) == before
    merged = await merge(api, [ada, caller])  # and trying again works
    assert phones(merged) == {PHONE_1, PHONE_2}
    assert await find_violations(store) == []


@pytest.mark.parametrize(
    ("command", "skip"),
    [
        ("delete", 0),  # the canonical contact
        ("update", 0),  # the first input restored
        ("delete", 1),  # the merge set
        ("update", 3),  # the second identifier given back
    ],
)
async def test_a_failed_unmerge_step_leaves_no_trace(
    api: Api, store: Store, client: AsyncMongoClient[Doc], command: str, skip: int
) -> None:
    ada = await create(api, "Ada", workPhone=PHONE_1)
    caller = await insert_auto(store, cellPhone=PHONE_2)
    original = await snapshot(store)
    merged = await merge(api, [ada, caller])
    before = await snapshot(store)
    async with failpoint(client, command, skip=skip):
        response = await api.post(UNMERGE, {"id": caller})
    assert response.status_code == 200
    assert codes(response.json()["errors"]) == ["INTERNAL_SERVER_ERROR"]
    assert await snapshot(store) == before
    assert (await fetch(api, caller))["id"] == merged["id"]
    await api.gql(UNMERGE, {"id": caller})
    assert await snapshot(store) == original


async def test_a_transient_failure_is_retried_once_and_applied_once(
    api: Api, store: Store, client: AsyncMongoClient[Doc]
) -> None:
    ada = await create(api, "Ada", workPhone=PHONE_1)
    caller = await insert_auto(store, cellPhone=PHONE_2)
    async with failpoint(client, "update", skip=1, code=112, labels=["TransientTransactionError"]):
        merged = await merge(api, [ada, caller])
    assert await store.contacts.count_documents({}) == 3
    assert await store.merge_sets.count_documents({}) == 1
    assert merged["mergeSet"]["contactIds"] == [ada, caller, merged["id"]]
    assert len(merged["mergeSet"]["history"]) == 1
    assert await find_violations(store) == []


# --- races ------------------------------------------------------------------------------------------


async def test_racing_overlapping_merges_over_http(api: Api, store: Store) -> None:
    rng = random.Random(7)
    ids = [await create(api, "Ada", cellPhone=PHONE_1)]
    ids += [await insert_auto(store, cellPhone=f"+180355500{i:02}") for i in range(7)]
    ids += [await insert_auto(store, ContactType.EPHEMERAL) for _ in range(4)]

    async def attempt(picked: list[str]) -> str:
        body = (await api.post(MERGE, {"ids": picked})).json()
        if body.get("errors"):
            [code] = codes(body["errors"])
            return str(code)
        return "ok"

    outcomes = await asyncio.gather(
        *(attempt(rng.sample(ids, rng.choice([2, 3]))) for _ in range(20))
    )
    assert "ok" in outcomes
    assert set(outcomes) <= {"ok", "CONFLICT", "MERGE_NOT_ALLOWED", "BAD_USER_INPUT"}
    assert await find_violations(store) == []
    for contact_id in ids:  # every id reads as one live canonical contact
        seen = await fetch(api, contact_id)
        assert seen["readOnly"] is False
        if seen["id"] != contact_id:
            assert seen["mergeSet"] is not None
            assert contact_id in seen["mergeSet"]["contactIds"]
