"""identitySettings / updateIdentitySettings: defaults, limits, the org's blocked list and what
blocking or unblocking a claimed value does."""

from __future__ import annotations

from typing import Any

import pytest
from pymongo import AsyncMongoClient

from resolvers.store import Doc, Store
from tests.conftest import Api, codes
from tests.schema.test_merge_api import failpoint

SETTINGS = (
    "query { identitySettings { autoMerge autoMergeMinScore blockedIdentifiers { type value } } }"
)
UPDATE = """mutation($i: IdentitySettingsInput!) {
  updateIdentitySettings(input: $i) { autoMerge autoMergeMinScore blockedIdentifiers { type value } }
}"""
CREATE = "mutation($i: ContactInput!) { createContact(input: $i) { id } }"
IDENTIFIER = "query($v: String!) { identifier(type: PHONE, value: $v) { contact { id } } }"


async def test_defaults_are_off_and_095(api: Api) -> None:
    data = await api.gql(SETTINGS)
    assert data["identitySettings"] == {
        "autoMerge": False,
        "autoMergeMinScore": 0.95,
        "blockedIdentifiers": [],
    }


async def test_an_update_changes_what_it_names_and_keeps_the_rest(api: Api) -> None:
    data = await api.gql(UPDATE, {"i": {"autoMerge": True}})
    assert data["updateIdentitySettings"]["autoMerge"] is True
    data = await api.gql(
        UPDATE,
        {
            "i": {
                "autoMergeMinScore": 0.92,
                "blockedIdentifiers": [
                    {"type": "PHONE", "value": "(803) 555-0100"},
                    {"type": "EMAIL", "value": " Front.Desk@Acme.example "},
                    {"type": "PHONE", "value": "+18035550100"},  # the same value twice: once
                ],
            }
        },
    )
    assert data["updateIdentitySettings"] == {
        "autoMerge": True,
        "autoMergeMinScore": 0.92,
        "blockedIdentifiers": [
            {"type": "PHONE", "value": "+18035550100"},
            {"type": "EMAIL", "value": "front.desk@acme.example"},
        ],
    }
    other = await api.gql(SETTINGS, org="other")
    assert other["identitySettings"]["blockedIdentifiers"] == []  # per org


@pytest.mark.parametrize(
    "patch",
    [
        {"autoMergeMinScore": 0.89},
        {"autoMergeMinScore": 1.01},
        {"autoMergeMinScore": -1},
        {"blockedIdentifiers": [{"type": "PHONE", "value": "call me maybe"}]},
        {"blockedIdentifiers": [{"type": "EMAIL", "value": "not an email"}]},
        {"blockedIdentifiers": [{"type": "COOKIE", "value": "   "}]},
        {"blockedIdentifiers": [{"type": "COOKIE", "value": f"c{i}"} for i in range(1001)]},
        {"autoMerge": True, "blockedIdentifiers": [{"type": "EXTERNAL_ID", "value": "nosource"}]},
    ],
)
async def test_bad_settings_are_bad_user_input_and_change_nothing(
    api: Api, store: Store, patch: dict[str, Any]
) -> None:
    _, errors = await api.gql_error(UPDATE, {"i": patch})
    assert codes(errors) == ["BAD_USER_INPUT"]
    assert await store.db["identity_settings"].count_documents({}) == 0


async def test_a_thousand_values_are_allowed(api: Api) -> None:
    values = [{"type": "COOKIE", "value": f"c{i}"} for i in range(1000)]
    data = await api.gql(UPDATE, {"i": {"blockedIdentifiers": values}})
    assert len(data["updateIdentitySettings"]["blockedIdentifiers"]) == 1000


async def test_blocking_a_claimed_value_releases_it_and_unblocking_gives_it_back(
    api: Api, store: Store
) -> None:
    made = await api.gql(
        CREATE, {"i": {"firstName": "Front", "lastName": "Desk", "workPhone": "+1 803 555 0100"}}
    )
    contact_id = made["createContact"]["id"]
    assert (await api.gql(IDENTIFIER, {"v": "+18035550100"}))["identifier"]["contact"]["id"] == (
        contact_id
    )
    await api.gql(
        UPDATE, {"i": {"blockedIdentifiers": [{"type": "PHONE", "value": "+18035550100"}]}}
    )
    assert (await api.gql(IDENTIFIER, {"v": "+18035550100"}))["identifier"] is None
    # a new contact listing it claims nothing either
    await api.gql(CREATE, {"i": {"firstName": "B", "lastName": "C", "cellPhone": "+18035550100"}})
    assert await store.identifiers.count_documents({"key": "PHONE:+18035550100"}) == 0
    await api.gql(UPDATE, {"i": {"blockedIdentifiers": []}})
    holder = (await api.gql(IDENTIFIER, {"v": "+18035550100"}))["identifier"]
    assert holder["contact"]["id"] == contact_id  # the oldest lister


async def test_a_failed_update_leaves_neither_settings_nor_released_claims(
    api: Api, store: Store, client: AsyncMongoClient[Doc]
) -> None:
    await api.gql(
        CREATE, {"i": {"firstName": "Front", "lastName": "Desk", "workPhone": "+1 803 555 0100"}}
    )
    before = await store.identifiers.find().to_list()
    async with failpoint(client, "delete", labels=[]):
        _, errors = await api.gql_error(
            UPDATE, {"i": {"blockedIdentifiers": [{"type": "PHONE", "value": "+18035550100"}]}}
        )
    assert codes(errors) == ["INTERNAL_SERVER_ERROR"]
    assert await store.db["identity_settings"].count_documents({}) == 0
    assert await store.identifiers.find().to_list() == before


async def test_settings_need_the_configure_permission(api: Api) -> None:
    _, errors = await api.gql_error(
        SETTINGS, permissions=["externalContacts:contact:view", "externalContacts:identity:merge"]
    )
    assert codes(errors) == ["FORBIDDEN"]
    data = await api.gql(SETTINGS, permissions=["externalContacts:identity:configure"])
    assert data["identitySettings"]["autoMerge"] is False


async def test_blocking_releases_are_in_the_change_feed(api: Api, store: Store) -> None:
    made = await api.gql(
        CREATE, {"i": {"firstName": "Front", "lastName": "Desk", "workPhone": "+1 803 555 0100"}}
    )
    await api.gql(
        UPDATE, {"i": {"blockedIdentifiers": [{"type": "PHONE", "value": "+18035550100"}]}}
    )
    [change] = await store.db["changes"].find({"kind": "IDENTIFIER_RELEASED"}).to_list()
    assert change["contactId"] == made["createContact"]["id"]
    assert change["identifier"] == {"type": "PHONE", "value": "+18035550100"}
