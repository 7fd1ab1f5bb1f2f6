"""Request rate limit of ``/graphql`` and the export: ``SCV_RATE_LIMIT_PER_MINUTE`` requests per
minute per token subject and org, counted in this process (each worker of ``SCV_WORKERS``
counts its own).

The ``limits`` library's sliding-window counter keeps two counters per caller (this minute's
and the previous one's, weighted), in memory that its storage expires by itself, so a burst
at a minute boundary cannot double the rate. Over the limit the caller gets HTTP 429 with
``Retry-After`` (whole seconds until a request would pass) and the code ``RATE_LIMITED``.
"""

from __future__ import annotations

import json
import math
import time
from typing import Final

from limits import RateLimitItemPerMinute
from limits.storage import MemoryStorage
from limits.strategies import SlidingWindowCounterRateLimiter

from gateway.graphql_request import RequestRefused
from resolvers.errors import RateLimited
from resolvers.principal import Principal

__all__ = ["DEFAULT_PER_MINUTE", "RateLimiter"]

DEFAULT_PER_MINUTE: Final = 6000


class RateLimiter:
    """Counts each (org, subject)'s requests; :meth:`check` refuses those over the limit."""

    def __init__(self, per_minute: int = DEFAULT_PER_MINUTE) -> None:
        self.item = RateLimitItemPerMinute(per_minute, namespace="scv")
        self.limiter = SlidingWindowCounterRateLimiter(MemoryStorage())

    def check(self, principal: Principal) -> None:
        """Counts one request of ``principal``; raises :class:`RequestRefused` (429) when over."""
        caller = json.dumps([principal.org, principal.sub])  # no separator can be forged
        if self.limiter.hit(self.item, caller):
            return
        reset = self.limiter.get_window_stats(self.item, caller).reset_time
        retry_after = max(1, math.ceil(reset - time.time()))
        raise RequestRefused(
            429,
            RateLimited(
                f"more than {self.item.amount} requests in a minute; retry in {retry_after} s"
            ),
            headers={"Retry-After": str(retry_after)},
        )
