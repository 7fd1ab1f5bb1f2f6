"""Interaction resolution in the domain, without HTTP: priority, auto-creation, stitching.

``record_interaction`` takes the input as the GraphQL layer hands it on (GraphQL names,
``startedAt`` already a datetime).
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from resolvers import contacts, interactions
from resolvers.contact_fields import ContactType
from resolvers.errors import BadUserInput
from resolvers.identifiers import MAX_STRING
from resolvers.invariants import find_violations
from resolvers.store import Store
from tests.conftest import principal
from tests.factories import auto_contact

P = principal()
T0 = datetime(2026, 11, 1, 9, 0, tzinfo=UTC)
PHONE = "+18031230000"
EMAIL = "ann@example.com"


def interaction(conversation_id: str, channel: str, *seen: tuple[str, str], **more: Any) -> Any:
    return {
        "conversationId": conversation_id,
        "channel": channel,
        "startedAt": T0,
        "identifiers": [{"type": kind, "value": value} for kind, value in seen],
        **more,
    }


async def record(store: Store, raw: Any) -> interactions.Resolution:
    return await interactions.record_interaction(store, P, raw)


async def holder_of(store: Store, identifier_key: str) -> str | None:
    claim = await store.identifiers.find_one({"org": "acme", "key": identifier_key})
    return claim["contactId"] if claim is not None else None


def test_keys_come_in_priority_order_and_whatsapp_is_never_a_phone() -> None:
    parsed = interactions.parse_interaction(
        interaction(
            "c-1",
            "WHATSAPP",
            ("COOKIE", "gc-1"),
            ("PHONE", "(803) 123-0000"),
            ("EMAIL", "Ann@Example.com"),
            ("EXTERNAL_ID", "crm:42"),
            provided={"workPhone": "803-555-0000"},
        ),
        "US",
    )
    assert parsed.keys == [
        "EXTERNAL_ID:crm:42",
        "EMAIL:ann@example.com",
        "PHONE:+18035550000",  # provided data counts, as a phone
        "WHATSAPP:+18031230000",  # the identifier, on WhatsApp, is not a PHONE
        "COOKIE:gc-1",
    ]
    assert parsed.seen[1] == {"type": "WHATSAPP", "value": "+18031230000"}


@pytest.mark.parametrize(
    "raw",
    [
        interaction("c-1", "VOICE", endedAt=T0 - timedelta(seconds=1)),
        interaction("c-1", "VOICE", *[("COOKIE", f"gc-{n}") for n in range(21)]),
        interaction("c-1", "VOICE", ("PHONE", "1" * (MAX_STRING + 1))),
        interaction("", "VOICE"),
        interaction("c-1", "VOICE", queue="q" * (MAX_STRING + 1)),
    ],
)
async def test_bad_input_is_refused_before_anything_is_written(store: Store, raw: Any) -> None:
    with pytest.raises(BadUserInput):
        await record(store, raw)
    assert await store.conversations.count_documents({}) == 0
    assert await store.contacts.count_documents({}) == 0


async def test_the_highest_priority_claimed_identifier_decides(store: Store) -> None:
    by_phone = await contacts.create_contact(
        store, P, {"firstName": "Pat", "lastName": "Phone", "cellPhone": PHONE}
    )
    by_email = await contacts.create_contact(
        store, P, {"firstName": "Em", "lastName": "Mail", "personalEmail": EMAIL}
    )
    result = await record(store, interaction("c-1", "VOICE", ("PHONE", PHONE), ("EMAIL", EMAIL)))
    assert result.contact is not None and result.contact["_id"] == by_email["_id"]
    assert result.created is False
    assert result.conversation["externalContactId"] == by_email["_id"]
    matches = await interactions.other_matches(
        store, "acme", result.keys, by_email["_id"], result.curated_only
    )
    assert [m["_id"] for m in matches] == [by_phone["_id"]]


async def test_an_ancestors_claim_resolves_to_its_canonical(store: Store) -> None:
    from resolvers import merges

    a = await auto_contact(store, cellPhone=PHONE)
    b = await auto_contact(store, personalEmail=EMAIL)
    merged = await merges.merge_contacts(store, P, [a["_id"], b["_id"]])
    await store.identifiers.update_one(  # a claim left on the ancestor
        {"key": f"PHONE:{PHONE}"}, {"$set": {"contactId": a["_id"]}}
    )
    result = await record(store, interaction("c-1", "VOICE", ("PHONE", PHONE)))
    assert result.contact is not None and result.contact["_id"] == merged["_id"]


async def test_an_unknown_email_auto_creates_an_identified_contact_that_claims_it(
    store: Store,
) -> None:
    result = await record(store, interaction("c-1", "EMAIL", ("EMAIL", EMAIL)))
    contact = result.contact
    assert result.created is True and contact is not None
    assert contact["type"] == ContactType.IDENTIFIED
    assert contact["personalEmail"] == EMAIL  # the identifier fills the free email field
    assert contact["expiresAt"] == T0 + timedelta(days=store.config.retention_days)
    assert await holder_of(store, f"EMAIL:{EMAIL}") == contact["_id"]
    assert await find_violations(store, "acme") == []


async def test_a_cookie_alone_auto_creates_an_ephemeral_contact(store: Store) -> None:
    result = await record(store, interaction("w-1", "WEB_MESSAGING", ("COOKIE", "gc-1")))
    assert result.created is True and result.contact is not None
    assert result.contact["type"] == ContactType.EPHEMERAL
    assert result.contact["firstName"] is None
    assert await holder_of(store, "COOKIE:gc-1") == result.contact["_id"]


async def test_unclaimed_identifiers_are_stitched_to_the_resolved_contact(store: Store) -> None:
    curated = await contacts.create_contact(
        store, P, {"firstName": "Ann", "lastName": "Lee", "personalEmail": EMAIL}
    )
    result = await record(
        store, interaction("f-1", "WEB_CHAT", ("EMAIL", EMAIL), ("COOKIE", "gc-7"))
    )
    assert result.contact is not None and result.contact["_id"] == curated["_id"]
    stitched = await store.identifiers.find_one({"key": "COOKIE:gc-7"})
    assert stitched is not None
    assert (stitched["contactId"], stitched["via"]) == (curated["_id"], "interaction")


async def test_a_whatsapp_number_is_never_resolved_as_a_phone(store: Store) -> None:
    await contacts.create_contact(
        store, P, {"firstName": "Pat", "lastName": "Phone", "cellPhone": PHONE}
    )
    result = await record(store, interaction("wa-1", "WHATSAPP", ("PHONE", PHONE)))
    assert result.created is True and result.contact is not None
    assert result.contact["whatsAppId"] == PHONE
    assert await holder_of(store, f"WHATSAPP:{PHONE}") == result.contact["_id"]


@pytest.mark.parametrize("channel", ["OPEN_MESSAGING", "CALLBACK", "CAMPAIGN"])
async def test_unresolved_channels_store_the_conversation_unlinked(
    store: Store, channel: str
) -> None:
    curated = await contacts.create_contact(
        store, P, {"firstName": "Pat", "lastName": "Phone", "cellPhone": PHONE}
    )
    result = await record(store, interaction("u-1", channel, ("PHONE", PHONE)))
    assert result.contact is None and result.created is False
    assert result.curated_only is True
    assert result.conversation["externalContactId"] is None
    assert await store.contacts.count_documents({}) == 1
    matches = await interactions.other_matches(store, "acme", result.keys, None, True)
    assert [m["_id"] for m in matches] == [curated["_id"]]


async def test_recording_the_same_conversation_again_keeps_its_link(store: Store) -> None:
    first = await record(store, interaction("same", "VOICE", ("PHONE", PHONE)))
    assert first.contact is not None
    other = await contacts.create_contact(
        store, P, {"firstName": "Em", "lastName": "Mail", "personalEmail": EMAIL}
    )
    again = await record(store, interaction("same", "EMAIL", ("EMAIL", EMAIL), status="closed"))
    assert again.conversation["_id"] == first.conversation["_id"]
    assert again.conversation["externalContactId"] == first.contact["_id"]
    assert again.contact is not None and again.contact["_id"] == first.contact["_id"]
    assert again.conversation["status"] == "closed"
    assert again.contact["_id"] != other["_id"]
    assert await store.conversations.count_documents({}) == 1


async def test_concurrent_interactions_with_one_new_phone_make_one_contact(
    store: Store,
) -> None:
    results = await asyncio.gather(
        *(record(store, interaction(f"r-{n}", "VOICE", ("PHONE", PHONE))) for n in range(12))
    )
    ids = {r.contact["_id"] for r in results if r.contact is not None}
    assert len(ids) == 1
    assert sum(r.created for r in results) == 1
    assert await store.contacts.count_documents({}) == 1
    assert await holder_of(store, f"PHONE:{PHONE}") == ids.pop()
    assert await find_violations(store, "acme") == []
