"""JSON error responses for failures outside GraphQL execution (auth, body size, refusals)."""

from __future__ import annotations

from collections.abc import Mapping

from starlette.responses import JSONResponse

from gateway.graphql_request import RequestRefused


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


def refusal_response(refused: RequestRefused, media_type: str = "application/json") -> JSONResponse:
    """The response of a request refused before execution."""
    return error_response(
        refused.status,
        refused.message,
        refused.code,
        media_type=media_type,
        headers=refused.headers,
    )
