"""The contact directory over HTTP: every query and mutation of issue 2, end to end."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from resolvers.clock import now
from resolvers.contact_fields import ContactType
from resolvers.store import Store
from tests.conftest import Api, codes
from tests.factories import auto_contact

FIELDS = """
fragment C on Contact {
  id type firstName middleName lastName title
  workPhone cellPhone homePhone otherPhone workEmail personalEmail otherEmail
  whatsAppId facebookId twitterId lineId instagramId
  externalIds { source value }
  address { line1 line2 city state postalCode countryCode }
  surveyOptOut createdAt modifiedAt expiresAt readOnly
  identifiers { type value claimedAt }
}
"""
CREATE = FIELDS + "mutation($i: ContactInput!) { createContact(input: $i) { ...C } }"
UPDATE = (
    FIELDS + "mutation($id: ID!, $i: ContactInput!) { updateContact(id: $id, input: $i) { ...C } }"
)
DELETE = "mutation($id: ID!) { deleteContact(id: $id) }"
PROMOTE = FIELDS + "mutation($id: ID!) { promoteContact(id: $id) { ...C } }"
ADD_NOTE = """mutation($id: ID!, $text: String!) {
  addNote(contactId: $id, text: $text) { id contactId text createdAt createdBy }
}"""
CONTACT = FIELDS + "query($id: ID!) { contact(id: $id) { ...C } }"
CONTACTS = "query($ids: [ID!]!) { contacts(ids: $ids) { id firstName } }"
SEARCH = """query($q: String!, $types: [ContactType!], $first: Int, $after: String) {
  searchContacts(query: $q, types: $types, first: $first, after: $after) {
    totalCount
    pageInfo { hasNextPage endCursor }
    edges { cursor node { id firstName lastName type } }
  }
}"""
SEARCH_DEFAULT = """query($q: String!) {
  searchContacts(query: $q) { totalCount edges { node { id } } }
}"""
IDENTIFIER = """query($type: IdentifierType!, $value: String!) {
  identifier(type: $type, value: $value) { type value claimedAt contact { id firstName } }
}"""
REVERSE = "query($v: String!) { reverseLookup(value: $v) { id firstName type } }"

UNKNOWN_ID = "000000000000000000000000"


async def create(api: Api, org: str = "acme", **fields: Any) -> dict[str, Any]:
    fields.setdefault("firstName", "Alexis")
    fields.setdefault("lastName", "Smith")
    data = await api.gql(CREATE, {"i": fields}, org=org)
    created: dict[str, Any] = data["createContact"]
    return created


async def fetch(api: Api, contact_id: str, org: str = "acme") -> dict[str, Any] | None:
    data = await api.gql(CONTACT, {"id": contact_id}, org=org)
    found: dict[str, Any] | None = data["contact"]
    return found


async def counts(store: Store) -> tuple[int, int, int]:
    return (
        await store.contacts.count_documents({}),
        await store.identifiers.count_documents({}),
        await store.notes.count_documents({}),
    )


def identifiers_of(contact: dict[str, Any]) -> set[tuple[str, str]]:
    return {(i["type"], i["value"]) for i in contact["identifiers"]}


def search_ids(data: dict[str, Any]) -> list[str]:
    return [edge["node"]["id"] for edge in data["searchContacts"]["edges"]]


# --- contact / contacts ---------------------------------------------------------------------


async def test_create_and_read_every_field(api: Api) -> None:
    created = await create(
        api,
        firstName=" Alexis ",
        middleName="Jo",
        lastName="Smith",
        title="Dr",
        cellPhone="+1 803-123-0000",
        workPhone="(803) 123-0001",
        homePhone="anonymous",
        otherPhone="12",
        workEmail=" Alexis.Smith@Example.COM ",
        personalEmail="alexis@home.example",
        whatsAppId="+1 803 123 0002",
        facebookId="fb.alexis",
        twitterId="@alexis",
        lineId="line-alexis",
        instagramId="insta.alexis",
        externalIds=[{"source": "crm", "value": "42"}],
        address={"line1": "1 Main St", "city": "Columbia", "countryCode": "US"},
        surveyOptOut=True,
    )
    fetched = await fetch(api, created["id"])
    assert fetched == created
    assert created["type"] == "CURATED"
    assert created["firstName"] == "Alexis"
    assert created["cellPhone"] == "+18031230000"
    assert created["workPhone"] == "+18031230001"
    assert created["homePhone"] == "anonymous"
    assert created["otherPhone"] == "12"
    assert created["workEmail"] == "alexis.smith@example.com"
    assert created["whatsAppId"] == "+18031230002"
    assert created["externalIds"] == [{"source": "crm", "value": "42"}]
    assert created["address"] == {
        "line1": "1 Main St",
        "line2": None,
        "city": "Columbia",
        "state": None,
        "postalCode": None,
        "countryCode": "US",
    }
    assert created["surveyOptOut"] is True
    assert created["expiresAt"] is None
    assert created["readOnly"] is False
    assert created["createdAt"] == created["modifiedAt"]
    assert created["createdAt"].endswith("Z")
    assert identifiers_of(created) == {
        ("PHONE", "+18031230000"),
        ("PHONE", "+18031230001"),
        ("EMAIL", "alexis.smith@example.com"),
        ("EMAIL", "alexis@home.example"),
        ("WHATSAPP", "+18031230002"),
        ("FACEBOOK", "fb.alexis"),
        ("TWITTER", "@alexis"),
        ("LINE", "line-alexis"),
        ("INSTAGRAM", "insta.alexis"),
        ("EXTERNAL_ID", "crm:42"),
    }


async def test_contact_unknown_id_is_null_without_error(api: Api) -> None:
    for unknown in (UNKNOWN_ID, "nope", "", "x" * 2000):
        response = await api.post(CONTACT, {"id": unknown})
        assert response.status_code == 200
        body = response.json()
        assert body["data"] == {"contact": None}
        assert "errors" not in body


async def test_contact_of_another_org_is_null(api: Api) -> None:
    created = await create(api, org="globex")
    assert await fetch(api, created["id"], org="acme") is None
    assert await fetch(api, created["id"], org="globex") is not None


async def test_expired_contact_is_not_returned(api: Api, store: Store) -> None:
    doc = await auto_contact(
        store, cellPhone="+18031230000", expires_at=now() - timedelta(seconds=1)
    )
    assert await fetch(api, doc["_id"]) is None
    data = await api.gql(IDENTIFIER, {"type": "PHONE", "value": "+18031230000"})
    assert data["identifier"] is None


async def test_contacts_keeps_order_with_null_for_unknown(api: Api) -> None:
    a = await create(api, firstName="Ann")
    b = await create(api, firstName="Bob")
    other = await create(api, org="globex", firstName="Gus")
    data = await api.gql(CONTACTS, {"ids": [b["id"], UNKNOWN_ID, a["id"], other["id"], b["id"]]})
    assert data["contacts"] == [
        {"id": b["id"], "firstName": "Bob"},
        None,
        {"id": a["id"], "firstName": "Ann"},
        None,
        {"id": b["id"], "firstName": "Bob"},
    ]
    assert (await api.gql(CONTACTS, {"ids": []}))["contacts"] == []


async def test_contacts_takes_at_most_100_ids(api: Api) -> None:
    a = await create(api)
    data = await api.gql(CONTACTS, {"ids": [a["id"]] * 100})
    assert len(data["contacts"]) == 100
    _, errors = await api.gql_error(CONTACTS, {"ids": [a["id"]] * 101})
    assert codes(errors) == ["BAD_USER_INPUT"]


# --- searchContacts -------------------------------------------------------------------------


async def test_search_returns_curated_only_unless_types_widen(api: Api, store: Store) -> None:
    curated = await create(api, firstName="Casey", lastName="Jones", cellPhone="+18031230000")
    auto = await auto_contact(store, firstName="Casey", lastName="Auto", workPhone="+18031230000")
    ephemeral = await auto_contact(store, firstName="Casey", kind=ContactType.EPHEMERAL)
    await auto_contact(
        store, firstName="Casey", expires_at=now() - timedelta(seconds=1)
    )  # expired: never returned

    default = await api.gql(SEARCH_DEFAULT, {"q": "casey"})
    assert search_ids(default) == [curated["id"]]
    assert default["searchContacts"]["totalCount"] == 1
    by_phone = await api.gql(SEARCH_DEFAULT, {"q": "+1 803 123 0000"})
    assert search_ids(by_phone) == [curated["id"]]

    wide = await api.gql(SEARCH, {"q": "casey", "types": ["CURATED", "IDENTIFIED", "EPHEMERAL"]})
    assert set(search_ids(wide)) == {curated["id"], auto["_id"], ephemeral["_id"]}
    assert wide["searchContacts"]["totalCount"] == 3
    only_auto = await api.gql(SEARCH, {"q": "803-123-0000", "types": ["IDENTIFIED"]})
    assert search_ids(only_auto) == [auto["_id"]]


async def test_search_by_name_prefix_is_case_insensitive(api: Api) -> None:
    alexis = await create(api, firstName="Alexis", middleName="Mary-Jane", lastName="Smith")
    alex = await create(api, firstName="Alex", lastName="Smithers")
    await create(api, firstName="David", lastName="Jones")
    assert set(search_ids(await api.gql(SEARCH, {"q": "ALE"}))) == {alexis["id"], alex["id"]}
    assert search_ids(await api.gql(SEARCH, {"q": "alexi"})) == [alexis["id"]]
    assert search_ids(await api.gql(SEARCH, {"q": "smith alexis"})) == [alexis["id"]]
    assert search_ids(await api.gql(SEARCH, {"q": "  Alex   SMITHE "})) == [alex["id"]]
    assert search_ids(await api.gql(SEARCH, {"q": "jane smi"})) == [alexis["id"]]
    assert search_ids(await api.gql(SEARCH, {"q": "mith"})) == []  # prefixes only
    assert search_ids(await api.gql(SEARCH, {"q": "alexis jones"})) == []
    assert search_ids(await api.gql(SEARCH, {"q": "a.*"})) == []  # no regex injection


async def test_search_by_exact_email(api: Api) -> None:
    alexis = await create(api, workEmail="alexis@example.com")
    await create(api, firstName="Other", personalEmail="alexis@example.org")
    data = await api.gql(SEARCH, {"q": " ALEXIS@Example.com "})
    assert search_ids(data) == [alexis["id"]]
    assert search_ids(await api.gql(SEARCH, {"q": "alexis@exam"})) == []


async def test_search_by_phone_after_normalisation(api: Api) -> None:
    alexis = await create(api, cellPhone="+18031230000")
    await create(api, firstName="Other", cellPhone="+18031230001")
    for query in ("(803) 123-0000", "+1 803-123-0000", "8031230000", "803.123.0000"):
        data = await api.gql(SEARCH, {"q": query})
        assert search_ids(data) == [alexis["id"]], query
    assert search_ids(await api.gql(SEARCH, {"q": "803-123"})) == []


async def test_phone_that_cannot_be_normalised_is_not_searchable(api: Api) -> None:
    created = await create(api, firstName="Zed", cellPhone="anonymous", workPhone="12")
    assert created["cellPhone"] == "anonymous"
    assert created["workPhone"] == "12"
    assert created["identifiers"] == []
    for query in ("anonymous", "12"):
        data = await api.gql(SEARCH, {"q": query})
        assert data["searchContacts"]["totalCount"] == 0
        assert search_ids(data) == []
    assert search_ids(await api.gql(SEARCH, {"q": "zed"})) == [created["id"]]


async def test_search_query_without_words_finds_nothing(api: Api) -> None:
    await create(api)
    for query in ("---", "...", "'"):
        data = await api.gql(SEARCH, {"q": query})
        assert data["searchContacts"]["totalCount"] == 0
        assert search_ids(data) == []
    for bad in ("alexis " * 200, "ale\x00xis"):  # too long; a NUL no regex may hold
        _, errors = await api.gql_error(SEARCH, {"q": bad})
        assert codes(errors) == ["BAD_USER_INPUT"]


async def test_search_pages_cover_every_contact_once(api: Api, store: Store) -> None:
    ids = {(await create(api, firstName="Page", lastName=f"N{i}"))["id"] for i in range(7)}
    await create(api, firstName="Other")
    seen: list[str] = []
    after: str | None = None
    pages = 0
    while True:
        data = await api.gql(SEARCH, {"q": "page", "first": 3, "after": after})
        connection = data["searchContacts"]
        assert connection["totalCount"] == 7
        edges = connection["edges"]
        seen += [edge["node"]["id"] for edge in edges]
        pages += 1
        assert connection["pageInfo"]["endCursor"] == edges[-1]["cursor"]
        if not connection["pageInfo"]["hasNextPage"]:
            break
        assert len(edges) == 3
        after = connection["pageInfo"]["endCursor"]
    assert pages == 3
    assert len(seen) == len(set(seen)) == 7
    assert set(seen) == ids

    exact = await api.gql(SEARCH, {"q": "page", "first": 7})
    assert exact["searchContacts"]["pageInfo"]["hasNextPage"] is False
    empty = await api.gql(SEARCH, {"q": "nobody", "first": 5})
    assert empty["searchContacts"]["pageInfo"] == {"hasNextPage": False, "endCursor": None}
    assert empty["searchContacts"]["edges"] == []


async def test_search_first_is_between_1_and_100(api: Api) -> None:
    await create(api)
    for first in (0, -1, 101):
        data, errors = await api.gql_error(SEARCH, {"q": "alexis", "first": first})
        assert data is None
        assert codes(errors) == ["BAD_USER_INPUT"]
    data = await api.gql(SEARCH, {"q": "alexis", "first": 100})
    assert len(data["searchContacts"]["edges"]) == 1


async def test_search_garbage_cursor_is_bad_user_input(api: Api) -> None:
    await create(api)
    for cursor in ("garbage!", "bm90IGpzb24", "WyJvdGhlciIsIngiXQ", "", "é"):
        _, errors = await api.gql_error(SEARCH, {"q": "alexis", "after": cursor})
        assert codes(errors) == ["BAD_USER_INPUT"], cursor


# --- identifier / reverseLookup -------------------------------------------------------------


async def test_identifier_normalises_the_value_first(api: Api) -> None:
    alexis = await create(
        api,
        cellPhone="+18031230000",
        workEmail="alexis@example.com",
        externalIds=[{"source": "crm", "value": "42"}],
    )
    for kind, value, normalised in (
        ("PHONE", "(803) 123-0000", "+18031230000"),
        ("EMAIL", "  Alexis@EXAMPLE.com ", "alexis@example.com"),
        ("EXTERNAL_ID", "crm:42", "crm:42"),
    ):
        data = await api.gql(IDENTIFIER, {"type": kind, "value": value})
        found = data["identifier"]
        assert found["type"] == kind
        assert found["value"] == normalised
        assert found["contact"] == {"id": alexis["id"], "firstName": "Alexis"}
        assert found["claimedAt"].endswith("Z")


async def test_identifier_unknown_or_unusable_is_null(api: Api) -> None:
    await create(api, cellPhone="+18031230000", workEmail="alexis@example.com")
    for kind, value in (
        ("PHONE", "+18031239999"),
        ("PHONE", "anonymous"),
        ("EMAIL", "not an email"),
        ("EMAIL", "+18031230000"),
        ("TWITTER", "alexis@example.com"),
    ):
        response = await api.post(IDENTIFIER, {"type": kind, "value": value})
        body = response.json()
        assert body["data"] == {"identifier": None}, (kind, value)
        assert "errors" not in body
    data = await api.gql(IDENTIFIER, {"type": "PHONE", "value": "+18031230000"}, org="globex")
    assert data["identifier"] is None


async def test_reverse_lookup_lists_curated_oldest_first(api: Api, store: Store) -> None:
    first = await create(api, firstName="First", cellPhone="+1 803-123-0000")
    await auto_contact(store, firstName="Auto", cellPhone="+18031230000")
    second = await create(api, firstName="Second", workPhone="(803) 123-0000")
    third = await create(api, firstName="Third", otherEmail="shared@example.com")
    await create(api, firstName="Unrelated", cellPhone="+18031230001")
    await create(api, org="globex", firstName="Elsewhere", cellPhone="+18031230000")

    data = await api.gql(REVERSE, {"v": "803 123 0000"})
    assert [c["id"] for c in data["reverseLookup"]] == [first["id"], second["id"]]
    data = await api.gql(REVERSE, {"v": "Shared@Example.com"})
    assert [c["id"] for c in data["reverseLookup"]] == [third["id"]]
    for nothing in ("+18039999999", "anonymous", "nobody@example.com"):
        assert (await api.gql(REVERSE, {"v": nothing}))["reverseLookup"] == []


async def test_phones_with_an_international_prefix_or_an_extension_are_found(api: Api) -> None:
    london = await create(api, firstName="Lon", lastName="Don", workPhone="0044 20 7946 0005")
    us = await create(api, firstName="Ext", lastName="Ension", cellPhone="+1-803-555-0008 ext. 12")
    assert london["workPhone"] == "+442079460005"
    assert identifiers_of(london) == {("PHONE", "+442079460005")}
    assert us["cellPhone"] == "+1-803-555-0008 ext. 12"  # the extension is kept as entered
    assert identifiers_of(us) == {("PHONE", "+18035550008")}
    for value in ("0044 20 7946 0005", "011 44 20 7946 0005", "+44 20 7946 0005"):
        found = await api.gql(SEARCH_DEFAULT, {"q": value})
        assert [e["node"]["id"] for e in found["searchContacts"]["edges"]] == [london["id"]]
        data = await api.gql(REVERSE, {"v": value})
        assert [c["id"] for c in data["reverseLookup"]] == [london["id"]], value
        data = await api.gql(IDENTIFIER, {"type": "PHONE", "value": value})
        assert data["identifier"]["contact"]["id"] == london["id"], value
    for value in ("(803) 555-0008", "+1-803-555-0008 ext. 12", "00 1 803 555 0008"):
        data = await api.gql(IDENTIFIER, {"type": "PHONE", "value": value})
        assert data["identifier"]["contact"]["id"] == us["id"], value


async def test_seed_scenario_alexis_then_david(api: Api) -> None:
    alexis = await create(api, firstName="Alexis", lastName="Smith", cellPhone="+1 803-123-0000")
    david = await create(api, firstName="David", lastName="Brown", cellPhone="+1 803-123-0000")
    assert identifiers_of(alexis) == {("PHONE", "+18031230000")}
    assert identifiers_of(david) == set()

    lookup = {"type": "PHONE", "value": "+1 803-123-0000"}
    data = await api.gql(IDENTIFIER, lookup)
    assert data["identifier"]["contact"]["id"] == alexis["id"]
    data = await api.gql(REVERSE, {"v": "+1 803-123-0000"})
    assert [c["firstName"] for c in data["reverseLookup"]] == ["Alexis", "David"]

    assert (await api.gql(DELETE, {"id": alexis["id"]}))["deleteContact"] is True
    data = await api.gql(IDENTIFIER, lookup)
    assert data["identifier"]["contact"]["id"] == david["id"]
    data = await api.gql(REVERSE, {"v": "+1 803-123-0000"})
    assert [c["firstName"] for c in data["reverseLookup"]] == ["David"]
    david_now = await fetch(api, david["id"])
    assert david_now is not None
    assert identifiers_of(david_now) == {("PHONE", "+18031230000")}


async def test_external_ids_claim_source_value_identifiers(api: Api) -> None:
    created = await create(
        api,
        externalIds=[
            {"source": "crm", "value": "42"},
            {"source": "billing", "value": "a:b"},
            {"source": "crm", "value": "42"},
        ],
    )
    assert created["externalIds"] == [
        {"source": "crm", "value": "42"},
        {"source": "billing", "value": "a:b"},
    ]
    assert identifiers_of(created) == {("EXTERNAL_ID", "crm:42"), ("EXTERNAL_ID", "billing:a:b")}
    data = await api.gql(IDENTIFIER, {"type": "EXTERNAL_ID", "value": "billing:a:b"})
    assert data["identifier"]["contact"]["id"] == created["id"]


async def test_edits_claim_new_values_and_release_removed_ones(api: Api) -> None:
    alexis = await create(api, firstName="Alexis", cellPhone="+18031230000")
    david = await create(api, firstName="David", workPhone="+18031230000")
    erin = await create(api, firstName="Erin", homePhone="+18031230000")

    updated = (
        await api.gql(
            UPDATE, {"id": alexis["id"], "i": {"cellPhone": None, "workEmail": "a@example.com"}}
        )
    )["updateContact"]
    assert identifiers_of(updated) == {("EMAIL", "a@example.com")}
    holder = await api.gql(IDENTIFIER, {"type": "PHONE", "value": "+18031230000"})
    assert holder["identifier"]["contact"]["id"] == david["id"]  # oldest remaining lister

    await api.gql(UPDATE, {"id": david["id"], "i": {"workPhone": "+18031230009"}})
    holder = await api.gql(IDENTIFIER, {"type": "PHONE", "value": "+18031230000"})
    assert holder["identifier"]["contact"]["id"] == erin["id"]
    david_now = await fetch(api, david["id"])
    assert david_now is not None
    assert identifiers_of(david_now) == {("PHONE", "+18031230009")}

    await api.gql(UPDATE, {"id": erin["id"], "i": {"homePhone": None}})
    holder = await api.gql(IDENTIFIER, {"type": "PHONE", "value": "+18031230000"})
    assert holder["identifier"] is None


async def test_identifiers_are_unique_per_org(api: Api) -> None:
    acme = await create(api, org="acme", cellPhone="+18031230000")
    globex = await create(api, org="globex", cellPhone="+18031230000")
    assert identifiers_of(acme) == identifiers_of(globex) == {("PHONE", "+18031230000")}
    for org, expected in (("acme", acme["id"]), ("globex", globex["id"])):
        data = await api.gql(IDENTIFIER, {"type": "PHONE", "value": "+18031230000"}, org=org)
        assert data["identifier"]["contact"]["id"] == expected


# --- createContact --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "fields",
    [
        {"firstName": "Alexis"},
        {"lastName": "Smith"},
        {"firstName": "   ", "lastName": "Smith"},
        {"firstName": "Alexis", "lastName": None},
        {},
    ],
)
async def test_create_needs_first_and_last_name(
    api: Api, store: Store, fields: dict[str, Any]
) -> None:
    fields = {**fields, "cellPhone": "+18031230000"}
    data, errors = await api.gql_error(CREATE, {"i": fields})
    assert data is None
    assert codes(errors) == ["BAD_USER_INPUT"]
    assert await counts(store) == (0, 0, 0)


@pytest.mark.parametrize(
    "bad",
    [
        {"workEmail": "not-an-email"},
        {"personalEmail": "alexis@"},
        {"otherEmail": "a" * 250 + "@example.com"},
        {"title": "x" * 1001},
        {"cellPhone": "1" * 1001},
        {"address": {"city": "x" * 1001}},
        {"externalIds": [{"source": "crm", "value": str(i)} for i in range(11)]},
        {"externalIds": [{"source": "crm", "value": "x" * 1001}]},
        {"externalIds": [{"source": "", "value": "1"}]},
    ],
)
async def test_create_rejects_bad_input_without_writing(
    api: Api, store: Store, bad: dict[str, Any]
) -> None:
    fields = {"firstName": "Alexis", "lastName": "Smith", "cellPhone": "+18031230000", **bad}
    data, errors = await api.gql_error(CREATE, {"i": fields})
    assert data is None
    assert codes(errors) == ["BAD_USER_INPUT"]
    assert "Traceback" not in str(errors)
    assert await counts(store) == (0, 0, 0)


async def test_create_accepts_limits_exactly(api: Api) -> None:
    created = await create(
        api,
        title="x" * 1000,
        # from 1: "crm:0" is a blocked identifier value (contract section 6)
        externalIds=[{"source": "crm", "value": str(i)} for i in range(1, 11)],
    )
    assert len(created["title"]) == 1000
    assert len(created["externalIds"]) == 10
    assert len(created["identifiers"]) == 10


# --- updateContact --------------------------------------------------------------------------


async def test_update_omitted_is_unchanged_null_is_cleared(api: Api) -> None:
    created = await create(
        api,
        title="Dr",
        cellPhone="+18031230000",
        workEmail="alexis@example.com",
        externalIds=[{"source": "crm", "value": "42"}],
        address={"city": "Columbia"},
        surveyOptOut=True,
    )
    data = await api.gql(
        UPDATE,
        {
            "id": created["id"],
            "i": {"title": None, "cellPhone": None, "externalIds": None, "lastName": "Smyth"},
        },
    )
    updated = data["updateContact"]
    assert updated["id"] == created["id"]
    assert updated["firstName"] == "Alexis"
    assert updated["lastName"] == "Smyth"
    assert updated["title"] is None
    assert updated["cellPhone"] is None
    assert updated["externalIds"] == []
    assert updated["workEmail"] == "alexis@example.com"
    assert updated["address"]["city"] == "Columbia"
    assert updated["surveyOptOut"] is True
    assert updated["createdAt"] == created["createdAt"]
    assert updated["modifiedAt"] > created["modifiedAt"]
    assert identifiers_of(updated) == {("EMAIL", "alexis@example.com")}
    assert await fetch(api, created["id"]) == updated

    data = await api.gql(UPDATE, {"id": created["id"], "i": {}})
    assert data["updateContact"]["lastName"] == "Smyth"
    assert data["updateContact"]["workEmail"] == "alexis@example.com"
    data = await api.gql(
        UPDATE, {"id": created["id"], "i": {"address": None, "surveyOptOut": False}}
    )
    assert data["updateContact"]["address"] is None
    assert data["updateContact"]["surveyOptOut"] is False


async def test_update_promotes_an_auto_created_contact(api: Api, store: Store) -> None:
    doc = await auto_contact(store, cellPhone="+18031230000")
    before = await fetch(api, doc["_id"])
    assert before is not None
    assert before["type"] == "IDENTIFIED"
    assert before["expiresAt"] is not None

    data = await api.gql(UPDATE, {"id": doc["_id"], "i": {"firstName": "Alexis"}})
    updated = data["updateContact"]
    assert updated["type"] == "CURATED"
    assert updated["expiresAt"] is None
    assert updated["firstName"] == "Alexis"
    assert updated["cellPhone"] == "+18031230000"
    stored = await store.contacts.find_one({"_id": doc["_id"]})
    assert stored is not None
    assert stored["expiresAt"] is None
    claim = await store.identifiers.find_one({"contactId": doc["_id"]})
    assert claim is not None
    assert claim["expiresAt"] is None  # its identifiers no longer expire either


async def test_update_rejects_bad_input_without_writing(api: Api, store: Store) -> None:
    created = await create(api, cellPhone="+18031230000")
    before = await store.contacts.find_one({"_id": created["id"]})
    for bad in ({"workEmail": "nope", "cellPhone": None}, {"lastName": "x" * 1001}):
        _, errors = await api.gql_error(UPDATE, {"id": created["id"], "i": bad})
        assert codes(errors) == ["BAD_USER_INPUT"]
    assert await store.contacts.find_one({"_id": created["id"]}) == before
    assert await counts(store) == (1, 1, 0)


# --- deleteContact / promoteContact / addNote -----------------------------------------------


async def test_delete_removes_the_contact_its_notes_and_claims(api: Api, store: Store) -> None:
    created = await create(api, cellPhone="+18031230000")
    await api.gql(ADD_NOTE, {"id": created["id"], "text": "hello"})
    assert await counts(store) == (1, 1, 1)
    assert (await api.gql(DELETE, {"id": created["id"]}))["deleteContact"] is True
    assert await fetch(api, created["id"]) is None
    assert await counts(store) == (0, 0, 0)
    _, errors = await api.gql_error(DELETE, {"id": created["id"]})
    assert codes(errors) == ["NOT_FOUND"]


async def test_promote_makes_auto_created_contacts_curated(api: Api, store: Store) -> None:
    doc = await auto_contact(store, firstName="Eph", kind=ContactType.EPHEMERAL)
    assert search_ids(await api.gql(SEARCH_DEFAULT, {"q": "eph"})) == []
    data = await api.gql(PROMOTE, {"id": doc["_id"]})
    promoted = data["promoteContact"]
    assert promoted["type"] == "CURATED"
    assert promoted["expiresAt"] is None
    assert search_ids(await api.gql(SEARCH_DEFAULT, {"q": "eph"})) == [doc["_id"]]

    curated = await create(api)
    again = (await api.gql(PROMOTE, {"id": curated["id"]}))["promoteContact"]
    assert again == curated  # idempotent: nothing changes, not even modifiedAt
    twice = (await api.gql(PROMOTE, {"id": doc["_id"]}))["promoteContact"]
    assert twice == promoted


async def test_add_note_lists_notes_newest_first(api: Api) -> None:
    created = await create(api)
    texts = ["first", "second", "third"]
    notes = []
    for text in texts:
        data = await api.gql(ADD_NOTE, {"id": created["id"], "text": text}, sub="agent-7")
        notes.append(data["addNote"])
    assert [n["createdBy"] for n in notes] == ["agent-7"] * 3
    assert {n["contactId"] for n in notes} == {created["id"]}
    data = await api.gql(
        "query($id: ID!) { contact(id: $id) { notes { id text createdBy createdAt } } }",
        {"id": created["id"]},
    )
    listed = data["contact"]["notes"]
    assert [n["text"] for n in listed] == ["third", "second", "first"]
    assert [n["id"] for n in listed] == [n["id"] for n in reversed(notes)]
    stamps = [n["createdAt"] for n in listed]
    assert stamps == sorted(stamps, reverse=True)

    other = await create(api, firstName="Other")
    data = await api.gql(
        "query($id: ID!) { contact(id: $id) { notes { id } } }", {"id": other["id"]}
    )
    assert data["contact"]["notes"] == []


async def test_add_note_needs_text(api: Api, store: Store) -> None:
    created = await create(api)
    for text in ("", "   ", "x" * 10001):
        _, errors = await api.gql_error(ADD_NOTE, {"id": created["id"], "text": text})
        assert codes(errors) == ["BAD_USER_INPUT"]
    assert await store.notes.count_documents({}) == 0


@pytest.mark.parametrize("org_of_target", ["unknown", "globex"])
async def test_mutations_on_unknown_or_foreign_ids_are_not_found(
    api: Api, store: Store, org_of_target: str
) -> None:
    if org_of_target == "unknown":
        target = UNKNOWN_ID
    else:
        target = (await create(api, org="globex", cellPhone="+18031230000"))["id"]
    before = await store.contacts.find({}).to_list()
    mutations: list[tuple[str, dict[str, Any]]] = [
        (UPDATE, {"id": target, "i": {"firstName": "Hacked"}}),
        (DELETE, {"id": target}),
        (PROMOTE, {"id": target}),
        (ADD_NOTE, {"id": target, "text": "hello"}),
    ]
    for query, variables in mutations:
        data, errors = await api.gql_error(query, variables, org="acme")
        assert data is None
        assert codes(errors) == ["NOT_FOUND"], query
        assert "globex" not in str(errors)
    assert await store.contacts.find({}).to_list() == before
    assert await store.notes.count_documents({}) == 0
