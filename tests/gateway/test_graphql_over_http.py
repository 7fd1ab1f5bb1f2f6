"""GraphQL over HTTP as clients expect it: operation selection, GET, media types, automatic
persisted queries (CONTRACT.md section 10)."""

from __future__ import annotations

import hashlib
import json
from typing import Any

import httpx
import pytest

from gateway.graphql_request import GraphQLParams, RequestRefused
from gateway.media_types import prefers_html, response_media_type
from gateway.persisted_queries import ENTRY_OVERHEAD, PersistedQueries
from resolvers.store import Store
from tests.conftest import Api, codes
from tests.gateway.test_subscriptions import Socket

GRAPHQL_RESPONSE = "application/graphql-response+json"
SEARCH = 'query Search { searchContacts(query: "ada") { totalCount } }'
CREATE = 'mutation Create { createContact(input: {firstName: "Ada", lastName: "L"}) { id } }'
BROWSER_ACCEPT = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"


def auth(api: Api, **headers: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {api.token()}", **headers}


async def post(api: Api, body: dict[str, Any], **headers: str) -> httpx.Response:
    return await api.http.post("/graphql", json=body, headers=auth(api, **headers))


async def get(api: Api, params: dict[str, str], **headers: str) -> httpx.Response:
    return await api.http.get("/graphql", params=params, headers=auth(api, **headers))


def error_codes(response: httpx.Response) -> list[str]:
    return codes(response.json()["errors"])


# --- operation selection -----------------------------------------------------------------


@pytest.mark.parametrize("document", [f"{SEARCH} {CREATE}", f"{CREATE} {SEARCH}"])
async def test_several_operations_without_a_name_are_refused_and_nothing_runs(
    api: Api, store: Store, document: str
) -> None:
    response = await post(api, {"query": document})
    assert response.status_code == 400
    assert error_codes(response) == ["BAD_USER_INPUT"]
    assert "operationName" in response.json()["errors"][0]["message"]
    assert await store.contacts.count_documents({}) == 0


async def test_an_operation_name_naming_no_operation_is_refused(api: Api, store: Store) -> None:
    response = await post(api, {"query": f"{SEARCH} {CREATE}", "operationName": "Nope"})
    assert response.status_code == 400
    assert error_codes(response) == ["BAD_USER_INPUT"]
    assert await store.contacts.count_documents({}) == 0


async def test_the_named_operation_of_several_runs(api: Api, store: Store) -> None:
    created = await post(api, {"query": f"{SEARCH} {CREATE}", "operationName": "Create"})
    assert created.status_code == 200, created.text
    assert set(created.json()["data"]) == {"createContact"}
    searched = await post(api, {"query": f"{CREATE} {SEARCH}", "operationName": "Search"})
    assert searched.json()["data"] == {"searchContacts": {"totalCount": 1}}
    assert await store.contacts.count_documents({}) == 1


# --- GET ---------------------------------------------------------------------------------


async def test_get_runs_a_query_with_variables_and_operation_name(api: Api) -> None:
    await api.gql(CREATE)
    query = "query Find($q: String!) { searchContacts(query: $q) { totalCount } } " + CREATE
    response = await get(
        api,
        {"query": query, "variables": json.dumps({"q": "ada"}), "operationName": "Find"},
    )
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("application/json")
    assert response.json()["data"] == {"searchContacts": {"totalCount": 1}}


async def test_get_needs_a_token(api: Api) -> None:
    response = await api.http.get("/graphql", params={"query": SEARCH})
    assert response.status_code == 401
    assert error_codes(response) == ["UNAUTHENTICATED"]


async def test_a_mutation_over_get_is_405_and_writes_nothing(api: Api, store: Store) -> None:
    response = await get(api, {"query": CREATE})
    assert response.status_code == 405
    assert response.headers["allow"] == "POST"
    assert error_codes(response) == ["BAD_USER_INPUT"]
    assert await store.contacts.count_documents({}) == 0


async def test_graphiql_only_for_a_browser_without_a_query(api: Api) -> None:
    page = await api.http.get("/graphql", headers={"Accept": BROWSER_ACCEPT})
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    # a query parameter means a GraphQL request, whatever the Accept header says
    answered = await get(api, {"query": SEARCH}, Accept=BROWSER_ACCEPT)
    assert answered.json()["data"] == {"searchContacts": {"totalCount": 0}}
    # no preference for HTML (curl's */*, Apollo's JSON types): JSON, never the page
    for accept in ("*/*", "application/json", f"{GRAPHQL_RESPONSE},application/json;q=0.9"):
        response = await get(api, {}, Accept=accept)
        assert response.status_code == 400, accept
        assert "json" in response.headers["content-type"]
        assert error_codes(response) == ["BAD_USER_INPUT"]


@pytest.mark.parametrize(
    "params",
    [
        {"query": SEARCH, "variables": "{not json"},
        {"query": SEARCH, "variables": "[1, 2]"},
        {"query": SEARCH, "extensions": "nope"},
        {"query": SEARCH, "variables": '{"q": "\\ud800"'},
    ],
)
async def test_malformed_get_parameters_are_bad_user_input(
    api: Api, params: dict[str, str]
) -> None:
    response = await get(api, params)
    assert response.status_code == 400
    assert error_codes(response) == ["BAD_USER_INPUT"]


async def test_a_get_with_a_body_is_bad_user_input(api: Api) -> None:
    response = await api.http.request(
        "GET",
        "/graphql",
        params={"query": SEARCH},
        content=b'{"query": "{ x }"}',
        headers=auth(api),
    )
    assert response.status_code == 400
    assert error_codes(response) == ["BAD_USER_INPUT"]


@pytest.mark.parametrize(
    "body",
    [
        {"query": 5},
        {"query": SEARCH, "variables": [1]},
        {"query": SEARCH, "operationName": 7},
        {"query": SEARCH, "extensions": "x"},
        {},
    ],
)
async def test_malformed_post_parameters_are_bad_user_input(api: Api, body: dict[str, Any]) -> None:
    response = await post(api, body)
    assert response.status_code == 400
    assert error_codes(response) == ["BAD_USER_INPUT"]


# --- media types -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("accept", "expected"),
    [
        (None, "application/json"),
        ("*/*", "application/json"),
        ("application/json", "application/json"),
        (GRAPHQL_RESPONSE, GRAPHQL_RESPONSE),
        (f"{GRAPHQL_RESPONSE}, application/json;q=0.9", GRAPHQL_RESPONSE),
        (f"application/json, {GRAPHQL_RESPONSE};q=0.5", "application/json"),
        (f"{GRAPHQL_RESPONSE};q=0, application/json", "application/json"),
        (f"{GRAPHQL_RESPONSE};q=bad", "application/json"),
    ],
)
def test_the_response_media_type_follows_accept(accept: str | None, expected: str) -> None:
    assert response_media_type(accept) == expected


def test_only_a_preference_for_html_is_a_browser() -> None:
    assert prefers_html(BROWSER_ACCEPT)
    assert prefers_html("text/html")
    assert not prefers_html("*/*")
    assert not prefers_html(None)
    assert not prefers_html("application/json, text/html;q=0.5")


async def test_graphql_response_json_success_and_field_errors_are_200(api: Api) -> None:
    response = await post(api, {"query": SEARCH}, Accept=GRAPHQL_RESPONSE)
    assert response.status_code == 200
    assert response.headers["content-type"] == GRAPHQL_RESPONSE
    assert response.json()["data"] == {"searchContacts": {"totalCount": 0}}
    # a field error is not a request error: data stays, status 200
    forbidden = await api.http.post(
        "/graphql",
        json={"query": SEARCH},
        headers={
            "Accept": GRAPHQL_RESPONSE,
            "Authorization": f"Bearer {api.token(permissions=['externalContacts:session:view'])}",
        },
    )
    assert forbidden.status_code == 200
    assert "data" in forbidden.json()
    assert codes(forbidden.json()["errors"]) == ["FORBIDDEN"]


@pytest.mark.parametrize(
    ("body", "code"),
    [
        ({"query": "{ searchContacts("}, "GRAPHQL_PARSE_FAILED"),
        ({"query": "{ nope }"}, "GRAPHQL_VALIDATION_FAILED"),
        ({"query": "query($q: String!) { searchContacts(query: $q) { totalCount } }"}, None),
        ({"query": f"{SEARCH} {CREATE}"}, "BAD_USER_INPUT"),
    ],
    ids=["parse", "validation", "variables", "selection"],
)
async def test_graphql_response_json_request_errors_are_400_without_data(
    api: Api, body: dict[str, Any], code: str | None
) -> None:
    response = await post(api, body, Accept=GRAPHQL_RESPONSE)
    assert response.status_code == 400, response.text
    assert response.headers["content-type"] == GRAPHQL_RESPONSE
    payload = response.json()
    assert "data" not in payload
    if code is not None:
        assert codes(payload["errors"]) == [code]


async def test_application_json_request_errors_stay_200_with_null_data(api: Api) -> None:
    response = await post(api, {"query": "{ nope }"}, Accept="application/json")
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    assert response.json()["data"] is None
    assert error_codes(response) == ["GRAPHQL_VALIDATION_FAILED"]


# --- automatic persisted queries ---------------------------------------------------------


def sha256(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def persisted(query: str | None = None, digest: str | None = None) -> dict[str, Any]:
    hashed = digest if digest is not None else sha256(query or "")
    return {"persistedQuery": {"version": 1, "sha256Hash": hashed}}


async def test_a_persisted_query_is_not_found_until_registered_over_post_and_get(
    api: Api,
) -> None:
    digest = sha256(SEARCH)
    missing = await post(api, {"extensions": persisted(SEARCH)})
    assert missing.status_code == 200
    assert missing.json()["errors"][0]["message"] == "PersistedQueryNotFound"
    assert error_codes(missing) == ["PERSISTED_QUERY_NOT_FOUND"]
    missing_get = await get(api, {"extensions": json.dumps(persisted(SEARCH))})
    assert error_codes(missing_get) == ["PERSISTED_QUERY_NOT_FOUND"]

    registered = await post(api, {"query": SEARCH, "extensions": persisted(SEARCH)})
    assert registered.json()["data"] == {"searchContacts": {"totalCount": 0}}
    by_hash = await post(api, {"extensions": persisted(digest=digest.upper())})
    assert by_hash.json()["data"] == {"searchContacts": {"totalCount": 0}}
    over_get = await get(api, {"extensions": json.dumps(persisted(SEARCH))})
    assert over_get.status_code == 200
    assert over_get.json()["data"] == {"searchContacts": {"totalCount": 0}}


async def test_a_persisted_mutation_still_needs_post(api: Api, store: Store) -> None:
    await post(api, {"query": CREATE, "extensions": persisted(CREATE)})
    response = await get(api, {"extensions": json.dumps(persisted(CREATE))})
    assert response.status_code == 405
    assert await store.contacts.count_documents({}) == 1


@pytest.mark.parametrize(
    "extensions",
    [
        persisted(SEARCH, digest=sha256("{ other }")),  # does not match the query
        persisted(SEARCH, digest="abc"),
        persisted(SEARCH, digest="g" * 64),
        {"persistedQuery": {"version": 2, "sha256Hash": sha256(SEARCH)}},
        {"persistedQuery": {"version": True, "sha256Hash": sha256(SEARCH)}},
        {"persistedQuery": {"sha256Hash": sha256(SEARCH)}},
        {"persistedQuery": "yes"},
    ],
    ids=["mismatch", "short", "not-hex", "version-2", "version-true", "no-version", "not-object"],
)
async def test_bad_persisted_query_extensions_are_400(api: Api, extensions: dict[str, Any]) -> None:
    response = await post(api, {"query": SEARCH, "extensions": extensions})
    assert response.status_code == 400
    assert error_codes(response) == ["BAD_USER_INPUT"]


def test_the_persisted_query_store_is_a_bounded_lru() -> None:
    queries = [f"{{ q{i}: __typename }}" for i in range(4)]
    store = PersistedQueries(budget=3 * (len(queries[0]) + ENTRY_OVERHEAD))
    for query in queries[:3]:
        store.resolve(GraphQLParams(query, extensions=persisted(query)))
    # using q0 makes q1 the least recently used; registering q3 evicts it
    store.resolve(GraphQLParams(None, extensions=persisted(queries[0])))
    store.resolve(GraphQLParams(queries[3], extensions=persisted(queries[3])))
    assert set(store.queries.values()) == {queries[0], queries[2], queries[3]}
    with pytest.raises(RequestRefused) as refused:
        store.resolve(GraphQLParams(None, extensions=persisted(queries[1])))
    assert refused.value.code == "PERSISTED_QUERY_NOT_FOUND"
    huge = "{ __typename }" + " " * int(store.queries.maxsize)
    store.resolve(GraphQLParams(huge, extensions=persisted(huge)))  # runs, is not kept
    assert len(store.queries) == 3


async def test_the_websocket_refuses_an_ambiguous_document_too(ws_url: str, api: Api) -> None:
    socket = await Socket.open(ws_url, api.token())
    two = (
        'subscription A { journeyUpdates(contactId: "x") { id } } '
        'subscription B { journeyUpdates(contactId: "y") { id } }'
    )
    for op_id, payload in (
        ("1", {"query": two}),
        ("2", {"query": two, "operationName": "Nope"}),
    ):
        await socket.send({"id": op_id, "type": "subscribe", "payload": payload})
        error = await socket.error()
        assert error["extensions"]["code"] == "BAD_USER_INPUT", error
    # the socket stays usable: the named operation runs (and refuses the unknown contact)
    await socket.send(
        {"id": "3", "type": "subscribe", "payload": {"query": two, "operationName": "B"}}
    )
    assert (await socket.error())["extensions"]["code"] == "NOT_FOUND"
    await socket.close()
