"""eraseContact and erasureReceipts through the API (CONTRACT section 9)."""

from __future__ import annotations

import json
from typing import Any

from gateway.auth import ALL_PERMISSIONS
from resolvers.changes import ChangeKind, record_change
from resolvers.invariants import find_violations
from resolvers.store import Store
from tests.conftest import Api, codes
from tests.people import CREATE, NOTE, Person, bystander, record, seed_person

ERASE = """mutation($id: ID!, $reason: String, $suppress: Boolean) {
  eraseContact(id: $id, reason: $reason, suppress: $suppress) {
    id at by reason contactIds conversations webEvents notes identifiers suppressed
  }
}"""
RECEIPTS = """query($first: Int, $after: String) {
  erasureReceipts(first: $first, after: $after) {
    totalCount edges { cursor node { id contactIds reason } }
    pageInfo { hasNextPage endCursor }
  }
}"""
COLLECTIONS = ("contacts", "identifiers", "conversations", "merge_sets", "notes", "merge_events")


async def everything(store: Store) -> dict[str, list[Any]]:
    return {
        name: await store.db[name].find({}, {"claimSeq": 0}).sort("_id", 1).to_list()
        for name in COLLECTIONS
    }


async def test_erasing_through_an_ancestor_removes_the_whole_person(api: Api, store: Store) -> None:
    person = await seed_person(api)
    other_id, other_values = await bystander(api)
    ancestor = person.contact_ids[1]  # the auto-created contact of the first call
    data = await api.gql(ERASE, {"id": ancestor, "reason": "GDPR art. 17 request #42"}, sub="dpo-7")
    receipt = data["eraseContact"]
    assert sorted(receipt["contactIds"]) == sorted(person.contact_ids)
    assert receipt["by"] == "dpo-7"
    assert receipt["reason"] == "GDPR art. 17 request #42"
    # VOICE, WEB_CHAT, SMS, WHATSAPP were linked; the CALLBACK was not
    assert receipt["conversations"] == 4
    assert receipt["notes"] == 2
    # phone, email, external id, phone2, cookie, email2, whatsapp
    assert receipt["identifiers"] == 7
    assert (receipt["webEvents"], receipt["suppressed"]) == (0, 0)

    members = {"_id": {"$in": person.contact_ids}}
    assert await store.contacts.count_documents(members) == 0
    assert await store.identifiers.count_documents({"contactId": {"$in": person.contact_ids}}) == 0
    assert await store.notes.count_documents({}) == 0
    assert await store.merge_sets.count_documents({}) == 0
    assert await store.merge_events.count_documents({}) == 0
    remaining = await store.conversations.find({}).to_list()
    # the bystander's call, and the unlinked callback without the person's phone
    assert sorted(c["channel"] for c in remaining) == ["CALLBACK", "VOICE"]
    callback = next(c for c in remaining if c["channel"] == "CALLBACK")
    assert callback["identifiers"] == []
    # the bystander is untouched
    kept = await api.gql("query($id: ID!) { contact(id: $id) { id } }", {"id": other_id})
    assert kept["contact"] == {"id": other_id}
    assert await find_violations(store) == []
    assert other_values


async def two_listing(api: Api, phone: str) -> tuple[str, str]:
    """Two curated contacts listing one phone (the first claims it): their ids."""
    ids = []
    for first, field in (("Old", "workPhone"), ("New", "homePhone")):
        data = await api.gql(CREATE, {"i": {"firstName": first, "lastName": "Two", field: phone}})
        ids.append(data["createContact"]["id"])
    return ids[0], ids[1]


async def test_a_value_another_contact_lists_is_claimed_by_it(api: Api, store: Store) -> None:
    shared = "+18035550199"
    old_id, new_id = await two_listing(api, shared)
    claim = await store.identifiers.find_one({"value": shared})
    assert claim is not None and claim["contactId"] == old_id
    await api.gql(ERASE, {"id": old_id})
    claim = await store.identifiers.find_one({"value": shared})
    assert claim is not None and claim["contactId"] == new_id
    # a value someone else holds now is not scrubbed from that person's conversations
    cid, resolved = await record(api, Person(), "VOICE", [("PHONE", shared)])
    assert resolved == new_id
    assert await store.conversations.count_documents({"cid": cid}) == 1


async def test_unknown_and_foreign_ids_are_not_found(api: Api, store: Store) -> None:
    person = await seed_person(api)
    before = await everything(store)
    for contact_id, org in (("nope", "acme"), (person.canonical_id, "other")):
        data, errors = await api.gql_error(ERASE, {"id": contact_id}, org=org)
        assert data is None
        assert codes(errors) == ["NOT_FOUND"]
    assert await everything(store) == before
    assert await store.erasure_receipts.count_documents({}) == 0


async def test_a_reason_over_1000_characters_is_bad_input_and_erases_nothing(
    api: Api, store: Store
) -> None:
    person = await seed_person(api)
    before = await everything(store)
    _, errors = await api.gql_error(ERASE, {"id": person.canonical_id, "reason": "x" * 1001})
    assert codes(errors) == ["BAD_USER_INPUT"]
    assert await everything(store) == before
    data = await api.gql(ERASE, {"id": person.canonical_id, "reason": "y" * 1000})
    assert len(data["eraseContact"]["reason"]) == 1000


async def test_erasing_twice_is_not_found_the_second_time(api: Api) -> None:
    data = await api.gql(CREATE, {"i": {"firstName": "Once", "lastName": "Only"}})
    contact_id = data["createContact"]["id"]
    await api.gql(NOTE, {"id": contact_id, "t": "hello"})
    await api.gql(ERASE, {"id": contact_id})
    _, errors = await api.gql_error(ERASE, {"id": contact_id})
    assert codes(errors) == ["NOT_FOUND"]


async def test_receipts_page_newest_first_per_org(api: Api) -> None:
    erased: list[str] = []
    for n in range(5):
        data = await api.gql(CREATE, {"i": {"firstName": f"R{n}", "lastName": "Gone"}})
        contact_id = data["createContact"]["id"]
        await api.gql(ERASE, {"id": contact_id, "reason": f"request {n}"})
        erased.append(contact_id)
    other = await api.gql(CREATE, {"i": {"firstName": "O", "lastName": "Org"}}, org="other")
    await api.gql(ERASE, {"id": other["createContact"]["id"]}, org="other")

    seen: list[str] = []
    after = None
    while True:
        page = (await api.gql(RECEIPTS, {"first": 2, "after": after}))["erasureReceipts"]
        assert page["totalCount"] == 5
        seen += [e["node"]["contactIds"][0] for e in page["edges"]]
        if not page["pageInfo"]["hasNextPage"]:
            break
        after = page["pageInfo"]["endCursor"]
    assert seen == erased[::-1]
    for first in (0, 101):
        _, errors = await api.gql_error(RECEIPTS, {"first": first})
        assert codes(errors) == ["BAD_USER_INPUT"]
    _, errors = await api.gql_error(RECEIPTS, {"after": "bogus"})
    assert codes(errors) == ["BAD_USER_INPUT"]


async def test_erasure_needs_its_own_permission(api: Api, store: Store) -> None:
    data = await api.gql(CREATE, {"i": {"firstName": "Kept", "lastName": "Safe"}})
    contact_id = data["createContact"]["id"]
    others = [p for p in ALL_PERMISSIONS if p != "externalContacts:contact:erase"]
    _, errors = await api.gql_error(ERASE, {"id": contact_id}, permissions=others)
    assert codes(errors) == ["FORBIDDEN"]
    assert await store.contacts.count_documents({"_id": contact_id}) == 1
    data = await api.gql(ERASE, {"id": contact_id}, permissions=["externalContacts:*:*"])
    assert data["eraseContact"]["contactIds"] == [contact_id]


IDENTIFIER = """query($t: IdentifierType!, $v: String!) {
  identifier(type: $t, value: $v) { contact { id } } }"""


async def test_suppress_blocks_the_erased_values_for_good(api: Api, store: Store) -> None:
    person = await seed_person(api)
    data = await api.gql(ERASE, {"id": person.canonical_id, "suppress": True})
    assert data["eraseContact"]["suppressed"] == 7
    assert data["eraseContact"]["identifiers"] == 7
    phone = next(v for t, v in person.identifiers if t == "PHONE")
    email = next(v for t, v in person.identifiers if t == "EMAIL")
    # the values never resolve or get claimed again: a call from the phone creates a contact
    # without it, a new contact listing the email does not claim it
    _, resolved = await record(api, Person(), "VOICE", [("PHONE", phone)])
    assert resolved is not None
    created = await api.gql(
        CREATE, {"i": {"firstName": "New", "lastName": "Comer", "workEmail": email}}
    )
    assert created["createContact"]["id"]
    for kind, value in person.identifiers:
        found = await api.gql(IDENTIFIER, {"t": kind, "v": value})
        assert found == {"identifier": None}, (kind, value)
    assert await store.identifiers.count_documents({"value": {"$in": [phone, email]}}) == 0


async def test_without_suppress_the_values_can_come_back(api: Api) -> None:
    person = await seed_person(api)
    data = await api.gql(ERASE, {"id": person.canonical_id})
    assert data["eraseContact"]["suppressed"] == 0
    phone = next(v for t, v in person.identifiers if t == "PHONE")
    _, resolved = await record(api, Person(), "VOICE", [("PHONE", phone)])
    found = await api.gql(IDENTIFIER, {"t": "PHONE", "v": phone})
    assert found == {"identifier": {"contact": {"id": resolved}}}


async def test_suppressing_a_value_another_contact_lists_leaves_it_unclaimed(
    api: Api, store: Store
) -> None:
    shared = "+18035550198"
    first_id, _ = await two_listing(api, shared)
    data = await api.gql(ERASE, {"id": first_id, "suppress": True})
    assert data["eraseContact"]["suppressed"] == 1
    assert await store.identifiers.count_documents({"value": shared}) == 0


TOTAL = "{ conversations(first: 1) { totalCount } }"
MERGE = "mutation($ids: [ID!]!) { mergeContacts(contactIds: $ids) { id } }"
UNMERGE = "mutation($id: ID!) { unmergeContacts(contactId: $id) { id } }"
HISTORY = """query($id: ID!) { contact(id: $id) {
  mergeHistory { kind inputIds canonicalId } } }"""


async def test_the_org_wide_total_loses_the_erased_conversations(api: Api) -> None:
    """totalCount of a whole-org pull comes from the hourly and daily count buckets: the
    erasure takes its conversations out of them."""
    person = await seed_person(api)
    await bystander(api)
    before = (await api.gql(TOTAL))["conversations"]["totalCount"]
    assert before == 6  # the person's 4 linked, the callback, the bystander's call
    await api.gql(ERASE, {"id": person.canonical_id})
    assert (await api.gql(TOTAL))["conversations"]["totalCount"] == before - 4


async def test_history_other_contacts_keep_loses_the_erased_ids(api: Api, store: Store) -> None:
    """a and x merged, then unmerged: both keep the two events, which name both. Erasing a
    leaves x its history, without a's id anywhere."""
    a, x = await _auto(api, "+18035550301"), await _auto(api, "+18035550302")
    head = (await api.gql(MERGE, {"ids": [a, x]}))["mergeContacts"]["id"]
    await api.gql(UNMERGE, {"id": head})
    await api.gql(ERASE, {"id": a})
    history = (await api.gql(HISTORY, {"id": x}))["contact"]["mergeHistory"]
    assert history == [
        {"kind": "MERGE", "inputIds": [x], "canonicalId": head},
        {"kind": "UNMERGE", "inputIds": [x], "canonicalId": head},
    ]
    for event in await store.merge_events.find({}).to_list():
        assert a not in event["contactIds"] and a not in event["inputIds"]


async def _auto(api: Api, phone: str) -> str:
    _, contact_id = await record(api, Person(), "VOICE", [("PHONE", phone)])
    assert contact_id is not None
    return contact_id


CHANGES = """{ changes(first: 500) { edges { node {
  id kind contactId contactIds conversationId identifier { type value } } } } }"""
LINK = """mutation($c: ID!, $id: ID!) {
  linkConversation(conversationId: $c, contactId: $id) { id } }"""


async def test_retained_changes_lose_the_erased_values_and_record_the_erasure(
    api: Api, store: Store
) -> None:
    person = await seed_person(api)
    other_id, other_values = await bystander(api)
    phone = next(v for t, v in person.identifiers if t == "PHONE")
    other_phone = next(v for v in other_values if v.startswith("+"))

    async def claims_recorded(session: Any) -> None:  # as a claim's change would name them
        for contact_id, key in (
            (person.canonical_id, f"PHONE:{phone}"),
            (person.contact_ids[0], f"PHONE:{phone}"),
            (other_id, f"PHONE:{other_phone}"),
        ):
            await record_change(
                store,
                session,
                org="acme",
                kind=ChangeKind.IDENTIFIER_CLAIMED,
                by="agent-1",
                contact_id=contact_id,
                identifier=key,
            )

    await store.in_transaction(claims_recorded)
    sms = next(i for i in person.ids if i.startswith("conv-sms"))
    await api.gql(LINK, {"c": sms, "id": person.contact_ids[1]})  # a CONVERSATION_LINKED
    before = (await api.gql(CHANGES))["changes"]["edges"]
    assert any(e["node"]["conversationId"] == sms for e in before)

    receipt = (await api.gql(ERASE, {"id": person.canonical_id}))["eraseContact"]
    after = [e["node"] for e in (await api.gql(CHANGES))["changes"]["edges"]]
    text = json.dumps(after)
    assert [s for s in sorted(person.secrets) if s in text] == []
    assert len(after) == len(before) + 1
    erased = after[-1]
    assert erased["kind"] == "CONTACT_ERASED"
    assert erased["contactId"] == person.canonical_id
    assert sorted(erased["contactIds"]) == sorted(receipt["contactIds"])
    assert (erased["conversationId"], erased["identifier"]) == (None, None)
    # every value a change about the person names is a pseudonym (the feed's own claims of
    # their ingests too), and one value is one pseudonym wherever it appears
    hidden = [
        c["identifier"]["value"]
        for c in after
        if c["identifier"] and c["contactId"] in person.contact_ids
    ]
    assert len(hidden) >= 2
    assert all(v.startswith("hmac-sha256:") and len(v) == len("hmac-sha256:") + 64 for v in hidden)
    now_of = {c["id"]: c for c in after}
    of_phone = {
        now_of[e["node"]["id"]]["identifier"]["value"]
        for e in before
        if e["node"]["identifier"] and e["node"]["identifier"]["value"] == phone
    }
    assert len(of_phone) == 1 and of_phone <= set(hidden)
    kept = [
        c["identifier"]["value"] for c in after if c["contactId"] == other_id and c["identifier"]
    ]
    assert other_phone in kept  # the bystander's value stays
    linked = [c for c in after if c["kind"] == "CONVERSATION_LINKED"]
    assert linked and all(c["conversationId"].startswith("hmac-sha256:") for c in linked)


SUGGESTIONS = """query($id: ID!) { contact(id: $id) {
  matchSuggestions(minScore: 0.5) { contact { id } reasons { value } } } }"""


async def test_the_duplicate_pairs_of_an_erased_person_go(api: Api, store: Store) -> None:
    """Two contacts sharing a phone are a stored pair (duplicateClusters reads them); erasing
    one leaves no pair naming it, and the other gets no suggestion of it."""
    shared = "+18035550177"
    gone_id, kept_id = await two_listing(api, shared)
    pairs = store.db["match_pairs"]
    assert await pairs.count_documents({"ids": gone_id}) == 1
    await api.gql(ERASE, {"id": gone_id})
    assert await pairs.count_documents({"ids": gone_id}) == 0
    found = await api.gql(SUGGESTIONS, {"id": kept_id})
    assert found == {"contact": {"matchSuggestions": []}}


async def test_kept_history_loses_the_evidence_of_an_automatic_merge(
    api: Api, store: Store
) -> None:
    """Two callers sharing a phone merged as probable duplicates (the event quotes the
    phone), then unmerged: erasing one leaves the other's history without the reasons."""
    shared, email = "+18035550166", "kim.twin@example.com"
    _, a_id = await record(
        api,
        Person(),
        "VOICE",
        [("PHONE", shared), ("EMAIL", email)],
        provided={"firstName": "Kim", "lastName": "Twin"},
    )
    b = await api.gql(
        CREATE,
        {"i": {"firstName": "Kim", "lastName": "Twin", "workPhone": shared, "workEmail": email}},
    )
    b_id = b["createContact"]["id"]
    merged = await api.gql("mutation { mergeDuplicateClusters(minScore: 0.9, first: 1) { id } }")
    assert len(merged["mergeDuplicateClusters"]) == 1
    events = await store.merge_events.find({}).to_list()
    assert events and any(r.get("value") == shared for e in events for r in e.get("reasons", []))
    assert a_id is not None
    await api.gql(UNMERGE, {"id": a_id})
    await api.gql(ERASE, {"id": a_id})
    for event in await store.merge_events.find({}).to_list():
        assert a_id not in event["contactIds"] and event.get("reasons", []) == []
    history = (await api.gql(HISTORY, {"id": b_id}))["contact"]["mergeHistory"]
    assert [e["kind"] for e in history] == ["MERGE", "UNMERGE"]


WEB = """mutation($e: [WebEventInput!]!) { recordWebEvents(events: $e) { accepted } }"""


async def test_the_web_visits_of_the_persons_cookies_go(api: Api, store: Store) -> None:
    person = await seed_person(api)
    cookie = next(v for t, v in person.identifiers if t == "COOKIE")
    other_cookie = "ck-bystander-web"
    events = [
        {"cookie": c, "type": "PAGE_VIEW", "at": f"2026-12-01T10:0{n}:00Z", "url": f"/p{n}"}
        for c in (cookie, other_cookie)
        for n in range(3)
    ]
    assert (await api.gql(WEB, {"e": events}))["recordWebEvents"]["accepted"] == 6
    assert await store.web_sessions.count_documents({"cookie": cookie}) == 1
    receipt = (await api.gql(ERASE, {"id": person.canonical_id}))["eraseContact"]
    assert receipt["webEvents"] == 3
    assert await store.web_events.count_documents({"cookie": cookie}) == 0
    assert await store.web_sessions.count_documents({"cookie": cookie}) == 0
    assert await store.web_events.count_documents({"cookie": other_cookie}) == 3
