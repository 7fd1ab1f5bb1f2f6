"""JSON error responses for failures outside GraphQL execution (auth, body size, refusals).

:data:`HTTP_STATUS` is the one table from a domain error to its HTTP status; the body is
always ``{"errors": [{"message": …, "extensions": {"code": …}}]}`` with the error's own code
(``resolvers/errors.py``). Errors raised while a GraphQL operation executes are not HTTP
errors: they travel in the result (status 200).
"""

from __future__ import annotations

from collections.abc import Mapping

from starlette.responses import JSONResponse

from resolvers.errors import (
    BadUserInput,
    DomainError,
    Forbidden,
    NotFound,
    PersistedQueryNotFound,
    QueryTooComplex,
    RateLimited,
    ServiceUnavailable,
    Unauthenticated,
)

HTTP_STATUS: Mapping[type[DomainError], int] = {
    BadUserInput: 400,
    Unauthenticated: 401,
    Forbidden: 403,
    NotFound: 404,
    QueryTooComplex: 413,  # the only caller-controlled limit HTTP refuses: the body size
    RateLimited: 429,
    ServiceUnavailable: 503,
    PersistedQueryNotFound: 200,  # Apollo's protocol: the client resends with the query
}


def http_status(error: DomainError) -> int:
    """The status of a request refused with ``error`` (its nearest class in the table)."""
    for kind in type(error).__mro__:
        status = HTTP_STATUS.get(kind)
        if status is not None:
            return status
    return 500


class RequestRefused(Exception):
    """A request answered before execution: an HTTP status and one error with its code."""

    def __init__(
        self,
        error: DomainError,
        *,
        status: int | None = None,  # when the method, not the error, decides (405)
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(error.message)
        self.status = http_status(error) if status is None else status
        self.message = error.message
        self.code = error.code
        self.headers = dict(headers or {})


def error_response(
    status: int,
    message: str,
    code: str,
    *,
    media_type: str = "application/json",
    headers: Mapping[str, str] | None = None,
) -> JSONResponse:
    """``message`` may quote the caller's input: a lone surrogate in it is escaped (``\\ud800``)
    rather than failing the UTF-8 encoding of the response."""
    text = message.encode("utf-8", "backslashreplace").decode("utf-8")
    return JSONResponse(
        {"errors": [{"message": text, "extensions": {"code": code}}]},
        status_code=status,
        media_type=media_type,
        headers=dict(headers) if headers else None,
    )


def domain_error_response(error: DomainError, media_type: str = "application/json") -> JSONResponse:
    """The response of a request refused with a domain error, its status from the table."""
    return error_response(http_status(error), error.message, error.code, media_type=media_type)


def refusal_response(refused: RequestRefused, media_type: str = "application/json") -> JSONResponse:
    """The response of a request refused before execution."""
    return error_response(
        refused.status,
        refused.message,
        refused.code,
        media_type=media_type,
        headers=refused.headers,
    )
