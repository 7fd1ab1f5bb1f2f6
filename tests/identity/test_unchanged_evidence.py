"""An edit that leaves a contact's match evidence as it was (a title, an opt-out, or an
integration sending the values the contact already has) keeps its pairs without reading its
candidates again; an edit of a value, a name or an address still refreshes them, and with
``autoMerge`` on every edit is scored as before."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from bench.command_log import CommandLog
from resolvers.clock import now
from resolvers.documents import ContactDoc
from resolvers.matching_pairs import same_evidence
from resolvers.store import Store
from tests.conftest import Api
from tests.identity.test_auto_merge import SETTINGS
from tests.identity.test_batched_pairs import BULK_UPDATE, cluster_sets, stored_pairs

CREATE = """mutation($i: ContactInput!) { createContact(input: $i) { id } }"""
UPDATE = """mutation($id: ID!, $i: ContactInput!) {
  updateContact(id: $id, input: $i) { id title mergeSet { size history { by } } } }"""
# what refreshing a contact's pairs reads and writes (resolvers/matching.py)
UPSERT = """mutation($m: [IdentifierInput!]!, $i: ContactInput!) {
  upsertContact(match: $m, input: $i) { created contact { id } } }"""
REFRESH = {"find:identifiers", "delete:match_pairs", "aggregate:identifiers"}
KIM = {"firstName": "Kim", "lastName": "Park", "workPhone": "+18035550142"}


async def twins(api: Api) -> tuple[str, str]:
    """Two curated contacts with the same name and phone: one pair."""
    first = (await api.gql(CREATE, {"i": KIM}))["createContact"]["id"]
    second = await api.gql(CREATE, {"i": {**KIM, "workPhone": None, "cellPhone": KIM["workPhone"]}})
    return first, second["createContact"]["id"]


async def sent(api: Api, log: CommandLog, query: str, variables: dict[str, Any]) -> set[str]:
    log.clear()
    await api.gql(query, variables)
    return set(log.names())


@pytest.mark.parametrize(
    "edit",
    [
        {"title": "Dr"},
        {"surveyOptOut": True},
        KIM,  # the values it already has, as a CRM sync sends them
        {"firstName": "Kim", "title": "Ms"},
    ],
)
async def test_an_edit_that_leaves_the_evidence_keeps_the_pairs_unread(
    counted: tuple[Api, CommandLog], store: Store, edit: dict[str, Any]
) -> None:
    api, log = counted
    first, second = await twins(api)
    before = await stored_pairs(store)
    assert len(before) == 1
    commands = await sent(api, log, UPDATE, {"id": first, "i": edit})
    assert not commands & REFRESH, commands
    assert await stored_pairs(store) == before
    assert await cluster_sets(api) == [{first, second}]


async def test_an_edit_of_a_value_still_refreshes_the_pairs(
    counted: tuple[Api, CommandLog], store: Store
) -> None:
    api, log = counted
    first, _ = await twins(api)
    commands = await sent(api, log, UPDATE, {"id": first, "i": {"workPhone": "+18035550999"}})
    assert commands & REFRESH, commands
    assert await stored_pairs(store) == {}  # a similar name alone is below the pairs' floor


async def test_a_bulk_edit_refreshes_only_the_contacts_whose_evidence_changed(
    counted: tuple[Api, CommandLog], store: Store
) -> None:
    api, log = counted
    first, second = await twins(api)
    titles = [{"id": first, "input": {"title": "Dr"}}, {"id": second, "input": {"title": "Ms"}}]
    assert not (await sent(api, log, BULK_UPDATE, {"u": titles})) & REFRESH
    assert await cluster_sets(api) == [{first, second}]
    moved = [{"id": first, "input": {"title": "Mx"}}, {"id": second, "input": {"lastName": "Lee"}}]
    assert (await sent(api, log, BULK_UPDATE, {"u": moved})) & REFRESH
    assert len(await stored_pairs(store)) == 1  # same phone, conflicting names: still a pair


async def test_with_auto_merge_on_an_edit_of_the_title_still_merges_a_strong_pair(
    api: Api,
) -> None:
    """Pairs found while the org did not merge automatically merge with the next write once
    it does, evidence changed or not (as before this shortcut)."""
    first, second = await twins(api)
    await api.gql(SETTINGS, {"i": {"autoMerge": True, "autoMergeMinScore": 0.9}})
    data = (await api.gql(UPDATE, {"id": first, "i": {"title": "Dr"}}))["updateContact"]
    assert data["title"] == "Dr"
    assert data["mergeSet"] is None  # two curated contacts never merge by themselves
    assert {first, second} in await cluster_sets(api)


def match(*identifiers: tuple[str, str]) -> list[dict[str, str]]:
    return [{"type": kind, "value": value} for kind, value in identifiers]


async def test_an_upsert_sending_what_the_contact_has_keeps_the_pairs_unread(
    counted: tuple[Api, CommandLog], store: Store
) -> None:
    """The CRM sync case: the same record sent again, matched on a value the contact
    claims."""
    api, log = counted
    first, second = await twins(api)
    before = await stored_pairs(store)
    commands = await sent(api, log, UPSERT, {"m": match(("PHONE", KIM["workPhone"])), "i": KIM})
    # the upsert reads claims itself: the pairs' rewrite is what tells a refresh
    assert "delete:match_pairs" not in commands, commands
    assert await stored_pairs(store) == before
    assert await cluster_sets(api) == [{first, second}]


@pytest.mark.parametrize(
    ("identifiers", "edit"),
    [
        ([("PHONE", KIM["workPhone"])], {**KIM, "workEmail": "kim@example.com"}),  # a field
        ([("PHONE", KIM["workPhone"]), ("EMAIL", "kim@example.com")], KIM),  # a new claim
    ],
)
async def test_an_upsert_that_adds_evidence_refreshes_the_pairs(
    counted: tuple[Api, CommandLog], identifiers: list[tuple[str, str]], edit: dict[str, Any]
) -> None:
    api, log = counted
    await twins(api)
    data = {"m": match(*identifiers), "i": edit}
    assert "delete:match_pairs" in await sent(api, log, UPSERT, data)


def contact(**fields: Any) -> ContactDoc:
    base: dict[str, Any] = {
        "_id": "c1",
        "firstName": "Kim",
        "lastName": "Park",
        "workPhone": "+18035550142",
        "keys": ["PHONE:+18035550142"],
        "matchKeys": ["n:kim park"],
        "type": "IDENTIFIED",
        "expiresAt": now() + timedelta(days=30),
        "modifiedAt": now(),
    }
    return ContactDoc(**{**base, **fields})  # type: ignore[typeddict-item]


@pytest.mark.parametrize(
    ("after", "same"),
    [
        (contact(title="Dr", surveyOptOut=True), True),
        (contact(type="CURATED", expiresAt=None, modifiedAt=now() + timedelta(seconds=1)), True),
        (contact(firstName="Kym"), False),
        (contact(address={"line1": "1 Main St", "postalCode": "29201"}), False),
        # the same value in another field: the same keys, but a reason names the field
        (contact(workPhone=None, cellPhone="+18035550142"), False),
        (contact(keys=[]), False),
    ],
)
def test_which_edits_leave_the_evidence(after: ContactDoc, same: bool) -> None:
    assert same_evidence(contact(), after) is same
