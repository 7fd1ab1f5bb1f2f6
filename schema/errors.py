"""Every error leaves with ``extensions.code``; unexpected ones are logged and masked."""

from __future__ import annotations

import logging
from collections.abc import Iterator

from graphql import GraphQLError
from pymongo.errors import ConnectionFailure, ExecutionTimeout, PyMongoError, WTimeoutError
from strawberry.exceptions import MissingQueryError
from strawberry.extensions import SchemaExtension
from strawberry.schema.exceptions import CannotGetOperationTypeError, InvalidOperationTypeError
from strawberry.types import ExecutionResult, StreamExecutionResult

from resolvers.errors import DOMAIN_CODES, BadUserInput, DomainError

log = logging.getLogger("scv.errors")

UNAVAILABLE_ERRORS = (ConnectionFailure, ExecutionTimeout, WTimeoutError, TimeoutError)
# The request names no runnable operation (none, an unknown or ambiguous one, a disallowed
# type): the caller's mistake. Over HTTP the gateway answers these itself (400/405); over a
# WebSocket they reach the result as errors.
REQUEST_ERRORS = (CannotGetOperationTypeError, InvalidOperationTypeError, MissingQueryError)
PARSE_FAILED = "GRAPHQL_PARSE_FAILED"
VALIDATION_FAILED = "GRAPHQL_VALIDATION_FAILED"
# Every code a response can carry: the domain's and GraphQL's own.
ERROR_CODES: frozenset[str] = DOMAIN_CODES | {PARSE_FAILED, VALIDATION_FAILED}


def is_unavailable(cause: BaseException) -> bool:
    """The database could not answer in time: a connection failure or any timeout."""
    # ``.timeout``: client-side (CSOT, ``pymongo.timeout``) and server-side (code 50) expiry
    return isinstance(cause, UNAVAILABLE_ERRORS) or (
        isinstance(cause, PyMongoError) and cause.timeout
    )


def _root_cause(error: GraphQLError) -> BaseException | None:
    cause: BaseException | None = error.original_error
    while isinstance(cause, GraphQLError) and cause.original_error is not None:
        cause = cause.original_error
    return cause


def classify(error: GraphQLError) -> GraphQLError:
    """The error as the caller sees it: a contract code, a safe message, no internals."""
    cause = _root_cause(error)
    if isinstance(cause, DomainError):
        if error.original_error is cause:
            message = cause.message
        else:
            # a scalar or argument coercion failure: keep graphql's location text
            message = error.message
        return _with_code(error, message, cause.code)
    if cause is None or isinstance(cause, GraphQLError):
        default = PARSE_FAILED if error.message.startswith("Syntax Error") else VALIDATION_FAILED
        code = (error.extensions or {}).get("code") or default
        return _with_code(error, error.message, str(code))
    if isinstance(cause, REQUEST_ERRORS):
        return _with_code(error, error.message, BadUserInput.code)
    if is_unavailable(cause):
        log.warning("database unavailable: %s", type(cause).__name__)
        return _with_code(error, "the database is not available; try again", "SERVICE_UNAVAILABLE")
    log.error(
        "unexpected error at %s",
        ".".join(str(p) for p in error.path or []),
        exc_info=(type(cause), cause, cause.__traceback__),
    )
    return _with_code(error, "Internal server error", "INTERNAL_SERVER_ERROR")


def _with_code(error: GraphQLError, message: str, code: str) -> GraphQLError:
    return GraphQLError(
        message=message,
        nodes=error.nodes,
        source=error.source,
        positions=error.positions,
        path=error.path,
        original_error=None,
        extensions={"code": code},
    )


class ErrorCodes(SchemaExtension):
    """Rewrites every error of a result: contract code in ``extensions.code``, nothing leaked."""

    def on_operation(self) -> Iterator[None]:
        yield
        result = self.execution_context.result
        errors = getattr(result, "errors", None)
        if result is not None and errors:
            result.errors = [classify(e) for e in errors]

    def on_stream_result(self, result: StreamExecutionResult) -> Iterator[None]:
        """Each result a subscription (or another operation over a WebSocket) streams."""
        if isinstance(result, ExecutionResult) and result.errors:
            result.errors = [classify(e) for e in result.errors]
        yield
