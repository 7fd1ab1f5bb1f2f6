"""Operation selection, as the GraphQL spec requires it: a document with several operations
runs only the one ``operationName`` names.

Strawberry (like graphql-core's ``get_operation_ast`` callers) would otherwise run the first
operation of such a document, so ``query A {…} mutation B {…}`` without a name ran A, and
with the order swapped ran the mutation nobody selected. :class:`OperationSelection` refuses
that document right after parsing, before validation and execution, with Strawberry's
:class:`CannotGetOperationTypeError` (the error it raises itself for an ``operationName`` that
names no operation): over HTTP it is a 400 ``BAD_USER_INPUT``, over a WebSocket the operation
is refused as for an unknown name.
"""

from __future__ import annotations

from collections.abc import Iterator

from graphql import DocumentNode, OperationDefinitionNode
from strawberry.extensions import SchemaExtension
from strawberry.schema.exceptions import CannotGetOperationTypeError


class AmbiguousOperationError(CannotGetOperationTypeError):
    """Several operations and no ``operationName``."""

    def __init__(self, count: int) -> None:
        super().__init__(None)
        self.count = count

    def as_http_error_reason(self) -> str:
        return f"The document has {self.count} operations: operationName must name the one to run."


def operation_count(document: DocumentNode) -> int:
    return sum(isinstance(d, OperationDefinitionNode) for d in document.definitions)


class OperationSelection(SchemaExtension):
    """Refuses a document with several operations when the request names none."""

    def on_parse(self) -> Iterator[None]:
        yield
        execution = self.execution_context
        document = execution.graphql_document
        # the name the request gave (``operation_name`` falls back to the first operation's)
        given = getattr(execution, "_provided_operation_name", None)
        if document is not None and given is None:
            count = operation_count(document)
            if count > 1:
                raise AmbiguousOperationError(count)
