"""The plain-fields executor answers exactly what Strawberry's standard executor answers.

Every GraphQL document written anywhere in the test suite (string literals of ``tests/``
that parse as GraphQL operations), plus a few that stress aliases, fragments, directives and
null propagation, runs over HTTP through both executors against the same seeded data: the
response bytes (data, nulls, errors with their paths and codes, key order) must be equal.
Queries run twice on one database; mutations run on two identical copies, the standard path
on one and the plain-fields path on the other, so each sees the same state. Ids and times
a mutation creates differ between the copies by nature and are numbered before comparing.
"""

from __future__ import annotations

import ast
import re
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from graphql import (
    GraphQLEnumType,
    GraphQLInputObjectType,
    GraphQLInputType,
    GraphQLList,
    GraphQLNonNull,
    GraphQLScalarType,
    OperationDefinitionNode,
    OperationType,
    is_input_type,
    parse,
    type_from_ast,
    validate,
)
from graphql.error import GraphQLSyntaxError
from pymongo import AsyncMongoClient
from strawberry.schema.schema import StrawberryGraphQLCoreExecutionContext

from gateway.app import create_app
from gateway.auth import ALL_PERMISSIONS, mint_token
from gateway.seed_stories import write_stories
from gateway.seeding import seed
from gateway.settings import Settings
from resolvers.store import Doc, DomainConfig, Store
from schema.execution import PlainFieldsExecutor
from schema.schema import schema
from tests.conftest import SECRET, principal

TESTS = Path(__file__).resolve().parents[1]
ORG = "acme"
LIMITED = ("externalContacts:contact:view", "externalContacts:conversation:view")
OBJECT_ID = re.compile(r"^[0-9a-f]{24}$")
ISO = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$")

# what the suite's literals may not cover on their own
EXTRA = [
    """query Aliased($id: ID!) { a: contact(id: $id) { first: firstName ...Names __typename }
       b: contact(id: "000000000000000000000000") { id } }
       fragment Names on Contact { lastName type id: id }""",
    """query Directives($id: ID!, $yes: Boolean!) { journey(contactId: $id) {
       contactIds @include(if: $yes) channels @skip(if: $yes)
       conversations(first: 5) { edges { node { __typename id channel @skip(if: $yes)
       ... on Conversation { direction startedAt @include(if: $yes) identifiers { type value } }
       individual { id mergeSet { contactIds } } } } } } }""",
    """{ conversations(first: 20) { totalCount pageInfo { hasNextPage endCursor }
       edges { cursor node { id channel direction startedAt endedAt durationSeconds queue
       agent wrapUpCode status notes externalContactId identifiers { type value __typename }
       contact { id type } individual { id } } } } }""",
]


def suite_documents() -> list[str]:
    """Every string literal under tests/ that is a GraphQL document with an operation."""
    found: dict[str, None] = {}
    for path in sorted(TESTS.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Constant) and isinstance(node.value, str):
                text = node.value
                if ("{" in text) and operations_of(text):
                    found[text] = None
    return [*found, *EXTRA]


def operations_of(text: str) -> list[OperationDefinitionNode]:
    try:
        document = parse(text)
    except (GraphQLSyntaxError, RecursionError):
        return []
    if validate(schema._schema, document):
        return []
    return [d for d in document.definitions if isinstance(d, OperationDefinitionNode)]


class Values:
    """Variable values from the seeded data, chosen by type and name."""

    def __init__(self, contact_id: str, conversation_id: str, phone: str, name: str) -> None:
        self.contact_id = contact_id
        self.conversation_id = conversation_id
        self.phone = phone
        self.name = name

    def of(self, kind: GraphQLInputType, name: str) -> Any:
        if isinstance(kind, GraphQLNonNull):
            return self.of(kind.of_type, name)
        if isinstance(kind, GraphQLList):
            return [self.of(kind.of_type, name)]
        if isinstance(kind, GraphQLEnumType):
            return next(iter(kind.values))
        if isinstance(kind, GraphQLInputObjectType):
            return {
                field: self.of(spec.type, field)
                for field, spec in kind.fields.items()
                if isinstance(spec.type, GraphQLNonNull)
            }
        assert isinstance(kind, GraphQLScalarType)
        return self.scalar(kind.name, name.lower())

    def scalar(self, kind: str, name: str) -> Any:
        if kind == "ID":
            return self.conversation_id if "conversation" in name else self.contact_id
        if kind == "Int":
            return 5
        if kind == "Float":
            return 1.5
        if kind == "Boolean":
            return True
        if kind == "DateTime":
            moment = datetime.now(UTC) - timedelta(days=30)
            return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")
        if name in ("after", "before"):
            return None
        if name in ("query", "q", "text", "name"):
            return self.name
        return self.phone


def variables_for(operation: OperationDefinitionNode, values: Values) -> dict[str, Any]:
    found = {}
    for definition in operation.variable_definitions or ():
        kind = type_from_ast(schema._schema, definition.type)
        assert is_input_type(kind)
        found[definition.variable.name.value] = values.of(kind, definition.variable.name.value)
    return found


class Normaliser:
    """Ids and times a mutation created, numbered in order of appearance."""

    def __init__(self, known: set[str], since: str) -> None:
        self.known = known
        self.since = since
        self.seen: dict[str, str] = {}

    def __call__(self, value: Any) -> Any:
        if isinstance(value, dict):
            # a webhook's secret is random: both executors answer one, never the same
            return {k: "<secret>" if k == "secret" and v else self(v) for k, v in value.items()}
        if isinstance(value, list):
            return [self(v) for v in value]
        if isinstance(value, str) and OBJECT_ID.match(value) and value not in self.known:
            return self.seen.setdefault(value, f"<new id {len(self.seen)}>")
        if isinstance(value, str) and ISO.match(value) and value >= self.since:
            return "<now>"
        return value


@pytest.fixture
async def twin(
    mongo_uri: str, settings: Settings, store: Store, db_name: str
) -> AsyncIterator[tuple[Store, Store]]:
    """The seeded test database and an identical copy of it."""
    await seed(store, ORG, contacts=80, merge_sets=4, conversations=400, seed=11)
    await write_stories(store, principal(ORG))
    client: AsyncMongoClient[Doc] = AsyncMongoClient(mongo_uri, tz_aware=True)
    copy = Store(client[db_name + "_copy"], DomainConfig())
    await copy.ensure_indexes()
    for name in await store.db.list_collection_names():
        docs = await store.db[name].find().to_list()
        if docs:
            await copy.db[name].insert_many(docs)
    yield store, copy
    await client.drop_database(db_name + "_copy")
    await client.close()


@pytest.fixture
async def clients(
    mongo_uri: str, settings: Settings, twin: tuple[Store, Store]
) -> AsyncIterator[tuple[httpx.AsyncClient, httpx.AsyncClient]]:
    """HTTP clients of an app on the database and of an app on its copy."""
    copy_settings = settings.model_copy(update={"db_name": twin[1].db.name})
    apps = [
        create_app(s, uri=mongo_uri, secret=SECRET, ensure_indexes=False)
        for s in (settings, copy_settings)
    ]
    http = [
        httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t", timeout=60)
        for app in apps
    ]
    yield http[0], http[1]
    for client, app in zip(http, apps, strict=True):
        await client.aclose()
        await app.state.runtime.close()


@pytest.fixture
def standard_execution() -> Iterator[None]:
    """Restores the schema's executor whatever a test switched it to."""
    yield
    schema.execution_context_class = PlainFieldsExecutor


async def post(http: httpx.AsyncClient, executor: type, body: dict[str, Any], token: str) -> bytes:
    schema.execution_context_class = executor
    response = await http.post("/graphql", json=body, headers={"Authorization": f"Bearer {token}"})
    return response.content


async def test_every_document_of_the_suite_answers_the_same_through_both_executors(
    twin: tuple[Store, Store],
    clients: tuple[httpx.AsyncClient, httpx.AsyncClient],
    standard_execution: None,
) -> None:
    store, _ = twin
    since = datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    head = await store.contacts.find_one(
        {"org": ORG, "mergeSetId": {"$ne": None}, "readOnly": False}
    )
    curated = await store.contacts.find_one(
        {"org": ORG, "type": "CURATED", "cellPhone": {"$ne": None}}
    )
    conversation = await store.conversations.find_one(
        {"org": ORG, "externalContactId": {"$ne": None}}
    )
    assert head and curated and conversation
    phone, name = curated["cellPhone"], curated["firstName"]
    assert phone is not None and name is not None
    values = Values(head["_id"], conversation["cid"], phone, name)
    known = {doc["_id"] for doc in await store.contacts.find({}, {"_id": 1}).to_list()}
    known |= {doc["_id"] for doc in await store.merge_sets.find({}, {"_id": 1}).to_list()}
    tokens = [
        mint_token(SECRET, org=ORG, sub="agent-1", permissions=ALL_PERMISSIONS),
        mint_token(SECRET, org=ORG, sub="agent-2", permissions=LIMITED),
    ]
    documents = suite_documents()
    assert len(documents) >= 100  # the suite's documents were found
    compared, with_data, mismatches = 0, 0, []
    for text in documents:
        for operation in operations_of(text):
            if operation.operation == OperationType.SUBSCRIPTION:
                continue
            body = {
                "query": text,
                "variables": variables_for(operation, values),
                "operationName": operation.name.value if operation.name else None,
            }
            mutation = operation.operation == OperationType.MUTATION
            for token in tokens:
                standard = await post(
                    clients[0], StrawberryGraphQLCoreExecutionContext, body, token
                )
                plain = await post(clients[1 if mutation else 0], PlainFieldsExecutor, body, token)
                if mutation:
                    standard, plain = (
                        orjson.dumps(Normaliser(known, since)(orjson.loads(raw)))
                        for raw in (standard, plain)
                    )
                compared += 1
                with_data += b'"data":{' in standard
                if standard != plain:
                    mismatches.append((text[:120], standard[:400], plain[:400]))
    assert not mismatches, mismatches[:3]
    assert compared >= 200 and with_data >= compared // 3, (compared, with_data)
