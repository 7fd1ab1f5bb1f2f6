"""GET /export/conversations.ndjson, and the ``ndjson_lines`` generator the CLI reuses."""

from __future__ import annotations

import asyncio
import random
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import httpx
import orjson
import pytest
from pymongo.errors import ServerSelectionTimeoutError

from bench.command_log import CommandLog
from gateway.app import create_app
from gateway.export import _stop as stop_stages
from gateway.export import ndjson_lines
from gateway.seeding import seed
from gateway.settings import Settings
from resolvers.clock import now, to_db_precision
from resolvers.conversations import Channel
from resolvers.documents import ConversationDoc
from resolvers.errors import Conflict
from resolvers.invariants import find_violations
from resolvers.principal import Permission
from resolvers.store import Store
from schema.scalars import parse_datetime, serialize_datetime
from tests.conftest import SECRET, Api
from tests.factories import (
    add_contact,
    add_merge_set,
    contact_docs,
    conversation_doc,
)

PATH = "/export/conversations.ndjson"


PULL = """
query($after: String) { conversations(first: 1000, after: $after) {
  pageInfo { hasNextPage endCursor }
  edges { node { id channel direction startedAt endedAt durationSeconds queue agent
                 wrapUpCode status notes identifiers { type value } externalContactId
                 individual { id mergeSet { contactIds } } } } } }
"""


async def export(api: Api, params: dict[str, str] | None = None, **kw: Any) -> list[dict[str, Any]]:
    response = await api.http.get(
        PATH, params=params or {}, headers={"Authorization": f"Bearer {api.token(**kw)}"}
    )
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("application/x-ndjson")
    assert response.content == b"" or response.content.endswith(b"\n")
    return [orjson.loads(line) for line in response.content.splitlines()]


async def collect(lines: AsyncIterator[bytes]) -> list[dict[str, Any]]:
    return [orjson.loads(line) async for chunk in lines for line in chunk.splitlines()]


async def test_every_line_is_a_conversation_as_graphql_shows_it(api: Api, store: Store) -> None:
    canonical, members = await add_merge_set(store, size=3)
    loner = await add_contact(store)
    t0 = to_db_precision(now() - timedelta(days=2))
    await store.conversations.insert_many(
        [
            conversation_doc(store, "by-ancestor", t0, members[0]["_id"], notes="vip"),
            conversation_doc(store, "by-head", t0 + timedelta(hours=1), canonical["_id"]),
            conversation_doc(store, "by-loner", t0 + timedelta(hours=2), loner["_id"]),
            conversation_doc(store, "unlinked", t0 + timedelta(hours=3), channel="CALLBACK"),
        ]
    )
    lines = {line["id"]: line for line in await export(api)}
    assert set(lines) == {"by-ancestor", "by-head", "by-loner", "unlinked"}
    set_ids = [m["_id"] for m in members]
    first = lines["by-ancestor"]
    assert first == {
        "id": "by-ancestor",
        "channel": "VOICE",
        "direction": "INBOUND",
        "startedAt": serialize_datetime(t0),
        "endedAt": serialize_datetime(t0 + timedelta(minutes=3)),
        "durationSeconds": 180.0,
        "queue": "Support",
        "agent": "agent-1",
        "wrapUpCode": None,
        "status": "completed",
        "notes": "vip",
        "identifiers": [{"type": "PHONE", "value": "+18031230000"}],
        "externalContactId": members[0]["_id"],
        "individualId": canonical["_id"],
        "mergeSetIds": set_ids,
    }
    assert lines["by-head"]["individualId"] == canonical["_id"]
    assert lines["by-loner"]["individualId"] == loner["_id"]
    assert lines["by-loner"]["mergeSetIds"] == [loner["_id"]]
    assert lines["unlinked"]["individualId"] is None
    assert lines["unlinked"]["mergeSetIds"] == []

    # the same values the GraphQL pull shows
    nodes = (await api.gql(PULL))["conversations"]["edges"]
    for edge in nodes:
        node = edge["node"]
        line = lines[node["id"]]
        individual = node.pop("individual")
        assert {k: line[k] for k in node} == node
        assert line["individualId"] == (individual["id"] if individual else None)


async def test_the_export_filters_by_time_and_channel_and_hides_expired_and_foreign(
    api: Api, store: Store
) -> None:
    moment = to_db_precision(now())
    await store.conversations.insert_many(
        [
            conversation_doc(store, "old", moment - timedelta(days=3)),
            conversation_doc(store, "sms", moment - timedelta(days=2), channel="SMS"),
            conversation_doc(store, "voice", moment - timedelta(days=2)),
            conversation_doc(store, "recent", moment - timedelta(hours=1)),
            conversation_doc(store, "foreign", moment - timedelta(days=2), org="other-org"),
            conversation_doc(
                store, "expired", moment - timedelta(days=2), expires_at=moment - timedelta(days=1)
            ),
        ]
    )
    everything = {line["id"] for line in await export(api)}
    assert everything == {"old", "sms", "voice", "recent"}
    params = {
        "since": serialize_datetime(moment - timedelta(days=2, hours=1)),
        "until": serialize_datetime(moment - timedelta(hours=1)),
    }
    assert {line["id"] for line in await export(api, params)} == {"sms", "voice"}
    assert {line["id"] for line in await export(api, {**params, "channels": "sms"})} == {"sms"}
    both = await export(api, {"channels": "SMS,VOICE", "since": "", "until": ""})
    assert {line["id"] for line in both} == {"old", "sms", "voice", "recent"}
    assert await export(api, org="empty-org") == []


async def test_the_export_needs_a_token_with_view_all(api: Api, store: Store) -> None:
    response = await api.http.get(PATH)
    assert response.status_code == 401
    assert response.json()["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"
    response = await api.http.get(PATH, headers={"Authorization": "Bearer not-a-jwt"})
    assert response.status_code == 401
    others = [str(p) for p in Permission if p != Permission.CONVERSATION_VIEW_ALL]
    response = await api.http.get(
        PATH, headers={"Authorization": f"Bearer {api.token(permissions=others)}"}
    )
    assert response.status_code == 403
    assert response.json()["errors"][0]["extensions"]["code"] == "FORBIDDEN"


@pytest.mark.parametrize(
    "params",
    [
        {"since": "yesterday"},
        {"until": "2026-11-01T00:00:00"},  # no offset
        {"since": "2026-11-02T00:00:00Z", "until": "2026-11-01T00:00:00Z"},
        {"channels": "VOICE,TELEX"},
        {"since": "2026-11-01T00:00:00Z", "limit": "10"},
    ],
)
async def test_bad_parameters_are_400_bad_user_input(
    api: Api, store: Store, params: dict[str, str]
) -> None:
    response = await api.http.get(
        PATH, params=params, headers={"Authorization": f"Bearer {api.token()}"}
    )
    assert response.status_code == 400
    assert response.json()["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"


async def test_lines_are_resolved_per_chunk_not_per_line(
    logged: tuple[Store, CommandLog],
) -> None:
    store, log = logged
    _, members = await add_merge_set(store, size=3)
    people = contact_docs(store, 40)
    await store.contacts.insert_many(people)
    linked = [*members, *people]
    moment = now()
    await store.conversations.insert_many(
        [
            conversation_doc(
                store, f"c{n:03d}", moment - timedelta(minutes=n), linked[n % 43]["_id"]
            )
            for n in range(250)
        ]
    )
    log.clear()
    lines = await collect(ndjson_lines(store, "acme", chunk=100))
    assert sorted(line["id"] for line in lines) == [f"c{n:03d}" for n in range(250)]
    lookups = [n for n in log.names() if n.startswith("aggregate")]
    print(f"\nexport of 250 lines in chunks of 100: {log.names()}")
    # the first piece's contacts (FIRST_PIECE lines), then the 18 more the rest of the first
    # window links to; contacts already seen are remembered, so later windows look none up
    assert len(lookups) == 2, log.names()
    assert {n.split(":")[0] for n in log.names()} == {"find", "aggregate"}
    # the count buckets sizing the first window; that window (sized for FIRST_LINES at the
    # assumed spacing) holds all 250 rows, fewer than WINDOW_READ_MIN: read once, not again
    # narrower; five empty ones, each eight times wider, reach back to the retention bound;
    # and the two lookups
    assert len(log.names()) <= 1 + 1 + 5 + 2


async def test_the_export_is_newest_first_in_keyset_order_however_it_is_stored(
    logged: tuple[Store, CommandLog],
) -> None:
    """Inserted in random order (storage order is not time order), with ties of startedAt
    across chunk and window boundaries, a quiet month and another org in between: the lines
    come newest first, ties by id descending, each once, without one query that sorts or
    reads the whole org."""
    store, log = logged
    rng = random.Random(5)
    moment = to_db_precision(now())
    offsets = [rng.randint(0, 2000) for _ in range(700)] + [30 * 24 * 60 + n for n in range(40)]
    offsets += [7] * 30  # a tie group bigger than a chunk's tail
    docs = [
        conversation_doc(store, f"c{n:04d}", moment - timedelta(minutes=m), channel="EMAIL")
        for n, m in enumerate(offsets)
    ]
    docs += [conversation_doc(store, f"o{n}", moment, org="other") for n in range(50)]
    rng.shuffle(docs)
    await store.conversations.insert_many(docs)
    mine = [d for d in docs if d["org"] == "acme"]
    expected = [d["cid"] for d in sorted(mine, key=lambda d: (d["startedAt"], d["_id"]))][::-1]
    log.clear()
    lines = await collect(ndjson_lines(store, "acme", chunk=64))
    assert [line["id"] for line in lines] == expected
    for name in log.names():
        assert name in ("find:conversation_counts", "find:conversations", "aggregate:1"), name
    since = serialize_datetime(moment - timedelta(days=1))
    window = await collect(ndjson_lines(store, "acme", since=parse_datetime(since), chunk=50))
    cutoff = moment - timedelta(days=1)
    assert [line["id"] for line in window] == [
        c
        for c, d in zip(
            expected, sorted(mine, key=lambda d: (d["startedAt"], d["_id"]))[::-1], strict=True
        )
        if d["startedAt"] >= cutoff
    ]


async def test_ndjson_lines_refuses_bad_input_before_reading(store: Store) -> None:
    from resolvers.errors import BadUserInput

    moment = now()
    with pytest.raises(BadUserInput):
        await collect(ndjson_lines(store, "acme", moment, moment - timedelta(seconds=1)))
    with pytest.raises(BadUserInput):
        await collect(ndjson_lines(store, "acme", channels=["TELEX"]))


async def test_an_unavailable_database_is_503_before_any_line(
    mongo_uri: str, settings: Settings, store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    app = create_app(settings, uri=mongo_uri, secret=SECRET, ensure_indexes=False)

    async def unavailable(*args: Any, **kwargs: Any) -> None:
        raise ServerSelectionTimeoutError("no server")

    monkeypatch.setattr(app.state.runtime.store.db, "command", unavailable)
    transport = httpx.ASGITransport(app=app)
    try:
        async with httpx.AsyncClient(transport=transport, base_url="http://gw") as http:
            token = Api(http).token()
            response = await http.get(PATH, headers={"Authorization": f"Bearer {token}"})
        assert response.status_code == 503
        assert response.json()["errors"][0]["extensions"]["code"] == "SERVICE_UNAVAILABLE"
    finally:
        await app.state.runtime.close()


async def test_the_demo_data_set_is_sound_reproducible_and_exports_whole(
    store: Store, mongo_uri: str
) -> None:
    progress: list[int] = []
    result = await seed(
        store,
        "acme",
        contacts=150,
        merge_sets=6,
        conversations=1500,
        seed=5,
        progress=progress.append,
    )
    assert sum(progress) == 150 + 6 + 1500
    assert result.contacts == 150 and result.conversations == 1500
    assert len(result.merge_sets) == 6
    assert all(3 <= size <= 10 for size in result.merge_sets.values())
    assert max(result.merge_sets.values()) == 10
    assert await find_violations(store, "acme") == []
    stored = await store.conversations.find({"org": "acme"}).to_list()
    assert len(stored) == 1500
    assert {d["channel"] for d in stored} == {str(c) for c in Channel}
    assert await store.identifiers.count_documents({"org": "acme"}) >= 150

    # the same seed gives the same data set (its times relative to the moment of seeding)
    await seed(store, "again", contacts=150, merge_sets=6, conversations=1500, seed=5)
    again = await store.conversations.find({"org": "again"}).to_list()

    def shape(docs: list[ConversationDoc]) -> list[tuple[Any, ...]]:  # times are relative to now
        return sorted(
            tuple(
                str(v)
                for v in (
                    d["cid"],
                    d["channel"],
                    d["direction"],
                    d["queue"],
                    d["agent"],
                    d["status"],
                    d["identifiers"],
                )
            )
            for d in docs
        )

    assert shape(again) == shape(stored)
    with pytest.raises(Conflict):  # a second data set in the same org would collide
        await seed(store, "acme", contacts=10, merge_sets=0, conversations=10, seed=5)

    # every seeded conversation is exported once, with its contact's merge set resolved
    lines = await collect(ndjson_lines(store, "acme", chunk=250))
    assert sorted(line["id"] for line in lines) == sorted(d["cid"] for d in stored)
    heads = set(result.set_heads.values())
    merged = [line for line in lines if line["individualId"] in heads]
    assert merged and all(len(line["mergeSetIds"]) >= 3 for line in merged)


async def test_the_first_export_window_is_sized_from_the_count_buckets(
    logged: tuple[Store, CommandLog],
) -> None:
    """3,000 conversations 20 s apart: the assumed five-minute spacing would make the first
    window of 501 rows hold all 3,000 (read and sorted for one page); the buckets of the day
    before size it to about one page."""
    from resolvers import conversation_counts

    store, log = logged
    moment = to_db_precision(now())
    docs = [
        conversation_doc(store, f"d{n:04d}", moment - timedelta(seconds=20 * n))
        for n in range(3000)
    ]
    await store.conversations.insert_many(docs)
    await conversation_counts.record(
        store, "acme", [(d["startedAt"], d["channel"], 1) for d in docs]
    )
    log.clear()
    lines = await collect(ndjson_lines(store, "acme", chunk=500))
    assert len(lines) == 3000
    finds = [e.command for e in log.events if e.command_name == "find"]
    assert finds[0]["find"] == "conversation_counts"
    first_page = finds[1]["filter"]["startedAt"]
    in_window = [
        d for d in docs if first_page["$gt"] < d["startedAt"] <= first_page.get("$lte", moment)
    ]
    assert len(in_window) <= 2 * 501, len(in_window)


async def test_stopping_the_stages_keeps_the_callers_own_cancellation() -> None:
    """A stage that takes a moment to end when cancelled (a driver call cleaning up): the
    export cancelled while it waits for it is cancelled, not carried on (``await stage``
    under a suppressed CancelledError swallowed the caller's cancellation with the stage's)."""

    async def slow_to_end() -> None:
        try:
            await asyncio.sleep(3600)
        finally:
            await asyncio.sleep(0.05)

    stage = asyncio.create_task(slow_to_end())
    await asyncio.sleep(0)
    stopping = asyncio.create_task(stop_stages([stage]))
    await asyncio.sleep(0.01)
    stopping.cancel()
    with pytest.raises(asyncio.CancelledError):
        await stopping
    assert stopping.cancelled()
    await asyncio.wait([stage])
    assert stage.cancelled()
