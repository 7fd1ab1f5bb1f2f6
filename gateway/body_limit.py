"""Request bodies over ``SCV_MAX_BODY_BYTES`` are refused with 413 before anything parses them.

The declared ``Content-Length`` is checked first; otherwise (a chunked body, or a
client that declares less than it sends) the body is counted while it streams in and
reading stops at the first byte over the limit. An accepted body is replayed to the app.
"""

from __future__ import annotations

from starlette.datastructures import Headers
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from gateway.http_errors import domain_error_response
from resolvers.errors import BadUserInput, QueryTooComplex


class BodySizeLimit:
    """ASGI middleware: 413 with ``{"errors":[{…,"extensions":{"code":…}}]}`` when too big."""

    def __init__(self, app: ASGIApp, *, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = Headers(scope=scope).get("content-length")
        if declared is not None:
            if not declared.strip().isdigit():
                invalid = BadUserInput("invalid Content-Length")
                await domain_error_response(invalid)(scope, receive, send)
                return
            if int(declared) > self.max_bytes:
                await self._refuse(scope, receive, send)
                return
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] != "http.request":  # the client went away
                return
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_bytes:
                await self._refuse(scope, receive, send)
                return
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        await self.app(scope, _replay(b"".join(chunks), receive), send)

    async def _refuse(self, scope: Scope, receive: Receive, send: Send) -> None:
        response = domain_error_response(
            QueryTooComplex(f"request body exceeds the limit of {self.max_bytes} bytes")
        )
        response.headers["connection"] = "close"  # the rest of the body is never read
        await response(scope, receive, send)


def _replay(body: bytes, receive: Receive) -> Receive:
    """The buffered body once, then the client's own messages (e.g. a disconnect)."""
    sent = False

    async def replay() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replay
