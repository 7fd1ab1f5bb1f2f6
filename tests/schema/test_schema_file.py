"""The committed ``schema.graphql`` (what frontends run codegen on) matches the code."""

from __future__ import annotations

from pathlib import Path

from schema.schema import schema

SCHEMA_FILE = Path(__file__).resolve().parents[2] / "schema.graphql"


def test_committed_sdl_matches_the_code() -> None:
    assert SCHEMA_FILE.is_file(), "run `scv schema > schema.graphql`"
    committed = SCHEMA_FILE.read_text(encoding="utf-8").strip()
    assert committed == str(schema).strip(), (
        "schema.graphql is out of date: run `scv schema > schema.graphql`"
    )


def test_sdl_has_the_contract_root_fields() -> None:
    sdl = str(schema)
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
