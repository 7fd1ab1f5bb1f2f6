"""recordInteraction, linkConversation and unlinkConversation over HTTP: the seed scenarios."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

from resolvers.store import Store
from tests.conftest import Api, codes

RECORD = """
mutation Record($input: InteractionInput!) {
  recordInteraction(input: $input) {
    created
    contact { id type firstName lastName cellPhone personalEmail whatsAppId expiresAt
              identifiers { type value } }
    otherMatches { id firstName }
    conversation { id channel externalContactId identifiers { type value } durationSeconds }
  }
}
"""

CREATE = """
mutation Create($input: ContactInput!) { createContact(input: $input) { id } }
"""

T0 = datetime(2026, 11, 1, 9, 0, tzinfo=UTC)


def iso(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


async def create(api: Api, **fields: Any) -> str:
    data = await api.gql(CREATE, {"input": fields})
    contact_id: str = data["createContact"]["id"]
    return contact_id


async def record(api: Api, org: str = "acme", **fields: Any) -> dict[str, Any]:
    payload: dict[str, Any] = {"startedAt": iso(T0), **fields}
    data = await api.gql(RECORD, {"input": payload}, org=org)
    result: dict[str, Any] = data["recordInteraction"]
    return result


async def test_call_links_to_the_oldest_contact_and_suggests_the_others(api: Api) -> None:
    alexis = await create(api, firstName="Alexis", lastName="Smith", cellPhone="+1 803-123-0000")
    david = await create(api, firstName="David", lastName="Jones", workPhone="+1 803-123-0000")
    result = await record(
        api,
        conversationId="call-1",
        channel="VOICE",
        identifiers=[{"type": "PHONE", "value": "(803) 123-0000"}],
    )
    assert result["contact"]["id"] == alexis
    assert result["created"] is False
    assert [m["id"] for m in result["otherMatches"]] == [david]
    assert result["conversation"]["externalContactId"] == alexis
    assert result["conversation"]["identifiers"] == [{"type": "PHONE", "value": "+18031230000"}]


async def test_cookie_only_visit_creates_an_ephemeral_contact_renewed_next_week(
    api: Api, store: Store
) -> None:
    cookie = [{"type": "COOKIE", "value": "gc-cookie-42"}]
    first = await record(api, conversationId="web-1", channel="WEB_MESSAGING", identifiers=cookie)
    contact = first["contact"]
    assert first["created"] is True
    assert contact["type"] == "EPHEMERAL"
    assert contact["firstName"] is None and contact["lastName"] is None
    assert contact["expiresAt"] == "2026-12-31T09:00:00.000Z"  # T0 + 60 days
    later = await record(
        api,
        conversationId="web-2",
        channel="WEB_MESSAGING",
        identifiers=cookie,
        startedAt=iso(T0 + timedelta(days=7)),
    )
    assert later["created"] is False
    assert later["contact"]["id"] == contact["id"]
    assert later["contact"]["expiresAt"] == "2027-01-07T09:00:00.000Z"
    claim = await store.identifiers.find_one({"key": "COOKIE:gc-cookie-42"})
    assert claim is not None and claim["expiresAt"] == datetime(2027, 1, 7, 9, tzinfo=UTC)


async def test_form_fill_links_to_curated_contact_and_stitches_the_cookie(api: Api) -> None:
    curated = await create(api, firstName="Alexis", lastName="Smith", cellPhone="+18031230000")
    result = await record(
        api,
        conversationId="web-form",
        channel="WEB_MESSAGING",
        identifiers=[{"type": "COOKIE", "value": "cookie-7"}],
        provided={
            "firstName": "Alexis",
            "lastName": "Smith",
            "cellPhone": "803 123 0000",
            "personalEmail": "Alexis@Example.com",
        },
    )
    assert result["contact"]["id"] == curated
    assert result["created"] is False
    values = {i["value"] for i in result["contact"]["identifiers"]}
    assert {"+18031230000", "cookie-7", "alexis@example.com"} <= values
    again = await record(
        api,
        conversationId="web-later",
        channel="WEB_MESSAGING",
        identifiers=[{"type": "COOKIE", "value": "cookie-7"}],
    )
    assert again["contact"]["id"] == curated
    assert again["created"] is False


async def test_email_from_unknown_address_creates_identified_contact(api: Api) -> None:
    result = await record(
        api,
        conversationId="mail-1",
        channel="EMAIL",
        identifiers=[{"type": "EMAIL", "value": " New.Person@Example.org "}],
    )
    assert result["created"] is True
    assert result["contact"]["type"] == "IDENTIFIED"
    assert result["contact"]["personalEmail"] == "new.person@example.org"
    assert result["contact"]["expiresAt"] is not None


async def test_whatsapp_number_is_not_looked_up_as_a_phone(api: Api) -> None:
    curated = await create(api, firstName="Ana", lastName="Lopez", cellPhone="+18031230000")
    result = await record(
        api,
        conversationId="wa-1",
        channel="WHATSAPP",
        identifiers=[{"type": "PHONE", "value": "+18031230000"}],
    )
    assert result["contact"]["id"] != curated
    assert result["created"] is True
    assert result["contact"]["type"] == "IDENTIFIED"
    assert result["contact"]["whatsAppId"] == "+18031230000"
    assert result["contact"]["cellPhone"] is None
    assert result["conversation"]["identifiers"] == [{"type": "WHATSAPP", "value": "+18031230000"}]


async def test_campaign_call_is_unlinked_with_suggestions_then_linked_by_hand(
    api: Api, store: Store
) -> None:
    curated = await create(api, firstName="Bo", lastName="Berg", homePhone="+18035550100")
    before = await store.contacts.count_documents({})
    result = await record(
        api,
        conversationId="camp-1",
        channel="CAMPAIGN",
        direction="OUTBOUND",
        identifiers=[{"type": "PHONE", "value": "+18035550100"}],
    )
    assert result["contact"] is None
    assert result["created"] is False
    assert result["conversation"]["externalContactId"] is None
    assert [m["id"] for m in result["otherMatches"]] == [curated]
    assert await store.contacts.count_documents({}) == before
    assert await store.identifiers.count_documents({"key": "PHONE:+18035550100"}) == 1
    linked = await api.gql(
        """mutation($c: ID!) { linkConversation(conversationId: "camp-1", contactId: $c) {
             id externalContactId contact { id } individual { id } } }""",
        {"c": curated},
    )
    assert linked["linkConversation"]["externalContactId"] == curated
    assert linked["linkConversation"]["contact"]["id"] == curated
    unlinked = await api.gql(
        'mutation { unlinkConversation(conversationId: "camp-1") { externalContactId contact { id } } }'
    )
    assert unlinked["unlinkConversation"] == {"externalContactId": None, "contact": None}


async def test_same_conversation_id_updates_and_keeps_its_link(api: Api, store: Store) -> None:
    first = await record(
        api,
        conversationId="c-1",
        channel="VOICE",
        identifiers=[{"type": "PHONE", "value": "+18035550111"}],
    )
    other = await create(api, firstName="X", lastName="Y")
    await api.gql(
        'mutation($c: ID!) { linkConversation(conversationId: "c-1", contactId: $c) { id } }',
        {"c": other},
    )
    again = await record(
        api,
        conversationId="c-1",
        channel="VOICE",
        identifiers=[{"type": "PHONE", "value": "+18035550111"}],
        endedAt=iso(T0 + timedelta(minutes=5)),
        wrapUpCode="resolved",
    )
    assert again["conversation"]["externalContactId"] == other
    assert again["conversation"]["durationSeconds"] == 300.0
    assert await store.conversations.count_documents({"cid": "c-1"}) == 1
    assert first["contact"]["id"] != other


async def test_concurrent_interactions_with_one_new_phone_make_one_contact(
    api: Api, store: Store
) -> None:
    async def one(n: int) -> dict[str, Any]:
        return await record(
            api,
            conversationId=f"race-{n}",
            channel="VOICE",
            identifiers=[{"type": "PHONE", "value": "+18039990000"}],
        )

    results = await asyncio.gather(*(one(n) for n in range(50)))
    contact_ids = {r["contact"]["id"] for r in results}
    assert len(contact_ids) == 1
    assert sum(r["created"] for r in results) == 1
    assert await store.contacts.count_documents({}) == 1
    (contact_id,) = contact_ids
    assert await store.conversations.count_documents({"externalContactId": contact_id}) == 50


async def test_unusable_identifiers_are_kept_but_never_claimed(api: Api, store: Store) -> None:
    result = await record(
        api,
        conversationId="anon",
        channel="VOICE",
        identifiers=[
            {"type": "PHONE", "value": "anonymous"},
            {"type": "EMAIL", "value": "not-an-email"},
        ],
    )
    assert result["conversation"]["identifiers"] == [
        {"type": "PHONE", "value": "anonymous"},
        {"type": "EMAIL", "value": "not-an-email"},
    ]
    assert result["contact"]["type"] == "EPHEMERAL"
    assert await store.identifiers.count_documents({}) == 0


async def test_bad_input_writes_nothing(api: Api, store: Store) -> None:
    cases: list[dict[str, Any]] = [
        {"startedAt": "yesterday"},
        {"startedAt": "2026-11-01T09:00:00"},
        {"endedAt": iso(T0 - timedelta(seconds=1))},
        {"identifiers": [{"type": "COOKIE", "value": f"c{i}"} for i in range(21)]},
        {"identifiers": [{"type": "COOKIE", "value": "x" * 1001}]},
        {"queue": "q" * 1001},
        {"provided": {"personalEmail": "nope"}},
        {"conversationId": ""},
    ]
    for case in cases:
        payload = {
            "conversationId": "bad",
            "channel": "VOICE",
            "startedAt": iso(T0),
            **case,
        }
        _, errors = await api.gql_error(RECORD, {"input": payload})
        assert codes(errors) == ["BAD_USER_INPUT"], (case, errors)
    for collection in (store.contacts, store.identifiers, store.conversations):
        assert await collection.count_documents({}) == 0


async def test_unknown_channel_or_identifier_type_is_a_validation_error(api: Api) -> None:
    for payload in (
        {"conversationId": "x", "channel": "PIGEON", "startedAt": iso(T0)},
        {
            "conversationId": "x",
            "channel": "VOICE",
            "startedAt": iso(T0),
            "identifiers": [{"type": "FAX", "value": "1"}],
        },
    ):
        response = await api.post(RECORD, {"input": payload})
        body = response.json()
        assert body["data"] is None
        assert codes(body["errors"]) == ["GRAPHQL_VALIDATION_FAILED"]


async def test_permissions_of_interaction_operations(api: Api, store: Store) -> None:
    payload = {"conversationId": "p-1", "channel": "VOICE", "startedAt": iso(T0)}
    _, errors = await api.gql_error(
        RECORD, {"input": payload}, permissions=["externalContacts:contact:*"]
    )
    assert codes(errors) == ["FORBIDDEN"]
    assert await store.conversations.count_documents({}) == 0
    await record(api, **payload)
    for mutation in (
        'mutation { unlinkConversation(conversationId: "p-1") { id } }',
        'mutation { linkConversation(conversationId: "p-1", contactId: "x") { id } }',
    ):
        _, errors = await api.gql_error(
            mutation, permissions=["externalContacts:conversation:ingest"]
        )
        assert codes(errors) == ["FORBIDDEN"]
    _, errors = await api.gql_error(
        '{ conversation(id: "p-1") { id } }', permissions=["externalContacts:contact:view"]
    )
    assert codes(errors) == ["FORBIDDEN"]


async def test_other_org_sees_nothing(api: Api) -> None:
    ours = await record(
        api,
        conversationId="org-a",
        channel="VOICE",
        identifiers=[{"type": "PHONE", "value": "+18031112222"}],
    )
    data = await api.gql('{ conversation(id: "org-a") { id } }', org="other")
    assert data == {"conversation": None}
    _, errors = await api.gql_error(
        'mutation { unlinkConversation(conversationId: "org-a") { id } }', org="other"
    )
    assert codes(errors) == ["NOT_FOUND"]
    theirs = await record(
        api,
        conversationId="org-a",
        channel="VOICE",
        identifiers=[{"type": "PHONE", "value": "+18031112222"}],
        org="other",
    )
    assert theirs["created"] is True
    assert theirs["contact"]["id"] != ours["contact"]["id"]
    mine = await api.gql('{ conversation(id: "org-a") { externalContactId } }')
    assert mine["conversation"]["externalContactId"] == ours["contact"]["id"]


async def test_expired_contacts_and_conversations_are_never_returned(
    api: Api, store: Store
) -> None:
    long_ago = datetime.now(UTC) - timedelta(days=61)
    old = await record(
        api,
        conversationId="old-visit",
        channel="WEB_MESSAGING",
        identifiers=[{"type": "COOKIE", "value": "old-cookie"}],
        startedAt=iso(long_ago),
    )
    assert old["created"] is True
    assert await store.contacts.count_documents({}) == 1  # still stored: the sweep is lazy
    data = await api.gql(
        'query($id: ID!) { contact(id: $id) { id } conversation(id: "old-visit") { id } }',
        {"id": old["contact"]["id"]},
    )
    assert data == {"contact": None, "conversation": None}
    fresh = await record(
        api,
        conversationId="new-visit",
        channel="WEB_MESSAGING",
        identifiers=[{"type": "COOKIE", "value": "old-cookie"}],
        startedAt=iso(datetime.now(UTC)),
    )
    assert fresh["created"] is True
    assert fresh["contact"]["id"] != old["contact"]["id"]
    claim = await store.identifiers.find_one({"key": "COOKIE:old-cookie"})
    assert claim is not None and claim["contactId"] == fresh["contact"]["id"]


async def test_ttl_indexes_remove_expired_documents(store: Store) -> None:
    for collection in (store.contacts, store.identifiers, store.conversations):
        info = await collection.index_information()
        ttl = [spec for spec in info.values() if "expireAfterSeconds" in spec]
        assert ttl and ttl[0]["key"] == [("expiresAt", 1)], collection.name


async def test_released_value_without_a_taker_goes_to_a_later_lister(
    api: Api, store: Store
) -> None:
    visitor = await record(
        api,
        conversationId="v-1",
        channel="VOICE",
        identifiers=[{"type": "PHONE", "value": "+18034440000"}],
    )
    curated = await create(api, firstName="Late", lastName="Lister", cellPhone="+18034440000")
    claim = await store.identifiers.find_one({"key": "PHONE:+18034440000"})
    assert claim is not None and claim["contactId"] == visitor["contact"]["id"]  # sticky
    await store.identifiers.update_many(
        {}, {"$set": {"expiresAt": datetime(2020, 1, 1, tzinfo=UTC)}}
    )
    await store.contacts.update_one(
        {"_id": visitor["contact"]["id"]},
        {"$set": {"expiresAt": datetime(2020, 1, 1, tzinfo=UTC)}},
    )
    again = await record(
        api,
        conversationId="v-2",
        channel="VOICE",
        identifiers=[{"type": "PHONE", "value": "+18034440000"}],
    )
    assert again["created"] is False
    assert again["contact"]["id"] == curated


async def test_interaction_claims_stay_when_fields_change(api: Api) -> None:
    curated = await create(api, firstName="Cy", lastName="Stone", cellPhone="+18036660000")
    await record(
        api,
        conversationId="s-1",
        channel="WEB_CHAT",
        identifiers=[
            {"type": "COOKIE", "value": "ck-1"},
            {"type": "PHONE", "value": "+18036660000"},
        ],
    )
    await api.gql(
        "mutation($id: ID!) { updateContact(id: $id, input: {cellPhone: null}) { id } }",
        {"id": curated},
    )
    data = await api.gql(
        '{ identifier(type: COOKIE, value: "ck-1") { contact { id } } '
        'phone: identifier(type: PHONE, value: "+18036660000") { contact { id } } }'
    )
    assert data["identifier"]["contact"]["id"] == curated
    assert data["phone"] is None
