"""A page of conversations reads only the document fields its selection needs."""

from __future__ import annotations

from graphql import GraphQLObjectType

from schema.conversation import FIELD_SOURCES, node_projection
from schema.schema import schema


def test_projection_follows_the_selection() -> None:
    assert node_projection(["id", "startedAt"]) == ("_id", "cid", "startedAt")
    assert node_projection(["individual", "__typename"]) == (
        "_id",
        "cid",
        "externalContactId",
        "startedAt",
    )
    assert node_projection(["somethingNew"]) is None


def test_every_conversation_field_has_its_sources() -> None:
    conversation = schema._schema.type_map["Conversation"]
    assert isinstance(conversation, GraphQLObjectType)
    assert set(conversation.fields) == set(FIELD_SOURCES) - {"__typename"}
