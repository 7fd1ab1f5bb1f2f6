"""A write failing in the middle of recordInteraction leaves no partial state behind."""

from __future__ import annotations

from typing import Any

from resolvers import changes
from resolvers.documents import ChangeDoc
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


def about(change: ChangeDoc, part: str) -> str | None:
    """The type or value of the identifier a change is about."""
    identifier = change.get("identifier")
    return None if not identifier else str(identifier["type" if part == "type" else "value"])


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
    # the conversation's upsert is the second update: after the stitching's fence on the
    # contact (the draft and its first claim are one transaction with no update)
    await fail_once("update", skip=1)
    _, errors = await api.gql_error(
        RECORD, interaction("f-1", ("PHONE", "+18032220000"), ("COOKIE", "ck"))
    )
    assert codes(errors) == ["INTERNAL_SERVER_ERROR"]
    assert await snapshot(store) == {"contacts": [], "identifiers": [], "conversations": []}
    # the feed shows the contact created, its claims, and its removal: nothing it shows is
    # missing from the database, and nothing is left behind unannounced
    feed = (await changes.read_changes(store, "acme", after=0, first=10)).docs
    assert [(c["kind"], about(c, "type")) for c in feed] == [
        ("CONTACT_CREATED", None),
        ("IDENTIFIER_CLAIMED", "PHONE"),
        ("IDENTIFIER_CLAIMED", "COOKIE"),
        ("CONTACT_DELETED", None),
    ]
    assert len({c["contactId"] for c in feed}) == 1
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
    feed = (await changes.read_changes(store, "acme", after=0, first=10)).docs
    assert [(c["kind"], about(c, "value")) for c in feed] == [
        ("CONTACT_CREATED", None),
        ("IDENTIFIER_CLAIMED", "stitch-me"),
        ("IDENTIFIER_RELEASED", "stitch-me"),
    ]


async def test_failed_claim_insert_leaves_no_draft_contact(
    api: Api, store: Store, fail_once: Any
) -> None:
    await fail_once("insert", skip=1)  # the draft contact is inserted, its claim is not
    _, errors = await api.gql_error(RECORD, interaction("f-3", ("EMAIL", "a@example.com")))
    assert codes(errors) == ["INTERNAL_SERVER_ERROR"]
    assert await snapshot(store) == {"contacts": [], "identifiers": [], "conversations": []}
    assert (await changes.read_changes(store, "acme", after=0, first=10)).docs == []
