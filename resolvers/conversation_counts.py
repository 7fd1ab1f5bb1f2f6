"""Exact counts of an org's conversations without reading them: hourly and daily buckets.

``totalCount`` of a whole-org pull would otherwise count every visible conversation of the
org per request (the embedded server reads each one). Instead every write that adds a
conversation, or moves one to another hour or channel, adds to two bucket documents in
``conversation_counts``: the hour and the day it started in, each with a total and a count
per channel. A count over a time span is then

- the partial hours at its two ends, counted exactly (an index range of at most an hour
  each: ``{org, startedAt: range}``),
- plus the buckets of the whole hours and days in between (a few dozen documents).

Expiry needs no bookkeeping: a conversation expires ``retention_days`` after it started, so
the visible ones are exactly those started after the cutoff, and a count never reaches back
before it; buckets outlive their hour by the retention period and are then removed by their
TTL index. Links, merges and unmerges do not change which org a conversation belongs to, so
they leave the counts alone. The bucket update follows the conversation's write, outside a
transaction (the hot path of ingest): a crash in between leaves that hour's count one short,
and conversations written around the gateway (straight into the collection) are not counted
until their buckets are rebuilt.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from pymongo import UpdateOne

from resolvers.clock import to_db_precision
from resolvers.store import Store, aggregate_rows

HOUR = timedelta(hours=1)
DAY = timedelta(days=1)
UNITS = {"h": HOUR, "d": DAY}
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)

Change = tuple[datetime, str, int]  # startedAt, channel, +1 or -1


def floor_to(moment: datetime, unit: timedelta) -> datetime:
    """The start of the hour or day (UTC) ``moment`` falls in."""
    steps = (moment - EPOCH) // unit
    return EPOCH + unit * steps


def _bucket_id(org: str, unit: str, start: datetime) -> str:
    return f"{org}|{unit}|{start.isoformat()}"


def bucket_updates(org: str, changes: Iterable[Change], retention_days: int) -> list[UpdateOne]:
    """One upsert per bucket the changes touch (hour and day of each startedAt)."""
    totals: Counter[tuple[str, datetime, str]] = Counter()
    for started_at, channel, delta in changes:
        for unit, size in UNITS.items():
            totals[(unit, floor_to(started_at, size), channel)] += delta
    by_bucket: dict[tuple[str, datetime], dict[str, int]] = {}
    for (unit, start, channel), delta in totals.items():
        if delta:
            by_bucket.setdefault((unit, start), {})[channel] = delta
    updates: list[UpdateOne] = []
    for (unit, start), per_channel in by_bucket.items():
        increments = {f"channels.{c}": d for c, d in per_channel.items()}
        increments["n"] = sum(per_channel.values())
        updates.append(
            UpdateOne(
                {"_id": _bucket_id(org, unit, start)},
                {
                    "$inc": increments,
                    "$setOnInsert": {
                        "org": org,
                        "unit": unit,
                        "start": start,
                        "expiresAt": start + UNITS[unit] + timedelta(days=retention_days),
                    },
                },
                upsert=True,
            )
        )
    return updates


async def record(store: Store, org: str, changes: Iterable[Change]) -> None:
    """Add the changes to their buckets (one command)."""
    updates = bucket_updates(org, changes, store.config.retention_days)
    if updates:
        await store.conversation_counts.bulk_write(updates, ordered=False)


# --- counting --------------------------------------------------------------------------------


async def _exact(
    store: Store,
    org: str,
    lower: tuple[datetime, bool],
    upper: tuple[datetime, bool] | None,
    channels: frozenset[str] | None,
) -> int:
    """Conversations started in a short range, counted from the conversations themselves."""
    ops: dict[str, datetime] = {}
    low, low_inclusive = lower
    # $gt one millisecond earlier, not $gte: see journeys.TimeRange.ops
    ops["$gt"] = to_db_precision(low) - timedelta(milliseconds=1) if low_inclusive else low
    if upper is not None:
        ops["$lte" if upper[1] else "$lt"] = upper[0]
    pipeline: list[dict[str, Any]] = [{"$match": {"org": org, "startedAt": ops}}]
    if channels is not None:
        pipeline.append({"$match": {"channel": {"$in": sorted(channels)}}})
    pipeline.append({"$count": "n"})
    found = await aggregate_rows(store.conversations, pipeline)
    return int(found[0]["n"]) if found else 0


async def _bucket_counts(
    store: Store,
    org: str,
    unit: str,
    start: datetime,
    end: datetime | None,
    channels: frozenset[str] | None,
) -> list[tuple[datetime, int]]:
    """The start and count of each ``unit`` bucket starting in ``[start, end)``."""
    if end is not None and end <= start:
        return []
    bound: dict[str, datetime] = {"$gte": start}
    if end is not None:
        bound["$lt"] = end
    cursor = store.conversation_counts.find(
        {"org": org, "unit": unit, "start": bound}, {"start": 1, "n": 1, "channels": 1}
    )
    found = []
    for doc in await cursor.to_list():
        if channels is None:
            n = int(doc.get("n", 0))
        else:
            per_channel = doc.get("channels") or {}
            n = sum(int(per_channel.get(c, 0)) for c in channels)
        found.append((doc["start"], n))
    return found


async def _buckets(
    store: Store,
    org: str,
    unit: str,
    start: datetime,
    end: datetime | None,
    channels: frozenset[str] | None,
) -> int:
    """The sum of the ``unit`` buckets starting in ``[start, end)``."""
    return sum(n for _, n in await _bucket_counts(store, org, unit, start, end, channels))


async def count(
    store: Store,
    org: str,
    lower: datetime,
    lower_inclusive: bool,
    upper: datetime | None,
    upper_inclusive: bool,
    channels: frozenset[str] | None,
) -> int:
    """Conversations of the org started within the range (and of the channels)."""
    first_hour = floor_to(lower, HOUR)
    if first_hour < lower or not lower_inclusive:
        first_hour += HOUR  # the partial first hour is counted exactly
    last_hour = floor_to(upper, HOUR) if upper is not None else None
    if upper is not None and last_hour is not None and last_hour <= first_hour:
        return await _exact(
            store, org, (lower, lower_inclusive), (upper, upper_inclusive), channels
        )
    total = 0
    if first_hour != lower or not lower_inclusive:
        total += await _exact(store, org, (lower, lower_inclusive), (first_hour, False), channels)
    if upper is not None and last_hour is not None:
        total += await _exact(store, org, (last_hour, True), (upper, upper_inclusive), channels)
    first_day = floor_to(first_hour, DAY)
    if first_day < first_hour:
        first_day += DAY
    last_day = floor_to(last_hour, DAY) if last_hour is not None else None
    if last_day is not None and last_day <= first_day:
        return total + await _buckets(store, org, "h", first_hour, last_hour, channels)
    total += await _buckets(store, org, "h", first_hour, first_day, channels)
    total += await _buckets(store, org, "d", first_day, last_day, channels)
    if last_day is not None:
        total += await _buckets(store, org, "h", last_day, last_hour, channels)
    return total


@dataclass(frozen=True)
class RecentDensity:
    """How an org's latest conversations lie before a moment: the average gap between them
    and the quiet stretch between the newest of them and the moment."""

    spacing_ms: float = 0.0  # 0: none in the day before
    quiet_ms: float = 0.0

    def window_ms(self, rows: float) -> float:
        """The width of a window ending at the moment expected to hold ``rows`` rows."""
        return self.quiet_ms + self.spacing_ms * rows


async def recent_density(
    store: Store,
    org: str,
    before: datetime,
    channels: frozenset[str] | None = None,
    rows: int = 1,
) -> RecentDensity:
    """The density of the org's conversations (of ``channels``, None for all) in the latest
    hours before ``before`` that hold ``rows`` of them, from its hour buckets (every hour of
    the day before when they hold fewer). The latest hours, not the day's average: a day's
    busy hours hold several times its quiet ones; and the quiet stretch since the newest
    rows is set apart, or a window sized after a quiet night would be empty. Buckets are hours: the
    newest busy hour's rows are taken to lie from its start at the density seen, so when
    they end early in the hour the first window reads more than it needs (117 rows for a
    page of 20 in a test at 09:12, the rows ending at 07:12)."""
    try:
        start = floor_to(before, HOUR) - DAY
    except OverflowError:  # ``until`` in the first day of year 1: nothing was counted then
        return RecentDensity()
    buckets = sorted(
        (b for b in await _bucket_counts(store, org, "h", start, before, channels) if b[1] > 0),
        reverse=True,
    )
    if not buckets:
        return RecentDensity()
    newest, newest_rows = buckets[0]
    active_end = min(before, newest + HOUR)
    seen, oldest = 0, start
    for hour, n in buckets:
        seen, oldest = seen + n, hour
        if seen >= rows:
            break
    spacing = max((active_end - oldest).total_seconds(), 1.0) / seen
    # the newest hour's rows taken to start with it at that spacing: where in the hour the
    # quiet began is not counted, and a window ending at its end could miss them all
    rows_end = min(active_end, newest + timedelta(seconds=spacing * newest_rows))
    quiet = max((before - rows_end).total_seconds(), 0.0)
    return RecentDensity(spacing_ms=spacing * 1000, quiet_ms=quiet * 1000)
