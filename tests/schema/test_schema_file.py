"""The committed ``schema.graphql`` (what frontends run codegen on) matches the code."""

from __future__ import annotations

from pathlib import Path

from graphql import GraphQLObjectType
from graphql.utilities.print_schema import print_input_value

from schema.schema import schema

SCHEMA_FILE = Path(__file__).resolve().parents[2] / "schema.graphql"


def test_committed_sdl_matches_the_code() -> None:
    assert SCHEMA_FILE.is_file(), "run `scv schema > schema.graphql`"
    committed = SCHEMA_FILE.read_text(encoding="utf-8").strip()
    assert committed == str(schema).strip(), (
        "schema.graphql is out of date: run `scv schema > schema.graphql`"
    )


def signatures() -> str:
    """Every root field as ``name(arg: Type = default, …): Type``, one per line (the SDL
    prints arguments one per line once they carry descriptions)."""
    lines = []
    for root in (schema._schema.query_type, schema._schema.mutation_type):
        assert isinstance(root, GraphQLObjectType)
        for name, field in root.fields.items():
            args = ", ".join(print_input_value(a, arg) for a, arg in field.args.items())
            lines.append(f"{name}({args}): {field.type}")
    return "\n".join(lines)


def test_sdl_has_the_contract_root_fields() -> None:
    sdl = signatures()
    for fragment in (
        "contact(id: ID!): Contact",
        "contacts(ids: [ID!]!): [Contact]!",
        "searchContacts(query: String!, types: [ContactType!] = [CURATED], first: Int = 25, "
        "after: String): ContactConnection!",
        "identifier(type: IdentifierType!, value: String!): Identifier",
        "reverseLookup(value: String!): [Contact!]!",
        "createContact(input: ContactInput!): Contact!",
        "updateContact(id: ID!, input: ContactInput!): Contact!",
        "deleteContact(id: ID!): Boolean!",
        "promoteContact(id: ID!): Contact!",
        "addNote(contactId: ID!, text: String!): Note!",
    ):
        assert fragment in sdl, fragment
