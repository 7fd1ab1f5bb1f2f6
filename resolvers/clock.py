"""Time, at the database's precision (milliseconds, UTC)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta


def to_db_precision(moment: datetime) -> datetime:
    """UTC, truncated to milliseconds: what MongoDB stores, so values compare equal after a read."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    moment = moment.astimezone(UTC)
    return moment.replace(microsecond=moment.microsecond // 1000 * 1000)


def now() -> datetime:
    return to_db_precision(datetime.now(UTC))


def days(n: int) -> timedelta:
    return timedelta(days=n)
