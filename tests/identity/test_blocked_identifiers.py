"""Blocked identifier values (CONTRACT section 6): the built-in list, an org's own list, and
their effect on resolution, claims and ``otherMatches``."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from resolvers import blocked_identifiers, contacts, interactions
from resolvers.blocked_identifiers import is_builtin_blocked, usable_keys
from resolvers.contact_fields import ContactType
from resolvers.errors import BadUserInput
from resolvers.store import Store
from tests.conftest import principal

P = principal()
T0 = datetime(2026, 11, 1, 9, 0, tzinfo=UTC)


def interaction(conversation_id: str, channel: str, *seen: tuple[str, str], **more: Any) -> Any:
    return {
        "conversationId": conversation_id,
        "channel": channel,
        "startedAt": T0,
        "identifiers": [{"type": kind, "value": value} for kind, value in seen],
        **more,
    }


@pytest.mark.parametrize(
    "identifier_key",
    [
        "COOKIE:anonymous",
        "COOKIE:  Unknown ",
        "COOKIE:NULL",
        "COOKIE:undefined",
        "FACEBOOK:none",
        "TWITTER:n/a",
        "INSTAGRAM:test",
        "LINE:0",
        "COOKIE:-1",
        "EMAIL:noreply@example.com",
        "EMAIL:no-reply@example.com",
        "EMAIL:donotreply@shop.example",
        "EMAIL:do-not-reply@shop.example",
        "EMAIL:anonymous@example.com",
        "EMAIL:test@example.com",
        "PHONE:+10000000000",
        "PHONE:+15555555555",
        "PHONE:+11234567890",
        "PHONE:+441111111111",
        "WHATSAPP:+19999999999",
    ],
)
def test_the_built_in_list_blocks(identifier_key: str) -> None:
    assert is_builtin_blocked(identifier_key)


@pytest.mark.parametrize(
    "identifier_key",
    [
        "COOKIE:gc-1",
        "COOKIE:anonymous-42",
        "EXTERNAL_ID:crm:42",
        "EXTERNAL_ID:crm:0",
        "EMAIL:ann@example.com",
        "EMAIL:noreply.ann@example.com",
        "EMAIL:ann@noreply.example.com",
        "PHONE:+18031230000",
        "PHONE:+11234567899",
        "FACEBOOK:testuser",
    ],
)
def test_the_built_in_list_lets_real_values_through(identifier_key: str) -> None:
    assert not is_builtin_blocked(identifier_key)


async def test_an_org_list_blocks_its_values_and_no_other_orgs(store: Store) -> None:
    async def work(session: Any) -> list[str]:
        return await blocked_identifiers.add_blocked(
            store, "acme", ["PHONE:+18035550100"], session=session
        )

    assert await store.in_transaction(work) == ["PHONE:+18035550100"]
    assert await store.in_transaction(work) == []  # already there: nothing added
    keys = ["PHONE:+18035550100", "EMAIL:ann@example.com", "COOKIE:anonymous"]
    assert await usable_keys(store, "acme", keys) == ["EMAIL:ann@example.com"]
    assert await usable_keys(store, "other", keys) == keys[:2]


def test_a_blocked_value_must_normalise() -> None:
    assert blocked_identifiers.normalise_blocked("PHONE", "(803) 555-0100", "US") == (
        "PHONE:+18035550100"
    )
    assert blocked_identifiers.normalise_blocked("EMAIL", " Ann@Example.COM ", "US") == (
        "EMAIL:ann@example.com"
    )
    for kind, value in [("PHONE", "call me"), ("EMAIL", "not-an-email"), ("COOKIE", "  ")]:
        with pytest.raises(BadUserInput):
            blocked_identifiers.normalise_blocked(kind, value, "US")


async def test_the_org_limit_is_enforced_unless_the_caller_says_otherwise(store: Store) -> None:
    many = [f"COOKIE:c-{i}" for i in range(blocked_identifiers.MAX_BLOCKED)]

    async def fill(session: Any) -> list[str]:
        return await blocked_identifiers.add_blocked(store, "acme", many, session=session)

    await store.in_transaction(fill)

    async def one_more(session: Any) -> list[str]:
        return await blocked_identifiers.add_blocked(store, "acme", ["COOKIE:x"], session=session)

    with pytest.raises(BadUserInput):
        await store.in_transaction(one_more)
    assert "COOKIE:x" not in (await blocked_identifiers.load_block_list(store, "acme")).org_keys

    async def suppress(session: Any) -> list[str]:
        return await blocked_identifiers.add_blocked(
            store, "acme", ["COOKIE:x"], session=session, enforce_limit=False
        )

    assert await store.in_transaction(suppress) == ["COOKIE:x"]


async def test_an_interaction_with_only_blocked_identifiers_is_one_with_none(store: Store) -> None:
    first = await interactions.record_interaction(
        store, P, interaction("c-1", "WEB_CHAT", ("COOKIE", "anonymous"), ("PHONE", "000-000-0000"))
    )
    second = await interactions.record_interaction(
        store, P, interaction("c-2", "WEB_CHAT", ("COOKIE", "ANONYMOUS"), ("PHONE", "0000000000"))
    )
    assert first.created and second.created
    assert first.contact is not None and second.contact is not None
    assert first.contact["_id"] != second.contact["_id"]  # never stitched through junk
    assert first.contact["type"] == ContactType.EPHEMERAL
    assert first.contact.get("cellPhone") is None
    assert await store.identifiers.count_documents({"org": "acme"}) == 0
    assert first.keys == []


async def test_a_blocked_value_next_to_a_real_one_neither_resolves_nor_is_claimed(
    store: Store,
) -> None:
    ann = await interactions.record_interaction(
        store, P, interaction("c-1", "EMAIL", ("EMAIL", "ann@example.com"), ("COOKIE", "null"))
    )
    bob = await interactions.record_interaction(
        store, P, interaction("c-2", "EMAIL", ("EMAIL", "bob@example.com"), ("COOKIE", "null"))
    )
    assert ann.contact is not None and bob.contact is not None
    assert ann.contact["_id"] != bob.contact["_id"]
    claimed = {d["key"] async for d in store.identifiers.find({"org": "acme"})}
    assert claimed == {"EMAIL:ann@example.com", "EMAIL:bob@example.com"}


async def test_an_org_blocked_value_stops_resolving_once_blocked(store: Store) -> None:
    shared = ("PHONE", "+18035550100")  # the front desk number every caller gives
    first = await interactions.record_interaction(store, P, interaction("c-1", "VOICE", shared))
    assert first.contact is not None

    async def block(session: Any) -> list[str]:
        return await blocked_identifiers.add_blocked(
            store, "acme", ["PHONE:+18035550100"], session=session
        )

    await store.in_transaction(block)
    assert await store.identifiers.count_documents({"org": "acme"}) == 0  # released
    second = await interactions.record_interaction(store, P, interaction("c-2", "VOICE", shared))
    assert second.contact is not None and second.created
    assert second.contact["_id"] != first.contact["_id"]
    assert await store.identifiers.count_documents({"org": "acme"}) == 0


async def test_a_contact_field_with_a_blocked_value_claims_nothing(store: Store) -> None:
    doc = await contacts.create_contact(
        store,
        P,
        {
            "firstName": "Ann",
            "lastName": "Lee",
            "workEmail": "noreply@acme.example",
            "cellPhone": "+1 803 555 0142",
        },
    )
    claimed = {d["key"] async for d in store.identifiers.find({"org": "acme"})}
    assert claimed == {"PHONE:+18035550142"}
    assert doc["workEmail"] == "noreply@acme.example"  # the field keeps what was entered


async def test_other_matches_never_come_from_a_blocked_value(store: Store) -> None:
    await contacts.create_contact(
        store, P, {"firstName": "Ann", "lastName": "Lee", "workEmail": "test@acme.example"}
    )
    resolution = await interactions.record_interaction(
        store, P, interaction("c-1", "CALLBACK", ("EMAIL", "test@acme.example"))
    )
    matches = await interactions.other_matches(
        store, "acme", resolution.keys, None, resolution.curated_only
    )
    assert matches == []
