"""CONTRACT.md section 7, the directory half: bulk writes, scanContacts, upsertContact,
updateNote and deleteNote, through the API against the real server."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from resolvers.clock import now
from resolvers.contact_fields import ContactType
from resolvers.invariants import find_violations
from resolvers.store import Store
from tests.conftest import Api, codes
from tests.factories import add_merge_set, insert_auto

BULK_CREATE = """mutation($i: [ContactInput!]!) {
  bulkCreateContacts(inputs: $i) { index contact { id type cellPhone } error { code message } }
}"""
BULK_UPDATE = """mutation($u: [ContactUpdate!]!) {
  bulkUpdateContacts(updates: $u) { index contact { id type title cellPhone expiresAt }
    error { code message } }
}"""
BULK_DELETE = """mutation($ids: [ID!]!) {
  bulkDeleteContacts(ids: $ids) { index contact { id } error { code message } }
}"""
UPSERT = """mutation($m: [IdentifierInput!]!, $i: ContactInput!, $r: UpsertRule) {
  upsertContact(match: $m, input: $i, rule: $r) {
    created contact { id type firstName title workEmail identifiers { type value } } }
}"""
SCAN = """query($first: Int, $after: String, $types: [ContactType!], $since: DateTime) {
  scanContacts(first: $first, after: $after, types: $types, modifiedSince: $since) {
    edges { cursor node { id type } } pageInfo { hasNextPage endCursor } }
}"""
ADD_NOTE = """mutation($id: ID!, $t: String!) { addNote(contactId: $id, text: $t) { id } }"""
UPDATE_NOTE = """mutation($id: ID!, $t: String!) { updateNote(id: $id, text: $t) { id text } }"""
DELETE_NOTE = "mutation($id: ID!) { deleteNote(id: $id) }"
MERGE = "mutation($ids: [ID!]!) { mergeContacts(contactIds: $ids) { id } }"


def person(n: int, **fields: Any) -> dict[str, Any]:
    return {"firstName": f"P{n}", "lastName": "Bulk", **fields}


async def holder_of(store: Store, identifier_key: str) -> str | None:
    claim = await store.identifiers.find_one({"org": "acme", "key": identifier_key})
    return None if claim is None else claim["contactId"]


async def note_text(store: Store, note_id: str) -> str | None:
    note = await store.notes.find_one({"_id": note_id})
    return None if note is None else note["text"]


# --- bulkCreateContacts -------------------------------------------------------------------------


async def test_bulk_create_writes_good_items_and_reports_bad_ones_in_input_order(
    api: Api, store: Store
) -> None:
    inputs = [
        person(0, cellPhone="+18035550100"),
        {"firstName": "NoLastName"},
        person(2, workEmail="not an email"),
        person(3, cellPhone="+18035550100", workEmail="p3@example.com"),  # phone taken by item 0
    ]
    data = await api.gql(BULK_CREATE, {"i": inputs})
    items = data["bulkCreateContacts"]
    assert [i["index"] for i in items] == [0, 1, 2, 3]
    assert [i["error"]["code"] if i["error"] else None for i in items] == [
        None,
        "BAD_USER_INPUT",
        "BAD_USER_INPUT",
        None,
    ]
    assert items[1]["contact"] is None and items[2]["contact"] is None
    first, last = items[0]["contact"]["id"], items[3]["contact"]["id"]
    assert await store.contacts.count_documents({}) == 2  # the bad items wrote nothing
    assert await holder_of(store, "PHONE:+18035550100") == first  # the first lister wins
    assert await holder_of(store, "EMAIL:p3@example.com") == last
    blocked = await api.gql(BULK_CREATE, {"i": [person(4, workEmail="noreply@example.com")]})
    assert blocked["bulkCreateContacts"][0]["error"] is None
    assert await holder_of(store, "EMAIL:noreply@example.com") is None  # blocked: never claimed
    assert items[0]["contact"]["type"] == "CURATED"
    assert await find_violations(store) == []


async def test_bulk_create_of_a_phone_an_older_contact_lists_leaves_its_claim(
    api: Api, store: Store
) -> None:
    older = await api.gql(
        'mutation { createContact(input: {firstName: "O", lastName: "Ld", '
        'cellPhone: "+18035550101"}) { id } }'
    )
    data = await api.gql(BULK_CREATE, {"i": [person(0, cellPhone="+18035550101")]})
    assert data["bulkCreateContacts"][0]["error"] is None
    assert await holder_of(store, "PHONE:+18035550101") == older["createContact"]["id"]


async def test_a_bulk_call_refuses_an_empty_or_over_long_list(api: Api, store: Store) -> None:
    for document, variables in (
        (BULK_CREATE, {"i": []}),
        (BULK_CREATE, {"i": [person(n) for n in range(201)]}),
        (BULK_UPDATE, {"u": []}),
        (BULK_DELETE, {"ids": []}),
        (BULK_DELETE, {"ids": [f"x{n}" for n in range(201)]}),
    ):
        _, errors = await api.gql_error(document, variables)
        assert codes(errors) == ["BAD_USER_INPUT"], (document, errors)
    assert await store.contacts.count_documents({}) == 0
    created = await api.gql(BULK_CREATE, {"i": [person(n) for n in range(200)]})
    assert all(i["error"] is None for i in created["bulkCreateContacts"])


# --- bulkUpdateContacts -------------------------------------------------------------------------


async def test_bulk_update_promotes_redirects_aliases_and_reports_unknown_ids(
    api: Api, store: Store
) -> None:
    auto_id = await insert_auto(store, cellPhone="+18035550102")
    canonical, members = await add_merge_set(store, size=3)
    ancestor = next(m for m in members if m["readOnly"])
    updates = [
        {"id": auto_id, "input": {"title": "Dr"}},
        {"id": "no-such-contact", "input": {"title": "X"}},
        {"id": ancestor["_id"], "input": {"title": "Canon"}},
        {"id": auto_id, "input": {"cellPhone": "+18035550103"}},  # applies after item 0
        {"id": canonical["_id"], "input": {"workEmail": "bad email"}},
    ]
    items = (await api.gql(BULK_UPDATE, {"u": updates}))["bulkUpdateContacts"]
    assert [i["error"]["code"] if i["error"] else None for i in items] == [
        None,
        "NOT_FOUND",
        None,
        None,
        "BAD_USER_INPUT",
    ]
    assert items[0]["contact"]["type"] == "CURATED" and items[0]["contact"]["expiresAt"] is None
    assert items[2]["contact"]["id"] == canonical["_id"]  # the ancestor acted on its canonical
    stored = await store.contacts.find_one({"_id": auto_id})
    assert stored is not None
    assert (stored["title"], stored["cellPhone"], stored["type"]) == (
        "Dr",
        "+18035550103",
        "CURATED",
    )
    assert await holder_of(store, "PHONE:+18035550103") == auto_id
    assert await holder_of(store, "PHONE:+18035550102") is None  # released, no other lister
    head = await store.contacts.find_one({"_id": canonical["_id"]})
    assert head is not None and head["title"] == "Canon"
    kept = await store.contacts.find_one({"_id": ancestor["_id"]})
    assert kept is not None and kept["title"] is None
    assert await find_violations(store) == []


async def test_bulk_update_hands_a_removed_value_to_the_next_lister(api: Api, store: Store) -> None:
    created = await api.gql(
        BULK_CREATE,
        {"i": [person(0, cellPhone="+18035550104"), person(1, cellPhone="+18035550104")]},
    )
    first, second = (i["contact"]["id"] for i in created["bulkCreateContacts"])
    assert await holder_of(store, "PHONE:+18035550104") == first
    await api.gql(BULK_UPDATE, {"u": [{"id": first, "input": {"cellPhone": None}}]})
    assert await holder_of(store, "PHONE:+18035550104") == second
    assert await find_violations(store) == []


# --- bulkDeleteContacts -------------------------------------------------------------------------


async def test_bulk_delete_removes_sets_hands_identifiers_on_and_reports_unknown_ids(
    api: Api, store: Store
) -> None:
    created = await api.gql(
        BULK_CREATE,
        {"i": [person(0, cellPhone="+18035550105"), person(1, cellPhone="+18035550105")]},
    )
    first, second = (i["contact"]["id"] for i in created["bulkCreateContacts"])
    canonical, members = await add_merge_set(store, size=3)
    ancestor = next(m for m in members if m["readOnly"])
    ids = [first, "unknown-id", ancestor["_id"], canonical["_id"]]
    items = (await api.gql(BULK_DELETE, {"ids": ids}))["bulkDeleteContacts"]
    assert [(i["contact"] or {}).get("id") for i in items] == [
        first,
        None,
        canonical["_id"],  # the ancestor deleted its canonical's whole set
        None,  # already deleted by the item before: NOT_FOUND, as a second deleteContact
    ]
    assert [i["error"]["code"] if i["error"] else None for i in items] == [
        None,
        "NOT_FOUND",
        None,
        "NOT_FOUND",
    ]
    assert await store.contacts.count_documents({"_id": {"$in": [m["_id"] for m in members]}}) == 0
    assert await store.merge_sets.count_documents({}) == 0
    assert await holder_of(store, "PHONE:+18035550105") == second
    assert await find_violations(store) == []


# --- upsertContact ------------------------------------------------------------------------------


async def test_upsert_creates_then_finds_and_updates_by_the_match(api: Api, store: Store) -> None:
    match = [{"type": "EXTERNAL_ID", "value": "crm:C-1"}, {"type": "EMAIL", "value": "U@X.com"}]
    made = (await api.gql(UPSERT, {"m": match, "i": {"firstName": "Una", "lastName": "Up"}}))[
        "upsertContact"
    ]
    assert made["created"] is True and made["contact"]["type"] == "CURATED"
    assert {(i["type"], i["value"]) for i in made["contact"]["identifiers"]} == {
        ("EXTERNAL_ID", "crm:C-1"),
        ("EMAIL", "u@x.com"),
    }  # the match identifiers are claimed, so the next upsert finds the contact
    again = (
        await api.gql(
            UPSERT,
            {"m": match[:1], "i": {"title": "Dr", "firstName": "Ona"}, "r": "PREFER_PROVIDED"},
        )
    )["upsertContact"]
    assert again["created"] is False
    assert again["contact"]["id"] == made["contact"]["id"]
    assert (again["contact"]["firstName"], again["contact"]["title"]) == ("Ona", "Dr")
    kept = (
        await api.gql(
            UPSERT,
            {
                "m": match[1:],
                "i": {"firstName": "Ignored", "workEmail": "w@x.com"},
                "r": "PREFER_EXISTING",
            },
        )
    )["upsertContact"]
    assert (kept["contact"]["firstName"], kept["contact"]["workEmail"]) == ("Ona", "w@x.com")
    assert await store.contacts.count_documents({}) == 1
    assert await find_violations(store) == []


async def test_upsert_promotes_an_auto_created_contact_of_the_first_claimed_identifier(
    api: Api, store: Store
) -> None:
    auto_id = await insert_auto(store, cellPhone="+18035550106")
    match = [{"type": "EMAIL", "value": "free@x.com"}, {"type": "PHONE", "value": "+18035550106"}]
    result = (await api.gql(UPSERT, {"m": match, "i": {"title": "Known"}}))["upsertContact"]
    assert result["created"] is False
    assert result["contact"]["id"] == auto_id
    assert (result["contact"]["type"], result["contact"]["title"]) == ("CURATED", "Known")
    assert await holder_of(store, "EMAIL:free@x.com") == auto_id  # stitched, as an interaction
    claims = await store.identifiers.find({"contactId": auto_id}).to_list()
    assert all(c["expiresAt"] is None for c in claims)
    assert await find_violations(store) == []


async def test_upsert_refuses_bad_matches_and_a_nameless_creation(api: Api, store: Store) -> None:
    name = {"firstName": "A", "lastName": "B"}
    for match, fields in (
        ([], name),
        ([{"type": "PHONE", "value": "not a phone"}], name),
        ([{"type": "EMAIL", "value": "noreply@x.com"}, {"type": "COOKIE", "value": "null"}], name),
        ([{"type": "EMAIL", "value": f"e{n}@x.com"} for n in range(26)], name),
        ([{"type": "EMAIL", "value": "nameless@x.com"}], {"title": "Dr"}),
    ):
        _, errors = await api.gql_error(UPSERT, {"m": match, "i": fields})
        assert codes(errors) == ["BAD_USER_INPUT"], (match, errors)
    assert await store.contacts.count_documents({}) == 0
    assert await store.identifiers.count_documents({}) == 0


# --- notes --------------------------------------------------------------------------------------


async def test_notes_are_edited_and_deleted_but_not_on_an_ancestor(api: Api, store: Store) -> None:
    a, b = await insert_auto(store), await insert_auto(store)
    note_a = (await api.gql(ADD_NOTE, {"id": a, "t": "first"}))["addNote"]["id"]
    note_b = (await api.gql(ADD_NOTE, {"id": b, "t": "second"}))["addNote"]["id"]
    edited = await api.gql(UPDATE_NOTE, {"id": note_a, "t": "changed"})
    assert edited["updateNote"] == {"id": note_a, "text": "changed"}
    assert await note_text(store, note_a) == "changed"
    assert (await api.gql(DELETE_NOTE, {"id": note_b}))["deleteNote"] is True
    assert await store.notes.find_one({"_id": note_b}) is None

    _, errors = await api.gql_error(UPDATE_NOTE, {"id": note_b, "t": "x"})
    assert codes(errors) == ["NOT_FOUND"]
    _, errors = await api.gql_error(DELETE_NOTE, {"id": "no-such-note"})
    assert codes(errors) == ["NOT_FOUND"]
    _, errors = await api.gql_error(UPDATE_NOTE, {"id": note_a, "t": "   "})
    assert codes(errors) == ["BAD_USER_INPUT"]

    await api.gql(MERGE, {"ids": [a, b]})  # a is now an ancestor: its notes are read-only
    _, errors = await api.gql_error(UPDATE_NOTE, {"id": note_a, "t": "after the merge"})
    assert codes(errors) == ["READ_ONLY"]
    _, errors = await api.gql_error(DELETE_NOTE, {"id": note_a})
    assert codes(errors) == ["READ_ONLY"]
    assert await note_text(store, note_a) == "changed"


# --- scanContacts -------------------------------------------------------------------------------


async def scan_all(
    api: Api, first: int, after: str | None = None, **variables: Any
) -> list[dict[str, Any]]:
    nodes: list[dict[str, Any]] = []
    for _ in range(100):
        page = (await api.gql(SCAN, {"first": first, "after": after, **variables}))["scanContacts"]
        nodes += [e["node"] for e in page["edges"]]
        if not page["pageInfo"]["hasNextPage"]:
            return nodes
        after = page["pageInfo"]["endCursor"]
    raise AssertionError("the scan did not end")


async def test_scan_walks_every_canonical_contact_of_the_types_once(api: Api, store: Store) -> None:
    created = await api.gql(BULK_CREATE, {"i": [person(n) for n in range(25)]})
    curated = [i["contact"]["id"] for i in created["bulkCreateContacts"]]
    canonical, members = await add_merge_set(store, size=3)
    autos = [await insert_auto(store) for _ in range(4)]
    expired = await insert_auto(store)
    await store.contacts.update_one(
        {"_id": expired}, {"$set": {"expiresAt": now() - timedelta(minutes=1)}}
    )
    heads = [canonical["_id"]] if canonical["type"] == "CURATED" else []
    ids = [n["id"] for n in await scan_all(api, 7)]
    assert ids == sorted([*curated, *heads])  # CURATED only by default, id order, each once
    every = await scan_all(api, 4, types=["EPHEMERAL", "IDENTIFIED", "CURATED"])
    ids = [n["id"] for n in every]
    assert len(ids) == len(set(ids))
    ancestors = {m["_id"] for m in members if m["readOnly"]}
    assert not ancestors & set(ids) and expired not in ids
    assert set(ids) == {*curated, *autos, canonical["_id"]}
    order = [ContactType(n["type"]) for n in every]  # CURATED first, then IDENTIFIED …
    assert order == sorted(order, key=[ContactType.CURATED, ContactType.IDENTIFIED].index)


async def test_a_contact_modified_or_promoted_during_a_scan_appears_at_most_once(
    api: Api, store: Store
) -> None:
    created = await api.gql(BULK_CREATE, {"i": [person(n) for n in range(10)]})
    curated = sorted(i["contact"]["id"] for i in created["bulkCreateContacts"])
    auto_id = await insert_auto(store)
    types = ["CURATED", "IDENTIFIED"]
    page = (await api.gql(SCAN, {"first": 5, "types": types}))["scanContacts"]
    seen = [e["node"]["id"] for e in page["edges"]]
    # meanwhile: an already-seen contact is edited, the auto-created one promoted
    await api.gql(BULK_UPDATE, {"u": [{"id": seen[0], "input": {"title": "Edited"}}]})
    await api.gql(BULK_UPDATE, {"u": [{"id": auto_id, "input": {"title": "Promoted"}}]})
    rest = await scan_all(api, 5, types=types, after=page["pageInfo"]["endCursor"])
    ids = seen + [n["id"] for n in rest]
    assert len(ids) == len(set(ids)), ids
    assert set(curated) <= set(ids)


async def test_scan_filters_by_modified_since_and_refuses_foreign_cursors(
    api: Api, store: Store
) -> None:
    created = await api.gql(BULK_CREATE, {"i": [person(n) for n in range(6)]})
    ids = [i["contact"]["id"] for i in created["bulkCreateContacts"]]
    edited = await api.gql(BULK_UPDATE, {"u": [{"id": ids[2], "input": {"title": "New"}}]})
    assert edited["bulkUpdateContacts"][0]["error"] is None
    stored = await store.contacts.find_one({"_id": ids[2]})
    assert stored is not None
    since = stored["modifiedAt"].isoformat()
    assert [n["id"] for n in await scan_all(api, 10, since=since)] == [ids[2]]
    search = await api.gql(
        'query { searchContacts(query: "P1", first: 1) { pageInfo { endCursor } } }'
    )
    for variables in (
        {"after": search["searchContacts"]["pageInfo"]["endCursor"]},
        {"after": "bm90LWEtY3Vyc29y"},
        {"first": 0},
        {"first": 201},
    ):
        _, errors = await api.gql_error(SCAN, {"first": 10, **variables})
        assert codes(errors) == ["BAD_USER_INPUT"], (variables, errors)
    # a cursor of a type the next request does not ask for is not this scan's
    page = (await api.gql(SCAN, {"first": 1}))["scanContacts"]
    _, errors = await api.gql_error(
        SCAN, {"first": 1, "after": page["pageInfo"]["endCursor"], "types": ["IDENTIFIED"]}
    )
    assert codes(errors) == ["BAD_USER_INPUT"]


# --- the cost model -----------------------------------------------------------------------------


async def test_a_bulk_call_costs_its_selection_once_per_item(api: Api) -> None:
    """The static cost multiplies a bulk mutation's selection by the length of its list (as
    for contacts(ids:)), so a bulk call of 200 costs as much as its 200 results."""

    async def cost(count: int) -> int:
        response = await api.post(BULK_CREATE, {"i": [person(n) for n in range(count)]})
        body = response.json()
        assert "errors" not in body, body
        requested: int = body["extensions"]["cost"]["requestedQueryCost"]
        return requested

    one, many = await cost(1), await cost(200)
    assert many - 1 == 200 * (one - 1), (one, many)
    scan = (await api.post(SCAN, {"first": 200})).json()["extensions"]["cost"]
    assert scan["requestedQueryCost"] > 200 * 2
