"""Every GraphQL block of the README is a valid document on its own, with named operations
(codegen and GraphiQL need the names; two anonymous operations are not a document)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from graphql import OperationDefinitionNode, parse, validate

from schema.schema import schema

README = Path(__file__).resolve().parents[2] / "README.md"
BLOCK = re.compile(r"^```graphql\n(.*?)^```", re.DOTALL | re.MULTILINE)


def graphql_blocks() -> list[str]:
    return BLOCK.findall(README.read_text(encoding="utf-8"))


def test_the_readme_has_graphql_blocks() -> None:
    assert len(graphql_blocks()) >= 10


@pytest.mark.parametrize("block", graphql_blocks(), ids=lambda b: b.split("{")[0].strip())
def test_each_readme_block_is_valid_and_its_operations_are_named(block: str) -> None:
    document = parse(block)
    assert validate(schema._schema, document) == []
    operations = [d for d in document.definitions if isinstance(d, OperationDefinitionNode)]
    assert operations
    assert all(op.name is not None for op in operations), block
