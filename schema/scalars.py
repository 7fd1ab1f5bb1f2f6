"""The ``DateTime`` scalar: ISO-8601 with an offset on input, UTC on output."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import NewType

import orjson
import strawberry

from resolvers.clock import to_db_precision
from resolvers.errors import BadUserInput


def serialize_datetime(value: datetime) -> str:
    """UTC, milliseconds, ``Z`` (a naive value counts as UTC). A UTC value — every stored
    one — goes through orjson, which writes ``"…SS.ffffffZ"`` (``"…SSZ"`` on a whole second)
    in a third of ``isoformat``'s time; its microseconds are cut as ``isoformat`` cuts them."""
    raw = orjson.dumps(value, option=orjson.OPT_UTC_Z)
    if raw.endswith(b'Z"'):
        if len(raw) == _WITH_MICROSECONDS:
            return raw[1:24].decode() + "Z"
        if len(raw) == _WHOLE_SECOND:
            return raw[1:20].decode() + ".000Z"
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


_WITH_MICROSECONDS = len(b'"2026-01-01T00:00:00.000000Z"')
_WHOLE_SECOND = len(b'"2026-01-01T00:00:00Z"')


def parse_datetime(value: object) -> datetime:
    if not isinstance(value, str) or len(value) > 64:
        raise BadUserInput("DateTime must be an ISO-8601 string with an offset")
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise BadUserInput(f"not an ISO-8601 date-time: {value[:64]!r}") from None
    if parsed.tzinfo is None:
        raise BadUserInput("DateTime needs a UTC offset, e.g. 2026-01-31T09:00:00Z")
    try:
        return to_db_precision(parsed)
    except OverflowError:  # e.g. 0001-01-01T00:00:00+14:00 is before year 1 in UTC
        raise BadUserInput(f"DateTime out of range: {value[:64]!r}") from None


DateTime = NewType("DateTime", datetime)
RFC_3339 = "https://datatracker.ietf.org/doc/html/rfc3339"

DATETIME_SCALAR = strawberry.scalar(
    name="DateTime",
    description="ISO-8601 date-time with offset; output in UTC",
    specified_by_url=RFC_3339,
    serialize=serialize_datetime,
    parse_value=parse_datetime,
)


def optional_datetime(value: datetime | None) -> DateTime | None:
    """A stored, possibly absent, date-time as the ``DateTime`` scalar's value."""
    return DateTime(value) if value is not None else None
