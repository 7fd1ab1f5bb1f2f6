"""Parsed and validated documents are cached; every request is still checked in full."""

from __future__ import annotations

from tests.conftest import Api, codes

CREATE = "mutation($i: ContactInput!) { createContact(input: $i) { id firstName } }"


async def test_a_cached_document_runs_with_each_requests_variables(api: Api) -> None:
    names = []
    for first in ("Ann", "Bea", "Cid"):
        data = await api.gql(CREATE, {"i": {"firstName": first, "lastName": "Cache"}})
        names.append(data["createContact"]["firstName"])
    assert names == ["Ann", "Bea", "Cid"]


async def test_an_invalid_document_is_refused_every_time(api: Api) -> None:
    for _ in range(3):
        response = await api.post('{ contact(id: "x") { id nope } }')
        assert codes(response.json()["errors"]) == ["GRAPHQL_VALIDATION_FAILED"]


async def test_limits_and_permissions_are_checked_on_every_request(api: Api) -> None:
    deep = '{ contact(id: "x") { ' + "canonical { " * 12 + "id" + " }" * 12 + " } }"
    for _ in range(2):
        response = await api.post(deep)
        assert codes(response.json()["errors"]) == ["QUERY_TOO_COMPLEX"]
    query = '{ contact(id: "x") { id } }'
    assert (await api.gql(query)) == {"contact": None}
    _, errors = await api.gql_error(query, permissions=["externalContacts:session:view"])
    assert codes(errors) == ["FORBIDDEN"]
