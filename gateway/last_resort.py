"""The outermost guard: an exception nobody handled still gets a JSON answer, never plain text.

Without it Starlette answers ``Internal Server Error`` in plain text and re-raises, and
uvicorn then closes the connection: one bad request would break a keep-alive connection
that a proxy shares between clients. Here the exception ends: the HTTP answer is a JSON 500
with ``INTERNAL_SERVER_ERROR`` (no traceback in the body; the request log line inside has
it), the connection stays usable. A response that had already started cannot be replaced;
it is left unfinished, so uvicorn closes that one connection. A WebSocket is closed with
1011 (internal error) instead of dropping without a close frame.
"""

from __future__ import annotations

import logging
from contextlib import suppress

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from gateway.http_errors import error_response

log = logging.getLogger("scv.gateway")
CODE = "INTERNAL_SERVER_ERROR"
WS_INTERNAL_ERROR = 1011


class LastResort:
    """ASGI middleware; put it outermost, so the request log still sees the failure."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        state = {"started": False, "closed": False}

        async def watched_send(message: Message) -> None:
            kind = message["type"]
            if kind in ("http.response.start", "websocket.accept"):
                state["started"] = True
            elif kind in ("websocket.close", "websocket.http.response.start"):
                state["closed"] = True
            await send(message)

        try:
            await self.app(scope, receive, watched_send)
        except Exception as exc:
            # an HTTP request's log line (gateway.logs) carries the traceback already
            traceback = exc if scope["type"] == "websocket" else None
            log.error(
                "unhandled %s: answered by the last resort", type(exc).__name__, exc_info=traceback
            )
            if scope["type"] == "http":
                if not state["started"]:
                    await error_response(500, "Internal server error", CODE)(scope, receive, send)
            elif not state["closed"]:
                with suppress(Exception):  # the client may be gone already
                    await send({"type": "websocket.close", "code": WS_INTERNAL_ERROR})
