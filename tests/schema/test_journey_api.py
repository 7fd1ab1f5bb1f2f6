"""journey, Contact.journey and the conversations BI pull over HTTP."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from resolvers.clock import now, to_db_precision
from resolvers.documents import ContactDoc
from resolvers.principal import Permission
from resolvers.store import Store
from schema.scalars import serialize_datetime
from tests.conftest import Api, codes
from tests.factories import (
    add_contact,
    add_merge_set,
    conversation_doc,
)

JOURNEY = """
query Journey($id: ID!, $first: Int, $after: String, $since: DateTime, $until: DateTime,
              $channels: [Channel!]) {
  journey(contactId: $id) {
    contact { id firstName readOnly }
    contactIds
    conversationCount
    firstSeenAt
    lastSeenAt
    channels
    conversations(first: $first, after: $after, since: $since, until: $until,
                  channels: $channels) {
      totalCount
      pageInfo { hasNextPage endCursor }
      edges { cursor node { id channel startedAt externalContactId
                            contact { id } individual { id } } }
    }
  }
}
"""

PULL = """
query Pull($first: Int, $after: String, $since: DateTime, $until: DateTime,
           $channels: [Channel!], $contactIds: [ID!]) {
  conversations(first: $first, after: $after, since: $since, until: $until,
                channels: $channels, contactIds: $contactIds) {
    totalCount
    pageInfo { hasNextPage endCursor }
    edges { node { id startedAt externalContactId individual { id } } }
  }
}
"""

RECORD = """
mutation Record($input: InteractionInput!) {
  recordInteraction(input: $input) { contact { id } conversation { id } }
}
"""


def iso(moment: datetime) -> str:
    return serialize_datetime(moment)


async def journey_set(store: Store) -> tuple[ContactDoc, list[ContactDoc], datetime]:
    """A 3-member merge set with five conversations over its members, one a day."""
    canonical, members = await add_merge_set(store, size=3)
    t0 = to_db_precision(now() - timedelta(days=10))
    channels = ["VOICE", "EMAIL", "SMS", "VOICE", "WHATSAPP"]
    await store.conversations.insert_many(
        [
            conversation_doc(
                store, f"j{n}", t0 + timedelta(days=n), members[n % 3]["_id"], channel=channels[n]
            )
            for n in range(5)
        ]
    )
    return canonical, members, t0


async def test_the_journey_of_an_ancestor_is_its_merge_sets_newest_first(
    api: Api, store: Store
) -> None:
    canonical, members, t0 = await journey_set(store)
    data = await api.gql(JOURNEY, {"id": members[0]["_id"], "first": 2})
    journey = data["journey"]
    assert journey["contact"] == {"id": canonical["_id"], "firstName": "Head", "readOnly": False}
    assert journey["contactIds"] == [m["_id"] for m in members]
    assert journey["conversationCount"] == 5
    assert journey["firstSeenAt"] == iso(t0)
    assert journey["lastSeenAt"] == iso(t0 + timedelta(days=4))
    assert journey["channels"] == ["VOICE", "SMS", "EMAIL", "WHATSAPP"]
    page = journey["conversations"]
    assert page["totalCount"] == 5
    assert page["pageInfo"]["hasNextPage"] is True
    nodes = [e["node"] for e in page["edges"]]
    assert [n["id"] for n in nodes] == ["j4", "j3"]
    assert nodes[0]["externalContactId"] == members[1]["_id"]
    assert nodes[0]["contact"] == {"id": members[1]["_id"]}  # exactly the linked ancestor
    assert nodes[0]["individual"] == {"id": canonical["_id"]}  # its canonical
    assert page["pageInfo"]["endCursor"] == page["edges"][-1]["cursor"]

    rest = await api.gql(
        JOURNEY, {"id": canonical["_id"], "first": 50, "after": page["pageInfo"]["endCursor"]}
    )
    later = rest["journey"]["conversations"]
    assert [e["node"]["id"] for e in later["edges"]] == ["j2", "j1", "j0"]
    assert later["pageInfo"] == {"hasNextPage": False, "endCursor": later["edges"][-1]["cursor"]}


async def test_journey_filters_by_time_and_channel(api: Api, store: Store) -> None:
    canonical, _, t0 = await journey_set(store)
    data = await api.gql(
        JOURNEY,
        {
            "id": canonical["_id"],
            "since": iso(t0 + timedelta(days=1)),
            "until": iso(t0 + timedelta(days=4)),
            "channels": ["SMS", "EMAIL"],
        },
    )
    page = data["journey"]["conversations"]
    assert [e["node"]["id"] for e in page["edges"]] == ["j2", "j1"]
    assert page["totalCount"] == 2


async def test_contact_journey_and_a_never_merged_contact(api: Api, store: Store) -> None:
    loner = await add_contact(store, firstName="Solo")
    await store.conversations.insert_one(conversation_doc(store, "s1", now(), loner["_id"]))
    query = """
    query($id: ID!) { contact(id: $id) { id journey { contactIds conversationCount
      conversations { edges { node { id } } } } } }
    """
    data = await api.gql(query, {"id": loner["_id"]})
    assert data["contact"]["journey"] == {
        "contactIds": [loner["_id"]],
        "conversationCount": 1,
        "conversations": {"edges": [{"node": {"id": "s1"}}]},
    }


async def test_a_journey_of_an_unknown_or_foreign_id_is_null(api: Api, store: Store) -> None:
    foreign = await add_contact(store, "other-org")
    for contact_id in ("no-such-contact", foreign["_id"], "x" * 5000):
        data = await api.gql(
            "query($id: ID!) { journey(contactId: $id) { contactIds } }", {"id": contact_id}
        )
        assert data == {"journey": None}


async def test_journeys_need_session_view(api: Api, store: Store) -> None:
    canonical, _, _ = await journey_set(store)
    others = [str(p) for p in Permission if p != Permission.SESSION_VIEW]
    data, errors = await api.gql_error(
        "query($id: ID!) { journey(contactId: $id) { contactIds } }",
        {"id": canonical["_id"]},
        permissions=others,
    )
    assert data == {"journey": None} and codes(errors) == ["FORBIDDEN"]
    data, errors = await api.gql_error(
        "query($id: ID!) { contact(id: $id) { id journey { contactIds } } }",
        {"id": canonical["_id"]},
        permissions=others,
    )
    assert data == {"contact": {"id": canonical["_id"], "journey": None}}
    assert codes(errors) == ["FORBIDDEN"]


async def test_the_bi_pull_expands_contact_ids_and_groups_by_individual(
    api: Api, store: Store
) -> None:
    canonical, members, _ = await journey_set(store)
    other = await add_contact(store)
    await store.conversations.insert_one(conversation_doc(store, "other", now(), other["_id"]))
    await store.conversations.insert_one(conversation_doc(store, "unlinked", now()))
    data = await api.gql(PULL, {"contactIds": [members[2]["_id"], "no-such-contact"]})
    page = data["conversations"]
    assert [e["node"]["id"] for e in page["edges"]] == ["j4", "j3", "j2", "j1", "j0"]
    assert {e["node"]["individual"]["id"] for e in page["edges"]} == {canonical["_id"]}
    assert page["totalCount"] == 5

    everything = await api.gql(PULL, {})
    nodes = [e["node"] for e in everything["conversations"]["edges"]]
    assert [n["id"] for n in nodes[:2]] == ["unlinked", "other"]  # newest first
    assert len(nodes) == 7
    unlinked = next(n for n in nodes if n["id"] == "unlinked")
    assert unlinked["externalContactId"] is None and unlinked["individual"] is None
    assert (await api.gql(PULL, {"contactIds": []}))["conversations"]["edges"] == []


async def test_the_bi_pull_pages_stay_stable_while_interactions_arrive(
    api: Api, store: Store
) -> None:
    t0 = datetime.now(UTC) - timedelta(hours=6)
    for n in range(5):
        await api.gql(
            RECORD,
            {
                "input": {
                    "conversationId": f"call-{n}",
                    "channel": "VOICE",
                    "startedAt": iso(t0 + timedelta(minutes=n)),
                    "identifiers": [{"type": "PHONE", "value": "+1 803 555 0100"}],
                }
            },
        )
    first = (await api.gql(PULL, {"first": 2}))["conversations"]
    assert [e["node"]["id"] for e in first["edges"]] == ["call-4", "call-3"]
    await api.gql(
        RECORD,
        {
            "input": {
                "conversationId": "call-new",
                "channel": "VOICE",
                "startedAt": iso(datetime.now(UTC)),
                "identifiers": [{"type": "PHONE", "value": "+1 803 555 0100"}],
            }
        },
    )
    second = (await api.gql(PULL, {"first": 2, "after": first["pageInfo"]["endCursor"]}))[
        "conversations"
    ]
    assert [e["node"]["id"] for e in second["edges"]] == ["call-2", "call-1"]
    third = (await api.gql(PULL, {"first": 2, "after": second["pageInfo"]["endCursor"]}))[
        "conversations"
    ]
    assert [e["node"]["id"] for e in third["edges"]] == ["call-0"]
    assert third["pageInfo"]["hasNextPage"] is False
    assert third["totalCount"] == 6


async def test_the_bi_pull_needs_view_all(api: Api, store: Store) -> None:
    others = [str(p) for p in Permission if p != Permission.CONVERSATION_VIEW_ALL]
    data, errors = await api.gql_error(PULL, {}, permissions=others)
    assert data is None and codes(errors) == ["FORBIDDEN"]


async def test_the_bi_pull_is_org_scoped(api: Api, store: Store) -> None:
    await store.conversations.insert_one(conversation_doc(store, "theirs", now(), org="other-org"))
    await store.conversations.insert_one(conversation_doc(store, "ours", now()))
    data = await api.gql(PULL, {})
    assert [e["node"]["id"] for e in data["conversations"]["edges"]] == ["ours"]


@pytest.mark.parametrize(
    ("query", "variables"),
    [
        (PULL, {"first": 0}),
        (PULL, {"first": 1001}),
        (PULL, {"after": "bm90LWEtY3Vyc29y"}),
        (PULL, {"after": "!!"}),
        (PULL, {"since": "2026-11-02T00:00:00Z", "until": "2026-11-01T00:00:00Z"}),
        (PULL, {"contactIds": ["x"] * 101}),
        (JOURNEY, {"id": "any", "first": 1001}),
    ],
)
async def test_bad_input_is_bad_user_input(
    api: Api, store: Store, query: str, variables: dict[str, Any]
) -> None:
    canonical, _, _ = await journey_set(store)
    if "id" in variables:
        variables = {**variables, "id": canonical["_id"]}
    _, errors = await api.gql_error(query, variables)
    assert codes(errors) == ["BAD_USER_INPUT"]


async def test_a_journey_cursor_is_not_a_bi_cursor(api: Api, store: Store) -> None:
    canonical, _, _ = await journey_set(store)
    journey = await api.gql(JOURNEY, {"id": canonical["_id"], "first": 1})
    cursor = journey["journey"]["conversations"]["pageInfo"]["endCursor"]
    _, errors = await api.gql_error(PULL, {"after": cursor})
    assert codes(errors) == ["BAD_USER_INPUT"]


async def test_extreme_time_bounds_answer_empty_pages_not_errors(api: Api) -> None:
    for bounds in (
        'until: "0001-01-01T00:00:00Z"',
        'until: "0001-01-02T00:00:00Z", first: 5',
        'since: "9999-12-31T00:00:00Z"',
    ):
        data = await api.gql("{ conversations(" + bounds + ") { edges { node { id } } } }")
        assert data == {"conversations": {"edges": []}}
