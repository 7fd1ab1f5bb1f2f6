"""The stored shapes of web journeys: ``web_events`` and the ``web_sessions`` derived from them.

Both are keyed by the visitor's cookie, never by a contact: a journey finds them through the
cookies its merge set claims now, so moving a claim moves the visits without a rewrite.
"""

from __future__ import annotations

from datetime import datetime
from typing import NotRequired, TypedDict


class KeyValueDoc(TypedDict):
    key: str
    value: str


class WebEventDoc(TypedDict):
    """``web_events``: one tracked event of one cookie; expires ``retention_days`` after ``at``."""

    _id: str
    org: str
    cookie: str  # the normalised COOKIE value
    eventId: str  # the caller's idempotency key (unique per org); the event's own id if none
    type: str  # web_events.WebEventType
    at: datetime
    url: str | None
    title: str | None
    referrer: str | None
    name: str | None
    attributes: list[KeyValueDoc]
    expiresAt: datetime


class WebSessionDoc(TypedDict):
    """``web_sessions``: a cookie's events less than the gap apart, maintained per batch."""

    _id: str
    org: str
    cookie: str
    startedAt: datetime
    endedAt: datetime
    pageViews: int
    eventCount: int
    landingUrl: str | None  # the url of its first event that has one
    landingAt: datetime | None  # and when (joining sessions compares them)
    exitUrl: str | None  # the url of its last event that has one
    exitAt: datetime | None
    referrer: str | None  # the referrer of its first event that has one
    referrerAt: datetime | None
    expiresAt: datetime  # its last event's expiry
    guard: NotRequired[int]  # bumped by a batch that writes nothing else of its cookie's latest
