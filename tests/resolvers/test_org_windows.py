"""org_windows: every visible conversation exactly once, newest first, whatever the spacing.

Each case compares with the answer computed here from every document: the conversations of
the org, visible (started within the retention period, not expired), within since/until and
of the channels, ordered by (startedAt, _id) descending.
"""

from __future__ import annotations

import random
from datetime import datetime, timedelta

import pytest

from bench.command_log import CommandLog
from resolvers import conversation_counts
from resolvers.clock import now, to_db_precision
from resolvers.documents import ConversationDoc
from resolvers.journeys import WINDOW_READ_MIN, conversation_filter
from resolvers.org_windows import OVERFLOW, org_windows
from resolvers.store import Store
from tests.factories import conversation_doc

CHANNELS = ["VOICE", "SMS", "EMAIL"]


async def insert(store: Store, starts: list[datetime], *, org: str = "acme") -> None:
    rng = random.Random(len(starts))
    docs = [
        conversation_doc(store, f"{org}-{n:05d}", started, org=org, channel=rng.choice(CHANNELS))
        for n, started in enumerate(starts)
    ]
    if docs:
        await store.conversations.insert_many(docs)


def expected(
    docs: list[ConversationDoc],
    moment: datetime,
    retention_days: int,
    since: datetime | None = None,
    until: datetime | None = None,
    channels: list[str] | None = None,
) -> list[str]:
    cutoff = moment - timedelta(days=retention_days)
    kept = [
        d
        for d in docs
        if d["org"] == "acme"
        and d["startedAt"] > cutoff
        and d["expiresAt"] > moment
        and (since is None or d["startedAt"] >= to_db_precision(since))
        and (until is None or d["startedAt"] < until)
        and (channels is None or d["channel"] in channels)
    ]
    kept.sort(key=lambda d: (d["startedAt"], d["_id"]), reverse=True)
    return [d["cid"] for d in kept]


async def read_all(store: Store, chunk: int, **filter_args: object) -> list[list[str]]:
    filter = conversation_filter(**filter_args)  # type: ignore[arg-type]
    return [[d["cid"] for d in w] async for w in org_windows(store, "acme", filter, chunk)]


async def all_docs(store: Store) -> list[ConversationDoc]:
    return await store.conversations.find({}).to_list()


async def test_evenly_spaced_rows_come_once_in_order(store: Store) -> None:
    moment = now()
    await insert(store, [moment - timedelta(minutes=7 * n) for n in range(300)])
    await insert(store, [moment - timedelta(minutes=n) for n in range(20)], org="other")
    windows = await read_all(store, 40)
    docs = await all_docs(store)
    assert [c for w in windows for c in w] == expected(docs, now(), store.config.retention_days)
    assert len(windows) > 3  # read in several windows


async def test_a_burst_at_one_instant_is_read_whole(
    store: Store, logged: tuple[Store, CommandLog]
) -> None:
    moment = to_db_precision(now() - timedelta(hours=2))
    chunk = 10
    # more than any bounded read may return: a window reads at least WINDOW_READ_MIN rows
    burst = [moment] * (max(chunk * OVERFLOW, WINDOW_READ_MIN) + chunk * 3)
    spread = [moment - timedelta(hours=n, seconds=1) for n in range(1, 30)]
    await insert(store, [*spread, *burst, now() - timedelta(minutes=1)])
    logged_store, _log = logged
    windows = await read_all(logged_store, chunk)
    docs = await all_docs(store)
    assert [c for w in windows for c in w] == expected(docs, now(), store.config.retention_days)


async def test_rows_on_window_boundaries_are_neither_lost_nor_repeated(store: Store) -> None:
    # whole seconds and milliseconds, many rows sharing an instant: boundaries fall on them
    moment = to_db_precision(now())
    rng = random.Random(5)
    starts = [moment - timedelta(seconds=rng.randrange(0, 5000)) for _ in range(400)]
    starts += [moment - timedelta(milliseconds=rng.randrange(0, 3000)) for _ in range(100)]
    await insert(store, starts)
    docs = await all_docs(store)
    for chunk in (3, 17, 64):
        windows = await read_all(store, chunk)
        flat = [c for w in windows for c in w]
        assert flat == expected(docs, now(), store.config.retention_days), chunk


@pytest.mark.parametrize("channels", [None, ["SMS"], ["VOICE", "EMAIL"]])
async def test_since_until_and_channels(store: Store, channels: list[str] | None) -> None:
    moment = now()
    await insert(store, [moment - timedelta(minutes=13 * n) for n in range(250)])
    since, until = moment - timedelta(hours=40), moment - timedelta(hours=3)
    windows = await read_all(store, 25, since=since, until=until, channels=channels)
    docs = await all_docs(store)
    assert [c for w in windows for c in w] == expected(
        docs, now(), store.config.retention_days, since, until, channels
    )


async def test_expired_and_old_rows_are_left_out(store: Store) -> None:
    moment = now()
    retention = timedelta(days=store.config.retention_days)
    await insert(store, [moment - timedelta(hours=n) for n in range(50)])
    old = conversation_doc(store, "too-old", moment - retention - timedelta(hours=1))
    gone = conversation_doc(store, "expired", moment - timedelta(hours=1, minutes=30))
    gone["expiresAt"] = moment - timedelta(minutes=1)
    await store.conversations.insert_many([old, gone])
    windows = await read_all(store, 8)
    flat = [c for w in windows for c in w]
    assert "too-old" not in flat and "expired" not in flat
    assert flat == expected(await all_docs(store), now(), store.config.retention_days)


async def test_the_first_window_is_sized_from_the_count_buckets(
    logged: tuple[Store, CommandLog],
) -> None:
    store, log = logged
    moment = now()
    starts = [moment - timedelta(seconds=60 * n + 5) for n in range(1600)]  # 26 hours
    await insert(store, starts)
    await conversation_counts.record(store, "acme", [(s, "VOICE", 1) for s in starts])
    log.clear()
    filter = conversation_filter()
    first: list[ConversationDoc] = []
    async for window in org_windows(store, "acme", filter, 500, first=50):
        first = window
        break
    assert 25 <= len(first) <= 100  # about 50 rows, read with one bounded command
    reads = [e for e in log.events if e.command_name == "find"]
    assert [e.command["find"] for e in reads] == ["conversation_counts", "conversations"]
    assert (
        "sort" not in reads[1].command
        and reads[1].command["limit"] == max(50 * OVERFLOW, WINDOW_READ_MIN) + 1
    )
