"""Whole-org conversation counts from hourly and daily buckets: exact for any range."""

from __future__ import annotations

import random
from datetime import timedelta

from resolvers import conversation_counts
from resolvers.clock import now, to_db_precision
from resolvers.documents import ConversationDoc
from resolvers.journeys import ConversationFilter, PageRequest, page_total
from resolvers.store import Store
from tests.conftest import Api
from tests.factories import ORG, conversation_doc

CHANNELS = ("VOICE", "EMAIL", "SMS")


async def seed_counted(store: Store, n: int, rng: random.Random) -> list[ConversationDoc]:
    moment = now()
    docs = [
        conversation_doc(
            store,
            f"c{i}",
            moment - timedelta(minutes=rng.randint(0, 70 * 24 * 60)),
            channel=rng.choice(CHANNELS),
        )
        for i in range(n)
    ]
    docs += [  # on the hour exactly, and at the same instant: bucket edges
        conversation_doc(
            store, f"edge{i}", conversation_counts.floor_to(moment, timedelta(hours=i))
        )
        for i in range(1, 4)
    ]
    await store.conversations.insert_many(docs)
    await conversation_counts.record(store, ORG, [(d["startedAt"], d["channel"], 1) for d in docs])
    return docs


async def test_bucket_counts_equal_the_conversations_for_any_range(store: Store) -> None:
    rng = random.Random(11)
    docs = await seed_counted(store, 1500, rng)
    moment = now()
    times = sorted(d["startedAt"] for d in docs)
    hour = timedelta(hours=1)
    for trial in range(60):
        lower = rng.choice(
            [rng.choice(times), conversation_counts.floor_to(rng.choice(times), hour)]
        )
        upper = None if trial % 4 == 0 else lower + timedelta(minutes=rng.randint(0, 20 * 24 * 60))
        lower_inclusive, upper_inclusive = rng.random() < 0.5, rng.random() < 0.5
        channels = None if trial % 3 else frozenset(rng.sample(CHANNELS, 2))
        expected = sum(
            1
            for d in docs
            if (d["startedAt"] > lower or (lower_inclusive and d["startedAt"] == lower))
            and (
                upper is None
                or d["startedAt"] < upper
                or (upper_inclusive and d["startedAt"] == upper)
            )
            and (channels is None or d["channel"] in channels)
        )  # in Python: the embedded server's $gte misses equal rows on this index
        counted = await conversation_counts.count(
            store, ORG, lower, lower_inclusive, upper, upper_inclusive, channels
        )
        assert counted == expected, (trial, lower, upper, lower_inclusive, upper_inclusive)
    # the whole-org totalCount leaves out expired conversations (older than the retention)
    request = PageRequest("conversations", None, ConversationFilter(), 10)
    visible = sum(1 for d in docs if d["startedAt"] > moment - timedelta(days=60))
    assert visible < len(docs)
    assert await page_total(store, ORG, request, moment)() == visible


RECORD = """mutation($i: InteractionInput!) { recordInteraction(input: $i) { created } }"""
TOTAL = """query($since: DateTime, $channels: [Channel!]) {
  conversations(first: 1, since: $since, channels: $channels) { totalCount } }"""


async def test_total_count_follows_recording_and_re_recording(api: Api, store: Store) -> None:
    started = to_db_precision(now() - timedelta(hours=5))

    async def record(cid: str, at: object, channel: str = "VOICE") -> None:
        variables = {
            "i": {
                "conversationId": cid,
                "channel": channel,
                "startedAt": at.isoformat(),  # type: ignore[attr-defined]
                "identifiers": [{"type": "PHONE", "value": "+18035550142"}],
            }
        }
        await api.gql(RECORD, variables)

    async def total(**variables: object) -> int:
        data = await api.gql(TOTAL, variables)
        count: int = data["conversations"]["totalCount"]
        return count

    for n in range(5):
        await record(f"r{n}", started + timedelta(minutes=n * 7))
    assert await total() == 5
    await record("r0", started - timedelta(days=3), "EMAIL")  # moved: another hour, channel
    assert await total() == 5
    assert await total(channels=["EMAIL"]) == 1
    assert await total(since=(started - timedelta(days=1)).isoformat()) == 4
    await record("r1", started + timedelta(minutes=7))  # the same again: counted once
    assert await total() == 5
