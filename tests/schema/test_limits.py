"""Static limits: depth, aliases, tokens, cost and body size, refused before anything runs."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from types import SimpleNamespace
from typing import Any

import httpx
import pytest
import strawberry
from graphql import get_introspection_query, parse

from gateway.settings import Settings
from resolvers.store import Store
from schema.errors import ErrorCodes
from schema.limits import COST_CAP, DEFAULT_LIMITS, QueryAnalysis, QueryLimiter, QueryLimits
from schema.limits import analyze as analyze_document
from schema.schema import schema as gateway_schema
from tests.conftest import SECRET, Api, api_of, codes, gateway_app

# --- a small schema of our own, so the cost formula is pinned down independently -------

CALLS: list[str] = []


@strawberry.type
class Item:
    id: strawberry.ID

    @strawberry.field
    def children(self) -> list[Item]:
        CALLS.append("children")
        return [Item(id=strawberry.ID(f"{self.id}.{i}")) for i in range(2)]

    @strawberry.field
    def page(self, first: int | None = 50) -> ItemConnection:
        CALLS.append("page")
        return ItemConnection(edges=[], total_count=0)


@strawberry.type
class ItemEdge:
    cursor: str
    node: Item


@strawberry.type
class ItemConnection:
    edges: list[ItemEdge]
    total_count: int


@strawberry.type
class ToyQuery:
    @strawberry.field
    def item(self) -> Item:
        CALLS.append("item")
        return Item(id=strawberry.ID("1"))

    @strawberry.field
    def items(self, first: int | None = 100) -> ItemConnection:
        CALLS.append("items")
        return ItemConnection(edges=[], total_count=0)

    @strawberry.field
    def by_ids(self, ids: list[strawberry.ID]) -> list[Item | None]:
        CALLS.append("byIds")
        return [Item(id=i) for i in ids]


@strawberry.type
class ToyMutation:
    @strawberry.mutation
    def make(self) -> Item:
        CALLS.append("make")
        return Item(id=strawberry.ID("new"))


toy = strawberry.Schema(query=ToyQuery, mutation=ToyMutation, extensions=[ErrorCodes, QueryLimiter])


def analyze(
    query: str,
    operation_name: str | None = None,
    variables: dict[str, Any] | None = None,
    limits: QueryLimits = DEFAULT_LIMITS,
) -> QueryAnalysis:
    found = analyze_document(
        toy._schema,
        parse(query),
        operation_name=operation_name,
        variables=variables,
        limits=limits,
    )
    assert found is not None
    return found[1]


def cost(query: str, **kwargs: Any) -> int:
    return analyze(query, **kwargs).cost


def context(limits: QueryLimits = DEFAULT_LIMITS) -> Any:
    return SimpleNamespace(limits=limits, extras={})


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        # a scalar is 1; a field is 1 + its children
        ("{ item { id } }", 2),
        # a list without `first`: the default estimate (10) times its subtree
        ("{ item { children { id } } }", 1 + (1 + 10 * 1)),
        # a connection: `first` is the size of its edges; totalCount is not multiplied
        ("{ items(first: 5) { totalCount edges { node { id } } } }", 1 + (1 + (1 + 5 * 2))),
        # the schema's default `first` (100 here, 50 for the nested page)
        ("{ items { edges { node { id } } } }", 1 + (1 + 100 * 2)),
        ("{ item { page { edges { node { id } } } } }", 1 + (1 + (1 + 50 * 2))),
        # explicit null: the schema's default
        ("{ items(first: null) { edges { cursor } } }", 1 + (1 + 100 * 1)),
        # nested lists multiply
        ("{ items(first: 2) { edges { node { children { id } } } } }", 1 + (1 + 2 * (1 + 11))),
        # a list argument sizes a list without `first`: one item per id
        ('{ byIds(ids: ["a", "b", "c"]) { id } }', 1 + 3 * 1),
        # fragments and inline fragments count once per spread
        (
            "{ items(first: 2) { ...C } } fragment C on ItemConnection { edges { node { ...I } } }"
            " fragment I on Item { id children { id } }",
            1 + (1 + 2 * (1 + (1 + 11))),
        ),
        (
            "{ a: item { ... on Item { id } } b: item { ...I ...I } } fragment I on Item { id }",
            2 + 3,
        ),
        # introspection: 1 per field, no list multiplication
        ("{ __typename __schema { types { name fields { name } } } }", 1 + (1 + (1 + 1 + 2))),
        # mutations are costed like queries
        ("mutation { make { id children { id } } }", 1 + (1 + 11)),
    ],
)
def test_cost_formula(query: str, expected: int) -> None:
    assert cost(query) == expected


def test_cost_uses_variables_and_their_defaults() -> None:
    query = "query($n: Int) { items(first: $n) { edges { node { id } } } }"
    assert cost(query, variables={"n": 3}) == 1 + (1 + 3 * 2)
    assert cost(query, variables={}) == 1 + (1 + 100 * 2)  # absent: the argument's default
    with_default = "query($n: Int = 7) { items(first: $n) { edges { node { id } } } }"
    assert cost(with_default) == 1 + (1 + 7 * 2)
    ids = "query($ids: [ID!]!) { byIds(ids: $ids) { id } }"
    assert cost(ids, variables={"ids": [str(i) for i in range(40)]}) == 1 + 40


def test_cost_of_the_default_list_size_is_configurable() -> None:
    query = "{ item { children { id } } }"
    assert cost(query, limits=QueryLimits(default_list_size=3)) == 1 + (1 + 3)


def test_depth_and_aliases() -> None:
    found = analyze("{ item { children { children { id } } } }")
    assert (found.depth, found.aliases) == (4, 0)
    # introspection does not count toward depth (GraphiQL's own query nests 9 ofType)
    assert analyze("{ __schema { types { fields { type { ofType { name } } } } } }").depth == 0
    assert analyze("{ item { __typename id } }").depth == 2
    # aliases are counted after expanding fragments
    aliased = analyze(
        "{ item { ...A } x: item { ...A } } fragment A on Item { a: id b: id children { id } }"
    )
    assert aliased.aliases == 1 + 2 * 2
    assert aliased.depth == 3


def test_the_selected_operation_is_the_one_analysed() -> None:
    document = """
        query Cheap { item { id } }
        query Dear { items(first: 1000) { edges { node { children { children { id } } } } } }
    """
    assert cost(document, operation_name="Cheap") == 2
    assert cost(document, operation_name="Dear") == 1 + (1 + 1000 * (1 + (1 + 10 * 11)))
    assert analyze_document(toy._schema, parse(document), operation_name=None) is None
    assert analyze_document(toy._schema, parse(document), operation_name="Nope") is None


def test_fragment_bombs_and_cycles_are_cheap_to_analyse() -> None:
    # 40 fragments, each spreading the next twice: 2**40 expansions if walked naively
    fragments = "".join(
        f"fragment F{i} on Item {{ children {{ ...F{i + 1} ...F{i + 1} }} }}\n" for i in range(40)
    )
    bomb = "{ item { ...F0 } }\n" + fragments + "fragment F40 on Item { id }"
    started = time.perf_counter()
    found = analyze(bomb)
    assert time.perf_counter() - started < 1.0
    assert found.cost == COST_CAP
    cycle = (
        "{ item { ...A } } fragment A on Item { children { ...B } }"
        " fragment B on Item { children { ...A } }"
    )
    assert cost(cycle) == 1 + (1 + 10 * (1 + 10 * 0))


def test_unknown_fields_and_types_do_not_break_the_analysis() -> None:
    assert cost("{ nope { deeper } item { id ... on Nope { x } } }") == 1 + (1 + 1 + 1)


async def test_limits_come_from_the_request_context() -> None:
    query = "{ items(first: 40) { edges { node { id } } } }"  # cost 82
    CALLS.clear()
    tight, loose = await asyncio.gather(
        toy.execute(query, context_value=context(QueryLimits(max_cost=50))),
        toy.execute(query, context_value=context(QueryLimits(max_cost=100))),
    )
    assert tight.errors and [e.extensions for e in tight.errors] == [{"code": "QUERY_TOO_COMPLEX"}]
    assert tight.data is None
    assert tight.extensions == {"cost": {"requestedQueryCost": 82, "maximumAvailable": 50}}
    assert not loose.errors
    assert loose.extensions == {"cost": {"requestedQueryCost": 82, "maximumAvailable": 100}}
    assert CALLS == ["items"]  # the refused one never reached a resolver


async def test_without_limits_in_the_context_the_defaults_apply() -> None:
    result = await toy.execute("{ item { id } }", context_value=None)
    assert not result.errors
    assert result.extensions == {
        "cost": {"requestedQueryCost": 2, "maximumAvailable": DEFAULT_LIMITS.max_cost}
    }


@pytest.mark.parametrize(
    ("limits", "query", "needle"),
    [
        (QueryLimits(max_depth=3), "{ item { children { children { id } } } }", "depth 4"),
        (QueryLimits(max_aliases=1), "{ a: item { id } b: item { id } }", "2 aliases"),
        (QueryLimits(max_tokens=10), "{ item { id children { id } } __typename }", "10 tokens"),
        (QueryLimits(max_cost=10), "{ item { children { id } } }", "cost 12"),
        (QueryLimits(), "{ item " + "{ children " * 60 + "{ id }" + " }" * 61, "nested"),
    ],
)
async def test_each_limit_refuses_before_any_resolver_runs(
    limits: QueryLimits, query: str, needle: str
) -> None:
    CALLS.clear()
    result = await toy.execute(query, context_value=context(limits))
    assert result.data is None
    assert result.errors
    assert {e.extensions["code"] for e in result.errors if e.extensions} == {"QUERY_TOO_COMPLEX"}
    assert any(needle in e.message for e in result.errors), result.errors
    assert CALLS == []


async def test_nested_introspection_is_refused() -> None:
    nested = "{ __schema { types { fields { type { fields { type { fields { name } } } } } } } }"
    result = await toy.execute(nested, context_value=context())
    assert result.errors
    assert [e.extensions for e in result.errors] == [{"code": "QUERY_TOO_COMPLEX"}]


def test_the_gateway_schema_creates_its_limiter_per_request() -> None:
    assert QueryLimiter in gateway_schema.extensions
    assert all(isinstance(extension, type) for extension in gateway_schema.extensions)


# --- through the gateway ---------------------------------------------------------------

CONTACT_INPUT = '{firstName: "Ada", lastName: "Lovelace", workEmail: "ada@example.com"}'
CREATE = f"createContact(input: {CONTACT_INPUT})"


def over_the_limit(kind: str) -> str:
    """A mutation that would create a contact, over exactly one default limit."""
    if kind == "depth":  # 14 levels
        return "mutation { " + CREATE + " { " + "canonical { " * 12 + "id" + " }" * 12 + " } }"
    if kind == "aliases":  # 31 aliases
        return "mutation { " + " ".join(f"a{i}: {CREATE} {{ id }}" for i in range(31)) + " }"
    if kind == "tokens":  # over 5,000 tokens
        return "mutation { " + CREATE + " { id " + "__typename " * 5000 + "} }"
    if kind == "cost":  # five nested lists of 10: about 10**5
        nested = "mergeSet { contacts { " * 5 + "id" + " } }" * 5
        return "mutation { " + CREATE + " { id " + nested + " } }"
    raise AssertionError(kind)


async def documents(store: Store) -> int:
    names = await store.db.list_collection_names()
    return sum([await store.db[name].count_documents({}) for name in names])


@pytest.mark.parametrize("kind", ["depth", "aliases", "tokens", "cost"])
async def test_over_a_limit_nothing_is_executed(api: Api, store: Store, kind: str) -> None:
    data, errors = await api.gql_error(over_the_limit(kind))
    assert data is None
    assert set(codes(errors)) == {"QUERY_TOO_COMPLEX"}
    assert all(e["message"] for e in errors)
    assert await documents(store) == 0
    # the control: the same mutation within the limits writes the contact
    await api.gql("mutation { " + CREATE + " { id } }")
    assert await documents(store) > 0


async def test_cost_is_reported_on_accepted_and_refused_responses(api: Api) -> None:
    accepted = await api.post(
        '{ searchContacts(query: "a", first: 10) { totalCount edges { node { id } } } }'
    )
    assert accepted.json()["extensions"]["cost"] == {
        "requestedQueryCost": 1 + (1 + (1 + 10 * 2)),
        "maximumAvailable": 50_000,
    }
    assert "errors" not in accepted.json()
    default_first = await api.post('{ searchContacts(query: "a") { edges { node { id } } } }')
    assert default_first.json()["extensions"]["cost"]["requestedQueryCost"] == 1 + (1 + 25 * 2)
    refused = await api.post(
        '{ searchContacts(query: "a", first: 100000) { edges { node { id } } } }'
    )
    body = refused.json()
    assert body["data"] is None
    assert codes(body["errors"]) == ["QUERY_TOO_COMPLEX"]
    assert body["extensions"]["cost"] == {
        "requestedQueryCost": 1 + (1 + 100_000 * 2),
        "maximumAvailable": 50_000,
    }


async def test_operation_name_selects_what_is_checked(api: Api) -> None:
    document = """
        query Cheap { searchContacts(query: "a", first: 1) { totalCount } }
        query Dear { searchContacts(query: "a", first: 100000) { edges { node { id } } } }
    """
    cheap = await api.http.post(
        "/graphql",
        json={"query": document, "operationName": "Cheap"},
        headers={"Authorization": f"Bearer {api.token()}"},
    )
    assert cheap.json()["data"] == {"searchContacts": {"totalCount": 0}}
    dear = await api.http.post(
        "/graphql",
        json={"query": document, "operationName": "Dear"},
        headers={"Authorization": f"Bearer {api.token()}"},
    )
    assert codes(dear.json()["errors"]) == ["QUERY_TOO_COMPLEX"]


async def test_variables_count_toward_the_cost(api: Api) -> None:
    query = 'query($n: Int) { searchContacts(query: "a", first: $n) { edges { node { id } } } }'
    small = await api.post(query, {"n": 5})
    assert "errors" not in small.json()
    big = await api.post(query, {"n": 30_000})
    assert codes(big.json()["errors"]) == ["QUERY_TOO_COMPLEX"]


async def test_graphiql_introspection_is_within_the_limits(api: Api) -> None:
    query = get_introspection_query(
        descriptions=True,
        specified_by_url=True,
        directive_is_repeatable=True,
        schema_description=True,
        input_value_deprecation=True,
    )
    response = await api.post(query)
    body = response.json()
    assert "errors" not in body, body.get("errors")
    assert body["data"]["__schema"]["queryType"]["name"] == "Query"
    assert body["extensions"]["cost"]["requestedQueryCost"] < 1000


def gateway(mongo_uri: str, settings: Settings) -> contextlib.AbstractAsyncContextManager[Api]:
    return api_of(gateway_app(mongo_uri, settings))


async def test_limits_are_configured_by_the_settings(
    mongo_uri: str, db_name: str, store: Store
) -> None:
    settings = Settings(
        SCV_DB_NAME=db_name,
        SCV_JWT_SECRET=SECRET,
        SCV_MAX_DEPTH=2,
        SCV_MAX_ALIASES=1,
        SCV_MAX_TOKENS=30,
        SCV_MAX_COST=20,
    )
    async with gateway(mongo_uri, settings) as api:
        fine = await api.post('{ searchContacts(query: "a", first: 2) { totalCount } }')
        assert fine.json()["extensions"]["cost"] == {
            "requestedQueryCost": 2,
            "maximumAvailable": 20,
        }
        for query, needle in [
            ('{ searchContacts(query: "a") { edges { node { id } } } }', "depth 4"),
            ('{ a: contact(id: "1") { id } b: contact(id: "2") { id } }', "2 aliases"),
            ("{ " + "__typename " * 40 + "}", "30 tokens"),
            (
                '{ contacts(ids: ["1", "2", "3", "4", "5", "6", "7"]) { id firstName lastName } }',
                "cost 22",
            ),
        ]:
            response = await api.post(query)
            errors = response.json()["errors"]
            assert set(codes(errors)) == {"QUERY_TOO_COMPLEX"}
            assert any(needle in e["message"] for e in errors), errors


# --- request bodies --------------------------------------------------------------------


def assert_body_too_large(response: httpx.Response) -> None:
    assert response.status_code == 413
    body = response.json()
    assert codes(body["errors"]) == ["QUERY_TOO_COMPLEX"]
    assert "bytes" in body["errors"][0]["message"]


async def test_a_body_over_the_limit_is_refused_by_its_content_length(
    api: Api, store: Store
) -> None:
    padding = "x" * (1024 * 1024)
    response = await api.http.post(
        "/graphql",
        json={"query": "mutation { " + CREATE + " { id } }", "variables": {"pad": padding}},
        headers={"Authorization": f"Bearer {api.token()}"},
    )
    assert_body_too_large(response)
    assert await documents(store) == 0
    # refused before anything else looks at it: no token, not even JSON
    assert_body_too_large(await api.http.post("/graphql", content=b"{" * (1024 * 1024 + 1)))


async def test_a_streamed_body_is_counted_as_it_arrives(
    mongo_uri: str, db_name: str, store: Store
) -> None:
    settings = Settings(SCV_DB_NAME=db_name, SCV_JWT_SECRET=SECRET, SCV_MAX_BODY_BYTES=4096)
    sent: list[int] = []

    async def endless() -> AsyncIterator[bytes]:
        yield b'{"query": "{ __typename }", "variables": {"pad": "'
        while True:  # the gateway must stop reading by itself
            sent.append(1000)
            yield b"y" * 1000

    async with gateway(mongo_uri, settings) as api:
        request = api.http.build_request(
            "POST",
            "/graphql",
            content=endless(),
            headers={"Authorization": f"Bearer {api.token()}", "content-type": "application/json"},
        )
        assert "content-length" not in request.headers
        response = await asyncio.wait_for(api.http.send(request), timeout=10)
        assert_body_too_large(response)
        assert sum(sent) <= 6000

        async def small() -> AsyncIterator[bytes]:
            yield b'{"query": "{ __typename }",'
            yield b' "variables": {}}'

        fine = await api.http.post(
            "/graphql",
            content=small(),
            headers={"Authorization": f"Bearer {api.token()}", "content-type": "application/json"},
        )
        assert fine.status_code == 200
        assert fine.json()["data"] == {"__typename": "Query"}
