"""A known caller's later interaction renews its contact and the contact's claims together:
a write failing between the two leaves both as they were (tests/schema/test_interaction_faults.py
covers the rest of recordInteraction)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import datetime
from typing import Any

import pytest
from pymongo import AsyncMongoClient

from resolvers.store import Doc, Store
from tests.conftest import Api
from tests.schema.test_command_counts import RECORD, interaction

PHONE = "+18032227700"


@pytest.fixture
async def fail_once(client: AsyncMongoClient[Doc]) -> AsyncIterator[Any]:
    async def arm(command: str, skip: int) -> None:
        await client.admin.command(
            {
                "configureFailPoint": "failCommand",
                "mode": {"skip": skip, "times": 1},
                "data": {"failCommands": [command], "errorCode": 2},
            }
        )

    yield arm
    await client.admin.command({"configureFailPoint": "failCommand", "mode": "off"})


async def expiries(store: Store) -> tuple[datetime | None, list[datetime | None]]:
    contact = await store.contacts.find_one({"org": "acme"})
    assert contact is not None
    claims = await store.identifiers.find({"org": "acme", "contactId": contact["_id"]}).to_list()
    return contact["expiresAt"], [c["expiresAt"] for c in claims]


async def test_a_failed_claim_renewal_leaves_the_contact_unrenewed(
    api: Api, store: Store, fail_once: Any
) -> None:
    data = await api.gql(RECORD, interaction("renew-1", PHONE, "2026-11-01T09:00:00Z"))
    assert data["recordInteraction"]["created"] is True
    before = await expiries(store)
    assert before[1] == [before[0]]
    # the later call's updates: the contact's expiry, then its claims' (this one fails)
    await fail_once("update", skip=1)
    _, errors = await api.gql_error(RECORD, interaction("renew-2", PHONE, "2026-11-02T09:00:00Z"))
    assert errors
    assert await expiries(store) == before  # neither renewed
    assert await store.conversations.find_one({"cid": "renew-2"}) is None
    # and without the failure both move together
    await api.gql(RECORD, interaction("renew-3", PHONE, "2026-11-03T09:00:00Z"))
    contact_expiry, claim_expiries = await expiries(store)
    assert contact_expiry is not None and before[0] is not None
    assert contact_expiry > before[0] and claim_expiries == [contact_expiry]
