"""CORS for browser apps on the origins of ``SCV_CORS_ORIGINS`` (comma-separated).

Starlette's :class:`CORSMiddleware` does the work (preflight included): any method the app
serves, any request header (``Authorization``, ``Content-Type``, Apollo's headers), and
``Retry-After`` and ``X-Request-Id`` readable by the page. No credentials mode: the bearer
token travels in a header, never in a cookie. One change: a preflight from an origin that is
not allowed gets an empty 204 without any CORS header (the browser then refuses the call), not
Starlette's plain-text 400 error page. Unset, no middleware is installed and no response
carries a CORS header.
"""

from __future__ import annotations

from collections.abc import Sequence

from starlette.datastructures import Headers, MutableHeaders
from starlette.middleware import Middleware
from starlette.middleware.cors import CORSMiddleware
from starlette.responses import Response
from starlette.types import Message, Send

MAX_AGE_S = 600
EXPOSED = ("Retry-After", "X-Request-Id")


class GatewayCORS(CORSMiddleware):
    """Starlette's CORS, silent towards origins it does not allow."""

    def preflight_response(self, request_headers: Headers) -> Response:
        if not self.is_allowed_origin(origin=request_headers["origin"]):
            return Response(status_code=204, headers={"Vary": "Origin"})
        return super().preflight_response(request_headers)

    async def send(self, message: Message, send: Send, request_headers: Headers) -> None:
        origin = request_headers.get("origin")
        if origin is None or self.is_allowed_origin(origin=origin):
            await super().send(message, send, request_headers)
            return
        if message["type"] == "http.response.start":  # not even Expose-Headers
            headers = MutableHeaders(scope=message)
            headers["Vary"] = ", ".join([*headers.getlist("Vary"), "Origin"])
        await send(message)


def cors_middleware(origins: Sequence[str]) -> list[Middleware]:
    """The middleware for ``origins``; none at all when there are none."""
    if not origins:
        return []
    return [
        Middleware(
            GatewayCORS,
            allow_origins=list(origins),
            allow_methods=["GET", "POST", "OPTIONS"],
            allow_headers=["*"],
            expose_headers=list(EXPOSED),
            max_age=MAX_AGE_S,
        )
    ]
