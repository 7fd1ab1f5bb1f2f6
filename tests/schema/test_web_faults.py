"""A write failing anywhere in recordWebEvents leaves nothing behind: no event, no session, no
cookie move, no auto-created contact or new claim."""

from __future__ import annotations

from typing import Any

from resolvers.store import Doc, Store
from tests.conftest import Api, codes
from tests.schema.test_web_api import RECORD, create_curated, form, record, view

COLLECTIONS = ("contacts", "identifiers", "web_events", "web_sessions", "changes")


async def snapshot(store: Store) -> dict[str, list[Doc]]:
    """The collections, without ``claimSeq`` (a holder's fence counter, not state) and the
    feed's void positions (an aborted attempt's, which record nothing)."""
    return {
        name: await store.db[name]
        .find(
            {"seq": {"$exists": False}} if name != "changes" else {"kind": {"$exists": True}},
            {"claimSeq": 0},
        )
        .sort("_id", 1)
        .to_list()
        for name in COLLECTIONS
    }


async def test_a_failed_write_of_a_batch_changes_nothing(
    api: Api, store: Store, fail_once: Any
) -> None:
    """The batch: a known ephemeral visitor's cookie filling in a form (the cookie moves), a
    known visitor browsing (renewed), a new visitor (auto-created). Each of its updates and
    its insert fails in turn."""
    person = await create_curated(api, workEmail="ann@example.com")
    await record(api, view("laptop", 0), view("known", 0))
    batch = [
        view("laptop", 5),
        form("laptop", 6, workEmail="ann@example.com"),
        view("known", 60),
        view("newcomer", 7),
    ]
    before = await snapshot(store)
    failed = 0
    for command in ("insert", "update"):
        for skip in range(20):
            await fail_once(command, skip)
            body = (await api.post(RECORD, {"events": batch})).json()
            await fail_once(command, 1_000_000)  # disarmed, if the call did not reach it
            if "errors" not in body:  # the call has fewer such commands: it went through
                break
            failed += 1
            assert codes(body["errors"]) == ["INTERNAL_SERVER_ERROR"], body
            assert await snapshot(store) == before, (command, skip)
        await store.web_events.delete_many({})  # the successful call, undone by hand
        await store.web_sessions.delete_many({})
        for name in ("contacts", "identifiers", "changes"):
            await store.db[name].delete_many({})
        await store.db["contacts"].insert_many(before["contacts"])
        await store.db["identifiers"].insert_many(before["identifiers"])
        await store.web_events.insert_many(before["web_events"])  # type: ignore[arg-type]
        await store.web_sessions.insert_many(before["web_sessions"])  # type: ignore[arg-type]
        if before["changes"]:
            await store.db["changes"].insert_many(before["changes"])
    print(f"\n{failed} failures injected")
    assert failed >= 7  # the insert(s), the claims touch, the move, renewals, the sessions
    ids = await record(api, *batch)
    assert ids[1] == person and ids[2] != person
    assert await store.web_events.count_documents({}) == 6


async def test_a_failed_first_event_of_a_new_cookie_leaves_no_contact(
    api: Api, store: Store, fail_once: Any
) -> None:
    await fail_once("insert", skip=2)  # the events: after the new contact and its claim
    _, errors = await api.gql_error(RECORD, {"events": [view("fresh", 0)]})
    assert codes(errors) == ["INTERNAL_SERVER_ERROR"]
    assert await snapshot(store) == {name: [] for name in COLLECTIONS}
