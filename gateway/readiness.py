"""``/readyz``: answered within a second whatever the database does, logged once per change.

A probe that times out is worse than a 503 (the orchestrator then marks the process dead
instead of unready), so the ping has its own short deadline, :data:`READY_TIMEOUT_MS`,
for server selection and the command alike (``pymongo.timeout``), instead of
``SCV_DB_TIMEOUT_MS``. A 503 is a routine answer of this endpoint: its request line is
logged at INFO, and the change of state itself once, at WARNING (not ready, with the
reason) or INFO (ready again).
"""

from __future__ import annotations

import logging
import os
import re

import pymongo
from pymongo import AsyncMongoClient
from pymongo.errors import OperationFailure, PyMongoError
from starlette.requests import Request
from starlette.responses import JSONResponse

from gateway.embedded import EmbeddedServer
from gateway.logs import current_request
from resolvers.store import Doc

READY_TIMEOUT_MS = 500
log = logging.getLogger("scv.readiness")


class Readiness:
    """The /readyz endpoint of one gateway: its database client and embedded server."""

    def __init__(
        self,
        client: AsyncMongoClient[Doc],
        embedded: EmbeddedServer | None,
        timeout_ms: int = READY_TIMEOUT_MS,
    ) -> None:
        self.client = client
        self.embedded = embedded
        self.timeout_ms = timeout_ms
        self.ready: bool | None = None  # the last probe's answer; None before the first

    async def reason(self) -> str | None:
        """Why the gateway is not ready, in one line; None when it is."""
        if self.embedded is not None:
            exited = self.embedded.exit_reason()
            if exited is not None:
                return exited
        try:
            with pymongo.timeout(self.timeout_ms / 1000):
                await self.client.admin.command("ping")
        except PyMongoError as exc:
            return unreachable_reason(exc, self.timeout_ms)
        return None

    async def endpoint(self, request: Request) -> JSONResponse:
        reason = await self.reason()
        self._log_change(reason)
        if reason is not None:
            info = current_request()
            if info is not None:
                info.log_level = logging.INFO  # an answer, not a failure of the request
            return JSONResponse({"status": "unavailable", "reason": reason}, status_code=503)
        mode = "embedded" if self.embedded is not None else "external"
        return JSONResponse({"status": "ready", "database": mode})

    def _log_change(self, reason: str | None) -> None:
        ready = reason is None
        if ready == self.ready or (ready and self.ready is None):
            self.ready = ready
            return
        if ready:
            log.info("ready again: the database answers")
        else:
            log.warning("not ready: %s", reason)
        self.ready = ready


_ERRNO = re.compile(r"\[Errno (-?\d+)\] ([^(),:\n]{1,80})")


def unreachable_reason(exc: PyMongoError, timeout_ms: int) -> str:
    """One line for /readyz: the error's class and a short, safe hint (no hosts, no URIs)."""
    name = type(exc).__name__
    if isinstance(exc, OperationFailure):
        return f"database error: {name} (code {exc.code})"
    found = _ERRNO.search(str(exc))
    if found is not None:  # e.g. "Connection refused", from the errno rather than the text
        number = int(found.group(1))
        hint = os.strerror(number) if number > 0 else found.group(2).strip()
        return f"database unreachable: {name} ({hint})"
    if exc.timeout:
        return f"database unreachable: {name} (no answer within {timeout_ms} ms)"
    return f"database unreachable: {name}"
