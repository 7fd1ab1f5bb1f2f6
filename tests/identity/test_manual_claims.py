"""claimIdentifier / releaseIdentifier (CONTRACT section 6)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from pymongo import AsyncMongoClient

from resolvers.store import Doc, Store
from tests.conftest import Api, codes
from tests.schema.test_merge_api import failpoint

CREATE = "mutation($i: ContactInput!) { createContact(input: $i) { id } }"
RECORD = """mutation($i: InteractionInput!) {
  recordInteraction(input: $i) { contact { id } created }
}"""
MERGE = "mutation($ids: [ID!]!) { mergeContacts(contactIds: $ids) { id } }"
CLAIM = """mutation($id: ID!, $t: IdentifierType!, $v: String!) {
  claimIdentifier(contactId: $id, identifier: {type: $t, value: $v}) {
    id type value contact { id }
  }
}"""
RELEASE = "mutation($t: IdentifierType!, $v: String!) { releaseIdentifier(type: $t, value: $v) }"
HOLDER = (
    "query($t: IdentifierType!, $v: String!) { identifier(type: $t, value: $v) { contact { id } } }"
)
T0 = datetime.now(UTC).isoformat()


async def create(api: Api, first: str = "Ann", **fields: Any) -> str:
    data = await api.gql(CREATE, {"i": {"firstName": first, "lastName": "Lee", **fields}})
    return str(data["createContact"]["id"])


async def visit(api: Api, cid: str, cookie: str) -> str:
    data = await api.gql(
        RECORD,
        {
            "i": {
                "conversationId": cid,
                "channel": "WEB_CHAT",
                "startedAt": T0,
                "identifiers": [{"type": "COOKIE", "value": cookie}],
            }
        },
    )
    return str(data["recordInteraction"]["contact"]["id"])


async def holder(api: Api, kind: str, value: str) -> str | None:
    found = (await api.gql(HOLDER, {"t": kind, "v": value}))["identifier"]
    return None if found is None else str(found["contact"]["id"])


async def test_a_free_value_is_claimed_normalised_by_the_canonical_contact(api: Api) -> None:
    ann = await create(api)
    data = await api.gql(CLAIM, {"id": ann, "t": "PHONE", "v": "(803) 555-0142"})
    assert data["claimIdentifier"] == {
        "id": "PHONE:+18035550142",
        "type": "PHONE",
        "value": "+18035550142",
        "contact": {"id": ann},
    }
    # sticky: an edit of the contact's fields does not release it
    await api.gql(
        'mutation($id: ID!) { updateContact(id: $id, input: {title: "Dr"}) { id } }', {"id": ann}
    )
    assert await holder(api, "PHONE", "+18035550142") == ann


async def test_a_value_held_by_another_contact_is_a_conflict(api: Api, store: Store) -> None:
    ann = await create(api, workPhone="+18035550142")
    bob = await create(api, "Bob")
    _, errors = await api.gql_error(CLAIM, {"id": bob, "t": "PHONE", "v": "+18035550142"})
    assert codes(errors) == ["CONFLICT"]
    assert await holder(api, "PHONE", "+18035550142") == ann


async def test_a_value_held_within_the_merge_set_moves_to_the_canonical(api: Api) -> None:
    first = await visit(api, "v-1", "gc-1")
    second = await visit(api, "v-2", "gc-2")
    canonical = (await api.gql(MERGE, {"ids": [first, second]}))["mergeContacts"]["id"]
    # an ancestor's id gives the value to its canonical contact
    data = await api.gql(CLAIM, {"id": first, "t": "COOKIE", "v": "gc-1"})
    assert data["claimIdentifier"]["contact"]["id"] == canonical


async def test_a_blocked_value_is_bad_user_input(api: Api, store: Store) -> None:
    ann = await create(api)
    for kind, value in [("COOKIE", "anonymous"), ("PHONE", "000-000-0000"), ("PHONE", "junk")]:
        _, errors = await api.gql_error(CLAIM, {"id": ann, "t": kind, "v": value})
        assert codes(errors) == ["BAD_USER_INPUT"], (kind, value)
    await api.gql(
        "mutation { updateIdentitySettings(input: {blockedIdentifiers: "
        '[{type: COOKIE, value: "shared-kiosk"}]}) { autoMerge } }'
    )
    _, errors = await api.gql_error(CLAIM, {"id": ann, "t": "COOKIE", "v": "shared-kiosk"})
    assert codes(errors) == ["BAD_USER_INPUT"]
    assert await store.identifiers.count_documents({"org": "acme"}) == 0


async def test_an_unknown_contact_is_not_found(api: Api) -> None:
    _, errors = await api.gql_error(CLAIM, {"id": "nope", "t": "COOKIE", "v": "gc-1"})
    assert codes(errors) == ["NOT_FOUND"]


async def test_this_cookie_is_not_this_person(api: Api, store: Store) -> None:
    """The agent's story: a shared computer's cookie was stitched to Ann; released, the next
    visit with it no longer resolves to her."""
    ann = await visit(api, "v-1", "gc-kiosk")
    assert await api.gql(RELEASE, {"t": "COOKIE", "v": "gc-kiosk"}) == {"releaseIdentifier": True}
    assert await holder(api, "COOKIE", "gc-kiosk") is None
    assert await visit(api, "v-2", "gc-kiosk") != ann


async def test_a_value_listed_in_a_field_is_bad_user_input(api: Api) -> None:
    ann = await create(api, workPhone="+18035550142")
    _, errors = await api.gql_error(RELEASE, {"t": "PHONE", "v": "+1 803 555 0142"})
    assert codes(errors) == ["BAD_USER_INPUT"]
    assert await holder(api, "PHONE", "+18035550142") == ann


async def test_an_unclaimed_value_is_not_found(api: Api) -> None:
    _, errors = await api.gql_error(RELEASE, {"t": "COOKIE", "v": "never-seen"})
    assert codes(errors) == ["NOT_FOUND"]


async def test_a_failed_claim_writes_nothing(
    api: Api, store: Store, client: AsyncMongoClient[Doc]
) -> None:
    ann = await create(api)
    async with failpoint(client, "insert", labels=[]):
        _, errors = await api.gql_error(CLAIM, {"id": ann, "t": "COOKIE", "v": "gc-1"})
    assert codes(errors) == ["INTERNAL_SERVER_ERROR"]
    assert await store.identifiers.count_documents({"org": "acme"}) == 0


async def test_claims_and_releases_by_hand_need_contact_edit(api: Api) -> None:
    ann = await create(api)
    lacking = ["externalContacts:contact:view", "externalContacts:identity:merge"]
    _, errors = await api.gql_error(
        CLAIM, {"id": ann, "t": "COOKIE", "v": "gc-1"}, permissions=lacking
    )
    assert codes(errors) == ["FORBIDDEN"]


async def changes_of(store: Store, kind: str) -> list[dict[str, Any]]:
    return await store.db["changes"].find({"org": "acme", "kind": kind}).to_list()


async def test_claims_and_releases_by_hand_are_in_the_change_feed(api: Api, store: Store) -> None:
    ann = await create(api)
    await api.gql(CLAIM, {"id": ann, "t": "COOKIE", "v": "gc-1"})
    [claimed] = await changes_of(store, "IDENTIFIER_CLAIMED")
    assert claimed["contactId"] == ann and claimed["by"] == "agent-1"
    assert claimed["identifier"] == {"type": "COOKIE", "value": "gc-1"}
    await api.gql(RELEASE, {"t": "COOKIE", "v": "gc-1"})
    [released] = await changes_of(store, "IDENTIFIER_RELEASED")
    assert released["contactId"] == ann
    assert released["identifier"] == {"type": "COOKIE", "value": "gc-1"}


async def test_a_failed_release_records_no_change(
    api: Api, store: Store, client: AsyncMongoClient[Doc]
) -> None:
    ann = await create(api)
    await api.gql(CLAIM, {"id": ann, "t": "COOKIE", "v": "gc-1"})
    async with failpoint(client, "delete", labels=[]):
        _, errors = await api.gql_error(RELEASE, {"t": "COOKIE", "v": "gc-1"})
    assert codes(errors) == ["INTERNAL_SERVER_ERROR"]
    assert await changes_of(store, "IDENTIFIER_RELEASED") == []
    assert await holder(api, "COOKIE", "gc-1") == ann
