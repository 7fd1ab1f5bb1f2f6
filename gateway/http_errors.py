"""JSON error responses for failures outside GraphQL execution (auth, body size)."""

from __future__ import annotations

from starlette.responses import JSONResponse


def error_response(status: int, message: str, code: str) -> JSONResponse:
    """``message`` may quote the caller's input: a lone surrogate in it is escaped (``\\ud800``)
    rather than failing the UTF-8 encoding of the response."""
    text = message.encode("utf-8", "backslashreplace").decode("utf-8")
    return JSONResponse(
        {"errors": [{"message": text, "extensions": {"code": code}}]}, status_code=status
    )
