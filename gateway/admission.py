"""Admission: at most a few GraphQL requests of a process execute at once; the others wait
their turn, in arrival order, before touching the database.

Without it every request of a busy process runs at once and each of its database commands
queues for a connection behind the other requests' commands: a merge (16 commands) or a new
caller's ingest (12) waits its turn 16 or 12 times, a read twice, and the writes carry the
whole queue (``make load``: a p99 of 2.5-3.5 times the mean). With a few requests admitted and the
rest waiting first-come first-served, every request waits about as long as any other, once,
and then runs with the database nearly to itself.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable

from gateway.http_errors import RequestRefused
from gateway.settings import Settings
from resolvers.errors import ServiceUnavailable

BUSY = "the gateway is busy: no request place came free within the database deadline"
RETRY_AFTER_S = 1
DEFAULT_ACTIVE_REQUESTS = 8  # SCV_ACTIVE_REQUESTS
MIN_ACTIVE_REQUESTS = 2  # a process's share of them, at least


def places_per_process(settings: Settings) -> int:
    """This process's share of ``SCV_ACTIVE_REQUESTS`` among the workers."""
    return settings.share_per_worker(settings.active_requests, at_least=MIN_ACTIVE_REQUESTS)


class Admission:
    """``limit`` places; a request holds one while it executes. asyncio's semaphore hands
    places out in the order they were asked for."""

    def __init__(self, limit: int, on_waiting: Callable[[int], None] | None = None) -> None:
        self.limit = limit
        self._places = asyncio.Semaphore(limit)
        self.waiting = 0  # requests waiting for a place now
        self.executing = 0  # requests holding one now
        self._on_waiting = on_waiting  # told +1 / -1 as requests start and stop waiting

    @contextlib.asynccontextmanager
    async def place(self, *, within: float | None = None) -> AsyncIterator[None]:
        """Hold a place while the block runs; :class:`RequestRefused` (503, ``Retry-After``)
        when none comes free ``within`` seconds (the request's database deadline: waiting
        longer, it could not finish in time anyway)."""
        self._waiting_changed(1)
        try:
            async with asyncio.timeout(within):
                await self._places.acquire()
        except TimeoutError:
            raise RequestRefused(
                ServiceUnavailable(f"{BUSY}; retry in {RETRY_AFTER_S} s"),
                headers={"Retry-After": str(RETRY_AFTER_S)},
            ) from None
        finally:
            self._waiting_changed(-1)
        self.executing += 1
        try:
            yield
        finally:
            self.executing -= 1
            self._places.release()

    def _waiting_changed(self, delta: int) -> None:
        self.waiting += delta
        if self._on_waiting is not None:
            self._on_waiting(delta)
