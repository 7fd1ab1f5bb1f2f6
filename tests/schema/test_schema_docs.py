"""Every public type, field, argument and enum value is described (graphql-schema-linter's
description rules), DateTime names its specification, and the catalogue stays true."""

from __future__ import annotations

from graphql import (
    GraphQLEnumType,
    GraphQLInputObjectType,
    GraphQLInterfaceType,
    GraphQLObjectType,
    GraphQLSchema,
)

from schema.descriptions import DESCRIPTIONS, find
from schema.scalars import RFC_3339
from schema.schema import build_schema, schema
from tests.conftest import Api


def undescribed(graphql_schema: GraphQLSchema) -> list[str]:
    """The coordinates of every public element without a description."""
    missing: list[str] = []
    for name, named in graphql_schema.type_map.items():
        if name.startswith("__"):
            continue
        if not named.description:
            missing.append(name)
        if isinstance(named, GraphQLObjectType | GraphQLInterfaceType):
            for field_name, field in named.fields.items():
                if not field.description:
                    missing.append(f"{name}.{field_name}")
                missing += [
                    f"{name}.{field_name}({arg}:)"
                    for arg, argument in field.args.items()
                    if not argument.description
                ]
        elif isinstance(named, GraphQLInputObjectType):
            missing += [f"{name}.{f}" for f, field in named.fields.items() if not field.description]
        elif isinstance(named, GraphQLEnumType):
            missing += [f"{name}.{v}" for v, value in named.values.items() if not value.description]
    return missing


def test_every_type_field_argument_and_enum_value_is_described() -> None:
    assert undescribed(schema._schema) == []


def test_the_catalogue_names_only_elements_the_code_leaves_undescribed() -> None:
    bare = build_schema(documented=False)._schema
    stale = [c for c in DESCRIPTIONS if find(bare, c) is None]
    assert stale == []
    described_twice = [c for c in DESCRIPTIONS if find(bare, c).description]  # type: ignore[union-attr]
    assert described_twice == []
    assert undescribed(bare)  # the check above can fail: the catalogue does fill things in


def test_datetime_is_specified_by_rfc_3339() -> None:
    assert RFC_3339 == "https://datatracker.ietf.org/doc/html/rfc3339"
    assert f'scalar DateTime @specifiedBy(url: "{RFC_3339}")' in schema.as_str()


async def test_introspection_shows_the_descriptions(api: Api) -> None:
    data = await api.gql(
        """{
          dt: __type(name: "DateTime") { specifiedByURL description }
          channel: __type(name: "Channel") { enumValues { name description } }
          query: __type(name: "Query") { fields { name args { name description } } }
        }"""
    )
    assert data["dt"]["specifiedByURL"] == RFC_3339
    assert all(v["description"] for v in data["channel"]["enumValues"])
    search = next(f for f in data["query"]["fields"] if f["name"] == "searchContacts")
    assert all(a["description"] for a in search["args"])
