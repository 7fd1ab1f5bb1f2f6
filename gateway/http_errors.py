"""JSON error responses for failures outside GraphQL execution (auth, body size)."""

from __future__ import annotations

from starlette.responses import JSONResponse


def error_response(status: int, message: str, code: str) -> JSONResponse:
    return JSONResponse(
        {"errors": [{"message": message, "extensions": {"code": code}}]}, status_code=status
    )
