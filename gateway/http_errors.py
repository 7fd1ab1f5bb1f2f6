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
    return JSONResponse(
        {"errors": [{"message": message, "extensions": {"code": code}}]},
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
