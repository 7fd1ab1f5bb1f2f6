"""What a GraphQL-over-HTTP request asks for: ``query``, ``variables``, ``operationName`` and
``extensions``, from the query string of a GET or the JSON object of a POST.

Anything malformed is a :class:`RequestRefused` (HTTP 400, ``BAD_USER_INPUT``) before any
GraphQL work starts: a GET with a body, ``variables`` or ``extensions`` that are not JSON
objects, a ``query`` or ``operationName`` that is not a string.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from gateway.request_body import loads
from resolvers.errors import BadUserInput, DomainError

__all__ = ["GraphQLParams", "RequestRefused", "params_from_json", "params_from_query"]


class RequestRefused(Exception):
    """A request answered before execution: an HTTP status and one error with its code."""

    def __init__(
        self, status: int, error: DomainError, headers: Mapping[str, str] | None = None
    ) -> None:
        super().__init__(error.message)
        self.status = status
        self.message = error.message
        self.code = error.code
        self.headers = dict(headers or {})


def bad_request(message: str) -> RequestRefused:
    return RequestRefused(400, BadUserInput(message))


@dataclass(frozen=True)
class GraphQLParams:
    """One GraphQL request's parameters (the names of the GraphQL-over-HTTP spec)."""

    query: str | None
    variables: dict[str, Any] | None = None
    operation_name: str | None = None
    extensions: dict[str, Any] = field(default_factory=dict)

    def with_query(self, query: str) -> GraphQLParams:
        return GraphQLParams(query, self.variables, self.operation_name, self.extensions)


def params_from_json(payload: object) -> GraphQLParams:
    """The parameters of a POST body, already decoded from JSON."""
    if not isinstance(payload, dict):
        raise bad_request("the request body must be a JSON object")
    return _params(
        payload.get("query"),
        payload.get("variables"),
        payload.get("operationName"),
        payload.get("extensions"),
    )


def params_from_query(query_params: Mapping[str, str]) -> GraphQLParams:
    """The parameters of a GET: ``variables`` and ``extensions`` are JSON texts."""
    return _params(
        query_params.get("query") or None,
        _json_param(query_params, "variables"),
        query_params.get("operationName") or None,
        _json_param(query_params, "extensions"),
    )


def _json_param(query_params: Mapping[str, str], name: str) -> object:
    text = query_params.get(name)
    if not text:
        return None
    try:
        return loads(text)  # strict: no RecursionError from a parameter nested 100,000 deep
    except ValueError:  # JSONDecodeError, and lone surrogates that cannot be decoded
        raise bad_request(f"the {name} parameter is not valid JSON") from None


def _params(
    query: object, variables: object, operation_name: object, extensions: object
) -> GraphQLParams:
    if query is not None and not isinstance(query, str):
        raise bad_request("query must be a string")
    if variables is not None and not isinstance(variables, dict):
        raise bad_request("variables must be a JSON object")
    if operation_name is not None and not isinstance(operation_name, str):
        raise bad_request("operationName must be a string")
    if extensions is not None and not isinstance(extensions, dict):
        raise bad_request("extensions must be a JSON object")
    return GraphQLParams(query, variables, operation_name, extensions or {})
