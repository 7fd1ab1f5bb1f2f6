"""The per-caller sliding-window counter behind the rate limit, on a controlled clock."""

from __future__ import annotations

import time

import pytest

from gateway.graphql_request import RequestRefused
from gateway.rate_limit import RateLimiter
from resolvers.principal import Principal

AGENT = Principal(org="acme", sub="agent", permissions=frozenset())
OTHER = Principal(org="acme", sub="agent-2", permissions=frozenset())


class Clock:
    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.now = 1_700_000_040.0  # a minute's start
        monkeypatch.setattr(time, "time", lambda: self.now)


def passes(limiter: RateLimiter, principal: Principal = AGENT) -> bool:
    try:
        limiter.check(principal)
    except RequestRefused:
        return False
    return True


def retry_after(limiter: RateLimiter) -> int:
    with pytest.raises(RequestRefused) as refused:
        limiter.check(AGENT)
    return int(refused.value.headers["Retry-After"])


def test_the_limit_per_caller_within_a_minute(monkeypatch: pytest.MonkeyPatch) -> None:
    clock = Clock(monkeypatch)
    limiter = RateLimiter(5)
    assert [passes(limiter) for _ in range(6)] == [True] * 5 + [False]
    assert passes(limiter, OTHER)  # another caller counts its own
    clock.now += 30
    # still full: the next minute starts in 30 s, and its weight then has to fall to 4/5
    assert retry_after(limiter) == 30 + 12


def test_the_previous_minute_weighs_what_the_sliding_minute_still_covers(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    clock = Clock(monkeypatch)
    limiter = RateLimiter(10)
    assert all(passes(limiter) for _ in range(10))
    clock.now += 60 + 15  # 15 s into the next minute: the previous one weighs 3/4 (7.5)
    assert [passes(limiter) for _ in range(3)] == [True, True, False]
    assert retry_after(limiter) == 3  # at 18 s in it weighs 7: 7 + 2 + 1 <= 10
    clock.now += 2
    assert not passes(limiter)
    clock.now += 1
    assert passes(limiter)


def test_a_burst_at_the_minute_boundary_cannot_double_the_rate(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    clock = Clock(monkeypatch)
    limiter = RateLimiter(10)
    clock.now += 59.9
    assert all(passes(limiter) for _ in range(10))
    clock.now += 0.2  # just past the boundary
    assert not passes(limiter)


def test_idle_callers_are_forgotten(monkeypatch: pytest.MonkeyPatch) -> None:
    clock = Clock(monkeypatch)
    limiter = RateLimiter(3)
    assert all(passes(limiter) for _ in range(3))
    clock.now += 120  # two minutes later nothing weighs
    assert passes(limiter, OTHER)
    assert list(limiter._counts) == [("acme", "agent-2")]
    assert all(passes(limiter) for _ in range(3))
