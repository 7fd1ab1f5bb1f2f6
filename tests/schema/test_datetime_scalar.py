"""The DateTime scalar's fast path (orjson) writes what ``isoformat`` writes, for every
datetime: aware at any offset, naive (taken as UTC), whole seconds, the ends of the range.
The NDJSON export writes its times with it too."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone, tzinfo

from hypothesis import given
from hypothesis import strategies as st

from schema.scalars import serialize_datetime

ZONES: list[tzinfo] = [
    UTC,
    timezone(timedelta(0)),
    timezone(timedelta(hours=2)),
    timezone(timedelta(minutes=-330)),
]
EARLIEST = datetime(1, 1, 2)  # earlier ones overflow when moved to UTC, either way
MOMENTS = st.datetimes(min_value=EARLIEST) | st.datetimes(
    min_value=EARLIEST, timezones=st.sampled_from(ZONES)
)


def reference(value: datetime) -> str:
    """The scalar's format as the standard library writes it."""
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


@given(MOMENTS)
def test_datetimes_are_written_as_isoformat_writes_them(moment: datetime) -> None:
    assert serialize_datetime(moment) == reference(moment)


def test_whole_seconds_keep_their_milliseconds() -> None:
    assert serialize_datetime(datetime(2026, 5, 1, 10, 0, tzinfo=UTC)) == "2026-05-01T10:00:00.000Z"
    assert serialize_datetime(datetime(2026, 5, 1, 10, 0, 0, 999999)) == "2026-05-01T10:00:00.999Z"
