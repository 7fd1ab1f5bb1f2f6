"""Cache identity (Journey.id, Identifier.id), the full PageInfo, and Contact.mergeHistory
(CONTRACT.md section 10)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from pymongo import AsyncMongoClient

from bench.command_log import CommandLog
from resolvers.store import Doc, Store
from tests.conftest import Api
from tests.schema.test_merge_api import failpoint

CREATE = "mutation($i: ContactInput!) { createContact(input: $i) { id } }"
MERGE = "mutation($ids: [ID!]!) { mergeContacts(contactIds: $ids) { id } }"
UNMERGE = "mutation($id: ID!) { unmergeContacts(contactId: $id) { id } }"
HISTORY = """query($ids: [ID!]!) {
  contacts(ids: $ids) { id mergeHistory { kind inputIds canonicalId by at } }
}"""
EXACT_HISTORY = (
    "query($id: ID!) { mergeSet(contactId: $id) { contacts { id mergeHistory { kind } } } }"
)


async def create(api: Api, first: str, **fields: Any) -> str:
    data = await api.gql(CREATE, {"i": {"firstName": first, "lastName": "Case", **fields}})
    contact_id: str = data["createContact"]["id"]
    return contact_id


async def merge(api: Api, *ids: str) -> str:
    merged: str = (await api.gql(MERGE, {"ids": list(ids)}))["mergeContacts"]["id"]
    return merged


async def auto_contact(api: Api, phone: str) -> str:
    """An auto-created contact (recordInteraction): curated ones cannot be merged together."""
    data = await api.gql(
        """mutation($i: InteractionInput!) { recordInteraction(input: $i) { contact { id } } }""",
        {
            "i": {
                "conversationId": f"call-{phone}",
                "channel": "VOICE",
                "startedAt": datetime.now(UTC).isoformat(),
                "identifiers": [{"type": "PHONE", "value": phone}],
            }
        },
    )
    contact_id: str = data["recordInteraction"]["contact"]["id"]
    return contact_id


# --- cache identity ----------------------------------------------------------------------


async def test_journey_and_identifier_ids_are_stable_cache_keys(api: Api) -> None:
    ada = await create(api, "Ada", cellPhone="+1 803-555-0142")
    other = await auto_contact(api, "+18035550199")
    query = """query($id: ID!) {
      contact(id: $id) { identifiers { id type value } journey { id contact { id } } }
      identifier(type: PHONE, value: "+18035550142") { id }
    }"""
    data = await api.gql(query, {"id": ada})
    assert data["contact"]["identifiers"] == [
        {"id": "PHONE:+18035550142", "type": "PHONE", "value": "+18035550142"}
    ]
    assert data["identifier"] == {"id": "PHONE:+18035550142"}
    assert data["contact"]["journey"] == {"id": ada, "contact": {"id": ada}}
    # a merge set has one journey, whose id is its canonical contact's, from any member
    head = await merge(api, ada, other)
    merged = await api.gql(query, {"id": other})
    assert merged["contact"]["journey"] == {"id": head, "contact": {"id": head}}


async def test_page_info_has_previous_page_and_start_cursor(api: Api) -> None:
    for name in ("Ann", "Anna", "Annie"):
        await create(api, name)
    search = """query($after: String) {
      searchContacts(query: "ann", first: 2, after: $after) {
        edges { cursor }
        pageInfo { hasNextPage hasPreviousPage startCursor endCursor }
      }
    }"""
    first = (await api.gql(search, {}))["searchContacts"]
    cursors = [e["cursor"] for e in first["edges"]]
    assert first["pageInfo"] == {
        "hasNextPage": True,
        "hasPreviousPage": False,
        "startCursor": cursors[0],
        "endCursor": cursors[-1],
    }
    second = (await api.gql(search, {"after": cursors[-1]}))["searchContacts"]
    assert second["pageInfo"]["hasPreviousPage"] is True
    assert second["pageInfo"]["startCursor"] == second["edges"][0]["cursor"]
    assert second["pageInfo"]["hasNextPage"] is False


async def test_journey_pages_carry_the_full_page_info(api: Api) -> None:
    ada = await create(api, "Ada", cellPhone="+1 803-555-0142")
    started = datetime.now(UTC) - timedelta(hours=1)
    record = "mutation($i: InteractionInput!) { recordInteraction(input: $i) { created } }"
    for n in range(3):
        await api.gql(
            record,
            {
                "i": {
                    "conversationId": f"c{n}",
                    "channel": "VOICE",
                    "startedAt": (started + timedelta(minutes=n)).isoformat(),
                    "identifiers": [{"type": "PHONE", "value": "+18035550142"}],
                }
            },
        )
    query = """query($id: ID!, $after: String) {
      journey(contactId: $id) { conversations(first: 2, after: $after) {
        edges { cursor } pageInfo { hasPreviousPage startCursor endCursor hasNextPage }
      } }
    }"""
    page = (await api.gql(query, {"id": ada}))["journey"]["conversations"]
    assert page["pageInfo"]["hasPreviousPage"] is False
    assert page["pageInfo"]["startCursor"] == page["edges"][0]["cursor"]
    after = page["pageInfo"]["endCursor"]
    rest = (await api.gql(query, {"id": ada, "after": after}))["journey"]["conversations"]
    assert rest["pageInfo"]["hasPreviousPage"] is True
    assert rest["pageInfo"]["hasNextPage"] is False
    assert rest["pageInfo"]["startCursor"] == rest["edges"][0]["cursor"]


# --- merge history -----------------------------------------------------------------------


async def history(api: Api, *ids: str) -> dict[str, list[dict[str, Any]]]:
    data = await api.gql(HISTORY, {"ids": list(ids)})
    by_id: dict[str, list[dict[str, Any]]] = {}
    for asked, contact in zip(ids, data["contacts"], strict=True):
        events = contact["mergeHistory"]
        assert [e["at"] for e in events] == sorted(e["at"] for e in events)  # oldest first
        by_id[asked] = [
            {"kind": e["kind"], "inputIds": e["inputIds"], "canonicalId": e["canonicalId"]}
            for e in events
        ]
        assert all(e["by"] == "agent-1" for e in events)
    return by_id


async def test_merge_history_lists_every_merge_and_unmerge_also_after_a_full_undo(
    api: Api,
) -> None:
    a, b, c, d = [await auto_contact(api, f"+1803555010{n}") for n in range(4)]
    x = await merge(api, a, b)
    y = await merge(api, x, c)
    merge_x = {"kind": "MERGE", "inputIds": [a, b], "canonicalId": x}
    merge_y = {"kind": "MERGE", "inputIds": [x, c], "canonicalId": y}
    # contact(id) on an ancestor is its canonical: read each member exactly through its set
    members = (await api.gql(EXACT_HISTORY, {"id": a}))["mergeSet"]["contacts"]
    assert {m["id"]: [e["kind"] for e in m["mergeHistory"]] for m in members} == {
        a: ["MERGE", "MERGE"],
        b: ["MERGE", "MERGE"],
        x: ["MERGE", "MERGE"],
        c: ["MERGE"],
        y: ["MERGE"],
    }

    await api.gql(UNMERGE, {"id": y})
    unmerge_y = {"kind": "UNMERGE", "inputIds": [x, c], "canonicalId": y}
    await api.gql(UNMERGE, {"id": x})  # the set's first merge: the set document is gone
    unmerge_x = {"kind": "UNMERGE", "inputIds": [a, b], "canonicalId": x}
    found = await history(api, a, b, c, d)
    assert found == {
        a: [merge_x, merge_y, unmerge_y, unmerge_x],
        b: [merge_x, merge_y, unmerge_y, unmerge_x],
        c: [merge_y, unmerge_y],
        d: [],
    }
    # a new merge of the same contacts starts a new history on top of the old one
    z = await merge(api, a, d)
    again = await history(api, a, d)
    assert again[a][-1] == {"kind": "MERGE", "inputIds": [a, d], "canonicalId": z}
    assert again[d] == [{"kind": "MERGE", "inputIds": [a, d], "canonicalId": z}]


async def test_merge_history_is_one_indexed_read_per_batch(
    counted: tuple[Api, CommandLog], store: Store
) -> None:
    api, log = counted
    ids = [await auto_contact(api, f"+1803555020{n}") for n in range(6)]
    await merge(api, ids[0], ids[1])
    await merge(api, ids[2], ids[3])
    log.clear()
    await history(api, *ids)
    reads = [e for e in log.events if e.command.get(e.command_name) == "merge_events"]
    assert [e.command_name for e in reads] == ["find"]
    command = reads[0].command
    explained = await store.db.command(
        {"explain": {"find": "merge_events", "filter": command["filter"]}},
        verbosity="executionStats",
    )
    plan = str(explained["queryPlanner"]["winningPlan"])
    assert "IXSCAN" in plan and "COLLSCAN" not in plan, plan
    assert "org_contacts" in plan, plan
    assert explained["executionStats"]["totalDocsExamined"] == 2


async def test_deleting_a_contact_keeps_the_others_history(api: Api, store: Store) -> None:
    a, b = [await auto_contact(api, f"+1803555030{n}") for n in range(2)]
    x = await merge(api, a, b)
    await api.gql(UNMERGE, {"id": x})
    await api.gql("mutation($id: ID!) { deleteContact(id: $id) }", {"id": b})
    found = await history(api, a)
    assert found[a] == [
        {"kind": "MERGE", "inputIds": [a, b], "canonicalId": x},
        {"kind": "UNMERGE", "inputIds": [a, b], "canonicalId": x},
    ]
    assert await store.merge_events.count_documents({"contactIds": b}) == 0


async def test_a_merge_whose_event_cannot_be_written_leaves_no_trace(
    api: Api, store: Store, client: AsyncMongoClient[Doc]
) -> None:
    a, b = [await auto_contact(api, f"+1803555040{n}") for n in range(2)]
    collections = ("contacts", "identifiers", "merge_sets", "merge_events")

    async def state() -> dict[str, list[Doc]]:
        return {c: await store.db[c].find().sort("_id", 1).to_list() for c in collections}

    before = await state()
    # inserts of a merge: the new canonical, the merge set, then its merge_events entry
    async with failpoint(client, "insert", skip=2):
        response = await api.post(MERGE, {"ids": [a, b]})
    assert response.json()["data"] is None
    assert await state() == before
    x = await merge(api, a, b)  # and trying again works, with one event
    assert (await history(api, a))[a] == [{"kind": "MERGE", "inputIds": [a, b], "canonicalId": x}]
