"""Every error carries ``extensions.code``; unexpected failures are masked, never leaked."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from pymongo.errors import AutoReconnect, OperationFailure

from resolvers import contacts, directory, loaders
from tests.conftest import Api, codes

CONTACT = "query($id: ID!) { contact(id: $id) { id firstName } }"
CREATE = """mutation($i: ContactInput!) { createContact(input: $i) { id } }"""
KNOWN_CODES = {
    "UNAUTHENTICATED",
    "FORBIDDEN",
    "NOT_FOUND",
    "BAD_USER_INPUT",
    "READ_ONLY",
    "MERGE_NOT_ALLOWED",
    "CONFLICT",
    "QUERY_TOO_COMPLEX",
    "SERVICE_UNAVAILABLE",
    "INTERNAL_SERVER_ERROR",
    "GRAPHQL_PARSE_FAILED",
    "GRAPHQL_VALIDATION_FAILED",
}


def errors_of(response: httpx.Response) -> list[dict[str, Any]]:
    body = response.json()
    errors: list[dict[str, Any]] = body["errors"]
    assert errors
    for error in errors:
        assert isinstance(error["message"], str)
        assert error["message"]
        assert error["extensions"]["code"] in KNOWN_CODES, error
        assert "Traceback" not in error["message"]
    return errors


@pytest.mark.parametrize(
    ("query", "variables", "code"),
    [
        ("{ contact(id: ", {}, "GRAPHQL_PARSE_FAILED"),
        ("query { contact(id: 1) { id } } }", {}, "GRAPHQL_PARSE_FAILED"),
        ("{ nope }", {}, "GRAPHQL_VALIDATION_FAILED"),
        ("{ contact(id: 1) { nope } }", {}, "GRAPHQL_VALIDATION_FAILED"),
        ("mutation { deleteContact }", {}, "GRAPHQL_VALIDATION_FAILED"),
        (CONTACT, {}, "GRAPHQL_VALIDATION_FAILED"),
        (CONTACT, {"id": {"an": "object"}}, "GRAPHQL_VALIDATION_FAILED"),
        (
            '{ searchContacts(query: "a", first: "x") { totalCount } }',
            {},
            "GRAPHQL_VALIDATION_FAILED",
        ),
        ('{ identifier(type: FAX, value: "1") { value } }', {}, "GRAPHQL_VALIDATION_FAILED"),
    ],
)
async def test_parse_and_validation_errors_carry_codes(
    api: Api, query: str, variables: dict[str, Any], code: str
) -> None:
    response = await api.post(query, variables)
    assert response.status_code == 200
    assert response.json()["data"] is None
    assert codes(errors_of(response)) == [code]


async def test_domain_errors_carry_codes(api: Api) -> None:
    bad_input = await api.post(CREATE, {"i": {"firstName": "A"}})
    assert codes(errors_of(bad_input)) == ["BAD_USER_INPUT"]
    assert errors_of(bad_input)[0]["path"] == ["createContact"]
    not_found = await api.post('mutation { deleteContact(id: "nope") }')
    assert codes(errors_of(not_found)) == ["NOT_FOUND"]
    forbidden = await api.post(CONTACT, {"id": "x"}, permissions=[])
    assert codes(errors_of(forbidden)) == ["FORBIDDEN"]


async def test_bad_requests_outside_graphql_carry_codes(api: Api) -> None:
    headers = {"Authorization": f"Bearer {api.token()}"}
    for request in (
        {"content": b"not json", "headers": {**headers, "content-type": "application/json"}},
        {"json": {"query": 5}, "headers": headers},
        {"json": {"query": "{ contact(id: 1) { id } }", "variables": "x"}, "headers": headers},
        {"json": {"query": "{ contact(id: 1) { id } }", "operationName": "X"}, "headers": headers},
        {"json": {}, "headers": headers},
    ):
        response = await api.http.post("/graphql", **request)
        assert response.status_code == 400, response.text
        assert codes(errors_of(response)) == ["BAD_USER_INPUT"]


async def test_unexpected_exception_is_masked(api: Api, monkeypatch: pytest.MonkeyPatch) -> None:
    async def boom(*args: Any, **kwargs: Any) -> None:
        raise RuntimeError("secret detail")

    monkeypatch.setattr(contacts, "get_canonical", boom)
    response = await api.post(CONTACT, {"id": "x"})
    assert response.status_code == 200
    body = response.json()
    assert body["data"] == {"contact": None}
    errors = errors_of(response)
    assert codes(errors) == ["INTERNAL_SERVER_ERROR"]
    assert errors[0]["path"] == ["contact"]
    assert "secret detail" not in response.text
    assert "RuntimeError" not in response.text
    assert "Traceback" not in response.text
    assert "resolvers" not in response.text


async def test_unexpected_exception_in_a_nested_field_keeps_the_rest(
    api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    created = await api.gql(CREATE, {"i": {"firstName": "Alexis", "lastName": "Smith"}})
    contact_id = created["createContact"]["id"]

    async def boom(*args: Any, **kwargs: Any) -> list[list[Any]]:
        raise ValueError("secret detail")

    monkeypatch.setattr(loaders, "notes_by_members", boom)
    query = """query($id: ID!) {
      broken: contact(id: $id) { id notes { text } }
      fine: contact(id: $id) { id firstName }
    }"""
    response = await api.post(query, {"id": contact_id})
    body = response.json()
    assert body["data"] == {"broken": None, "fine": {"id": contact_id, "firstName": "Alexis"}}
    assert codes(errors_of(response)) == ["INTERNAL_SERVER_ERROR"]
    assert "secret detail" not in response.text


async def test_driver_errors_are_masked(api: Api, monkeypatch: pytest.MonkeyPatch) -> None:
    async def driver_failure(*args: Any, **kwargs: Any) -> None:
        raise OperationFailure("driver detail: index org_keys", code=2)

    monkeypatch.setattr(directory, "reverse_lookup", driver_failure)
    response = await api.post('{ reverseLookup(value: "+18031230000") { id } }')
    assert codes(errors_of(response)) == ["INTERNAL_SERVER_ERROR"]
    assert "driver detail" not in response.text
    assert "org_keys" not in response.text


async def test_unreachable_database_is_service_unavailable(
    api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def unreachable(*args: Any, **kwargs: Any) -> None:
        raise AutoReconnect("connection refused to 127.0.0.1:27017")

    monkeypatch.setattr(contacts, "create_contact", unreachable)
    response = await api.post(CREATE, {"i": {"firstName": "A", "lastName": "B"}})
    assert codes(errors_of(response)) == ["SERVICE_UNAVAILABLE"]
    assert "27017" not in response.text


async def test_errors_do_not_leak_other_orgs_data(api: Api) -> None:
    created = await api.gql(
        CREATE,
        {"i": {"firstName": "Secret", "lastName": "Person", "workEmail": "secret@globex.example"}},
        org="globex",
    )
    contact_id = created["createContact"]["id"]
    for query in (
        'mutation($id: ID!) { updateContact(id: $id, input: {firstName: "X"}) { id } }',
        "mutation($id: ID!) { deleteContact(id: $id) }",
        "mutation($id: ID!) { promoteContact(id: $id) { id } }",
        'mutation($id: ID!) { addNote(contactId: $id, text: "x") { id } }',
    ):
        response = await api.post(query, {"id": contact_id}, org="acme")
        assert codes(errors_of(response)) == ["NOT_FOUND"]
        for leaked in ("Secret", "globex", "secret@"):
            assert leaked not in response.text
    response = await api.post(CONTACT, {"id": contact_id}, org="acme")
    body = response.json()
    assert body["data"] == {"contact": None}
    assert "errors" not in body
