"""The export writes times exactly as the DateTime scalar does, on its fast path too."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

from hypothesis import given
from hypothesis import strategies as st

from gateway.export import _iso
from schema.scalars import serialize_datetime

OFFSETS = st.sampled_from([UTC, timezone(timedelta(hours=2)), timezone(timedelta(minutes=-330))])


@given(st.datetimes(timezones=OFFSETS))
def test_export_times_match_the_datetime_scalar(moment: datetime) -> None:
    assert _iso(moment) == serialize_datetime(moment)


def test_whole_seconds_keep_their_milliseconds() -> None:
    assert _iso(datetime(2026, 5, 1, 10, 0, tzinfo=UTC)) == "2026-05-01T10:00:00.000Z"
