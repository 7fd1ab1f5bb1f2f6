"""A write failing in the middle of recordInteraction leaves no partial state behind."""

from __future__ import annotations

from typing import Any

from resolvers.store import Doc, Store
from tests.conftest import Api, codes

RECORD = """mutation($i: InteractionInput!) {
  recordInteraction(input: $i) { created contact { id } } }"""


async def snapshot(store: Store) -> dict[str, list[Doc]]:
    """The three collections, without ``claimSeq`` (a holder's claim counter, not state)."""
    return {
        name: await store.db[name].find({}, {"claimSeq": 0}).sort("_id", 1).to_list()
        for name in ("contacts", "identifiers", "conversations")
    }


def interaction(cid: str, *identifiers: tuple[str, str]) -> dict[str, Any]:
    return {
        "i": {
            "conversationId": cid,
            "channel": "WEB_CHAT",
            "startedAt": "2026-11-01T09:00:00Z",
            "identifiers": [{"type": t, "value": v} for t, v in identifiers],
        }
    }


async def test_failed_conversation_write_removes_the_auto_created_contact(
    api: Api, store: Store, fail_once: Any
) -> None:
    # the conversation's upsert is the fourth update: after the two claims' holder touches
    # and the draft's keys
    await fail_once("update", skip=3)
    _, errors = await api.gql_error(
        RECORD, interaction("f-1", ("PHONE", "+18032220000"), ("COOKIE", "ck"))
    )
    assert codes(errors) == ["INTERNAL_SERVER_ERROR"]
    assert await snapshot(store) == {"contacts": [], "identifiers": [], "conversations": []}
    retried = await api.gql(RECORD, interaction("f-1", ("PHONE", "+18032220000")))
    assert retried["recordInteraction"]["created"] is True


async def test_failed_write_after_stitching_releases_the_new_claims(
    api: Api, store: Store, fail_once: Any
) -> None:
    await api.gql(
        'mutation { createContact(input: {firstName: "K", lastName: "L", '
        'cellPhone: "+18032220001"}) { id } }'
    )
    before = await snapshot(store)
    await fail_once("update", skip=1)  # the conversation's upsert, after the cookie's claim
    _, errors = await api.gql_error(
        RECORD, interaction("f-2", ("PHONE", "+18032220001"), ("COOKIE", "stitch-me"))
    )
    assert codes(errors) == ["INTERNAL_SERVER_ERROR"]
    assert await snapshot(store) == before


async def test_failed_claim_insert_leaves_no_draft_contact(
    api: Api, store: Store, fail_once: Any
) -> None:
    await fail_once("insert", skip=1)  # the draft contact is inserted, its claim is not
    _, errors = await api.gql_error(RECORD, interaction("f-3", ("EMAIL", "a@example.com")))
    assert codes(errors) == ["INTERNAL_SERVER_ERROR"]
    assert await snapshot(store) == {"contacts": [], "identifiers": [], "conversations": []}
