"""Every connection of the schema is the one generic ``Connection[T]`` of schema/pagination.py."""

from __future__ import annotations

from graphql import GraphQLObjectType

from schema.pagination import Connection, Edge, PageInfo, UncountedConnection
from schema.schema import schema


def _origin(name: str) -> type:
    named = schema._schema.type_map[name]
    assert isinstance(named, GraphQLObjectType)
    origin: type = named.extensions["strawberry-definition"].origin
    return origin


def test_every_connection_and_edge_is_built_from_the_generic_ones() -> None:
    names = [n for n in schema._schema.type_map if n.endswith(("Connection", "Edge"))]
    assert {"ContactConnection", "ContactEdge", "ConversationConnection"} <= set(names)
    for name in names:
        generic = (Connection, UncountedConnection) if name.endswith("Connection") else Edge
        assert issubclass(_origin(name), generic), name
    assert _origin("PageInfo") is PageInfo
