"""Database commands per GraphQL query: constant per nesting level, whatever the page size.

A PyMongo ``CommandListener`` on the gateway's own client counts every command a query sends.
The counts are printed (``pytest -s``) and carried in the assertion messages.

An org-wide page is two commands here — the hour count buckets that size its first time
window, and that window — because every conversation of these tests started in the last
half hour, inside that window (resolvers/journeys.py reads older history in further windows;
tests/resolvers/test_journeys.py and test_page_shapes.py cover those).
"""

from __future__ import annotations

from datetime import timedelta

from bench.command_log import BI_BUDGET, BI_QUERY, JOURNEY_BUDGET, JOURNEY_QUERY, CommandLog
from resolvers import claims
from resolvers.clock import now
from resolvers.contact_fields import ContactType
from resolvers.documents import ContactDoc, ConversationDoc
from resolvers.identifiers import IdentifierType, key
from resolvers.journey_reads import FACET_MAX_FIRST
from resolvers.store import Store
from tests.conftest import Api
from tests.factories import (
    add_merge_set,
    build_contact,
    contact_docs,
    conversation_doc,
    insert_contact,
)

SLIM_QUERY = "query { conversations(first: 50) { edges { node { id startedAt } } } }"


async def commands_of(
    api: Api, log: CommandLog, query: str, variables: dict[str, object]
) -> list[str]:
    log.clear()
    data = await api.gql(query, variables)
    assert data
    every = log.names()
    if len(every) != log.count(get_more=False):  # a cursor's further batches, for the record
        print(f"  (with getMore: {len(every)} {every})")
    return log.names(get_more=False)


async def seed_bi(store: Store, count: int) -> None:
    """``count`` conversations, each linked to a contact of its own: a third are ancestors
    of 3-member merge sets, the rest never merged; every canonical claims a phone."""
    linked: list[ContactDoc] = []
    heads: list[ContactDoc] = []
    for _ in range(count // 9):
        canonical, members = await add_merge_set(store, size=3)
        heads.append(canonical)
        linked.extend(m for m in members if m["readOnly"])
    loners = contact_docs(store, count - len(linked))
    await store.contacts.insert_many(loners)
    heads.extend(loners)
    linked.extend(loners)
    await store.identifiers.insert_many(
        [
            claims.claim_doc(
                "acme", key(IdentifierType.PHONE, f"+1803555{n:04d}"), head, claims.VIA_FIELD
            )
            for n, head in enumerate(heads)
        ]
    )
    moment = now()
    await store.conversations.insert_many(
        [
            conversation_doc(store, f"c{n:04d}", moment - timedelta(seconds=3 * n), c["_id"])
            for n, c in enumerate(linked)
        ]
    )


async def test_a_bi_page_costs_the_same_commands_for_20_and_500_rows(
    counted: tuple[Api, CommandLog], store: Store
) -> None:
    api, log = counted
    await seed_bi(store, 504)
    small = await commands_of(api, log, BI_QUERY, {"first": 20})
    large = await commands_of(api, log, BI_QUERY, {"first": 500})
    print(f"\nBI page of 20: {len(small)} commands {small}")
    print(f"BI page of 500: {len(large)} commands {large}")
    message = f"20 rows: {small}; 500 rows: {large}"
    assert small == large, message
    assert len(large) <= BI_BUDGET, message
    assert large == [
        "find:conversation_counts",
        "find:conversations",
        "aggregate:1",
        "find:identifiers",
    ], message


async def test_a_journey_page_costs_the_same_commands_for_20_and_500_rows(
    counted: tuple[Api, CommandLog], store: Store
) -> None:
    """Up to FACET_MAX_FIRST rows, the summary and the page are one aggregate (the set's
    conversations read once); a bigger page is read apart from the summary (one facet
    document could pass 16 MB), one command more and still within the budget."""
    api, log = counted
    _, members = await add_merge_set(store, size=10)
    moment = now()
    await store.conversations.insert_many(
        [
            conversation_doc(
                store, f"j{n:04d}", moment - timedelta(seconds=5 * n), members[n % 10]["_id"]
            )
            for n in range(520)
        ]
    )
    variables: dict[str, object] = {"id": members[0]["_id"]}
    small = await commands_of(api, log, JOURNEY_QUERY, {**variables, "first": 20})
    most = await commands_of(api, log, JOURNEY_QUERY, {**variables, "first": FACET_MAX_FIRST})
    large = await commands_of(api, log, JOURNEY_QUERY, {**variables, "first": 500})
    print(f"\njourney page of 20: {len(small)} commands {small}")
    print(f"journey page of {FACET_MAX_FIRST}: {len(most)} commands {most}")
    print(f"journey page of 500: {len(large)} commands {large}")
    message = f"20 rows: {small}; {FACET_MAX_FIRST} rows: {most}; 500 rows: {large}"
    assert small == most == ["aggregate:1", "aggregate:conversations", "aggregate:1"], message
    assert len(large) <= JOURNEY_BUDGET, message
    assert sorted(large) == sorted(
        ["aggregate:1", "aggregate:conversations", "find:conversations", "aggregate:1"]
    ), message


async def test_a_journey_summary_and_page_read_together_match_those_read_apart(
    counted: tuple[Api, CommandLog], store: Store
) -> None:
    """The facet's summary and page (a page of 20, then the next, of channels) equal the
    summary and pages read by their own queries."""
    api, _ = counted
    _, members = await add_merge_set(store, size=4)
    moment = now()
    channels = ["VOICE", "SMS", "EMAIL"]
    docs = [
        conversation_doc(
            store, f"t{n:03d}", moment - timedelta(minutes=n // 3), members[n % 4]["_id"]
        )
        for n in range(90)
    ]
    for n, doc in enumerate(docs):
        doc["channel"] = channels[n % 3]
    await store.conversations.insert_many(docs)
    summary = "conversationCount firstSeenAt lastSeenAt channels"
    page = """conversations(first: 20, after: $after, channels: [VOICE, SMS]) {
      edges { cursor node { id startedAt channel } } pageInfo { hasNextPage endCursor } }"""
    together = (
        f"query($id: ID!, $after: String) {{ journey(contactId: $id) {{ {summary} {page} }} }}"
    )
    alone = f"query($id: ID!, $after: String) {{ journey(contactId: $id) {{ {page} }} }}"
    counts = f"query($id: ID!) {{ journey(contactId: $id) {{ {summary} }} }}"
    after: str | None = None
    for _ in range(3):
        variables = {"id": members[0]["_id"], "after": after}
        both = (await api.gql(together, variables))["journey"]
        apart = (await api.gql(alone, variables))["journey"]
        assert both["conversations"] == apart["conversations"]
        after = both["conversations"]["pageInfo"]["endCursor"]
        ids = [e["node"]["id"] for e in both["conversations"]["edges"]]
        assert len(ids) == 20 and all(int(i[1:]) % 3 != 2 for i in ids), ids
    assert {k: v for k, v in both.items() if k != "conversations"} == (
        await api.gql(counts, {"id": members[0]["_id"]})
    )["journey"]
    assert both["conversationCount"] == 90 and both["channels"] == ["VOICE", "SMS", "EMAIL"]


async def test_a_slim_selection_reads_only_what_it_shows(
    counted: tuple[Api, CommandLog], store: Store
) -> None:
    api, log = counted
    await seed_bi(store, 60)
    names = await commands_of(api, log, SLIM_QUERY, {})
    print(f"\nslim BI page: {names}")
    assert names == ["find:conversation_counts", "find:conversations"], names
    (find,) = [e for e in log.events if e.command.get("find") == "conversations"]
    assert find.command["projection"] == {"_id": 1, "cid": 1, "startedAt": 1}

    canonical, _ = await add_merge_set(store, size=3)
    journey = (
        "query($id: ID!) { journey(contactId: $id) { conversations(first: 20) "
        "{ edges { node { id startedAt } } } } }"
    )
    names = await commands_of(api, log, journey, {"id": canonical["_id"]})
    print(f"slim journey page: {names}")
    assert not any(n.split(":")[1] in ("notes", "identifiers", "contacts") for n in names), names
    assert names == ["aggregate:1", "find:conversations"], names
    (find,) = [e for e in log.events if e.command_name == "find"]
    assert find.command["projection"] == {"_id": 1, "cid": 1, "startedAt": 1}


LINKED_PAGE = """query { conversations(first: 100) { edges { node {
  externalContactId contact { id } individual { id firstName %s } } } } }"""


async def test_a_page_showing_no_merge_set_leaves_the_sets_out_of_its_links(
    counted: tuple[Api, CommandLog], store: Store
) -> None:
    """A merge set keeps its whole history: a page whose contacts show nothing of their sets
    links them without looking the sets up; one that does looks them up with the links."""
    api, log = counted
    await seed_bi(store, 90)
    canonical_of = {c["_id"]: c["canonicalId"] async for c in store.contacts.find({})}
    pages = {}
    for shown in ("", "mergeSet { size }"):
        names = await commands_of(api, log, LINKED_PAGE % shown, {})
        # the density sizing the first window, the page's windows (as many as it takes to
        # reach the org's first), then the links
        density = "find:conversation_counts"
        assert [n for n in names if n != "find:conversations"] == [density, "aggregate:1"], names
        (links,) = [e for e in log.events if e.command_name == "aggregate"]
        assert ("merge_sets" in str(links.command["pipeline"])) == bool(shown), shown
        pages[shown] = (await api.gql(LINKED_PAGE % shown, {}))["conversations"]["edges"]
    rows = [e["node"] for e in pages[""]]
    assert len(rows) == 90
    ancestors = sum(canonical_of[r["externalContactId"]] != r["externalContactId"] for r in rows)
    assert ancestors == 20  # two of each 3-member set
    for row in rows:
        assert row["contact"]["id"] == row["externalContactId"]
        assert row["individual"]["id"] == canonical_of[row["externalContactId"]]
        assert row["individual"]["firstName"]
    with_sets = [e["node"] for e in pages["mergeSet { size }"]]
    assert [{**r, "individual": {**r["individual"], "mergeSet": None}} for r in with_sets] == [
        {**r, "individual": {**r["individual"], "mergeSet": None}} for r in rows
    ]
    assert {
        r["individual"]["mergeSet"]["size"] for r in with_sets if r["individual"]["mergeSet"]
    } == {3}


async def test_journeys_of_many_contacts_are_read_together(
    counted: tuple[Api, CommandLog], store: Store
) -> None:
    api, log = counted
    heads: list[str] = []
    moment = now()
    docs: list[ConversationDoc] = []
    for n in range(6):
        canonical, members = await add_merge_set(store, size=2 + n % 3)
        heads.append(canonical["_id"])
        docs += [
            conversation_doc(
                store, f"s{n}-{k}", moment - timedelta(minutes=k), members[k % len(members)]["_id"]
            )
            for k in range(4)
        ]
    await store.conversations.insert_many(docs)
    query = """
    query($ids: [ID!]!) { contacts(ids: $ids) { id journey { conversationCount
      conversations(first: 3) { edges { node { id individual { id } } } } } } }
    """
    for count in (2, 6):
        log.clear()
        data = await api.gql(query, {"ids": heads[:count]})
        names = log.names(get_more=False)
        print(f"\njourneys of {count} contacts: {len(names)} commands {names}")
        for contact in data["contacts"]:
            edges = contact["journey"]["conversations"]["edges"]
            assert len(edges) == 3 and contact["journey"]["conversationCount"] == 4
            assert {e["node"]["individual"]["id"] for e in edges} == {contact["id"]}
        assert sorted(names) == sorted(
            [
                "find:contacts",
                "aggregate:1",
                "aggregate:conversations",
                "find:conversations",
                "aggregate:1",
            ]
        ), names


async def test_a_field_the_caller_may_not_read_costs_no_command(
    counted: tuple[Api, CommandLog], store: Store
) -> None:
    """Declared permissions are checked from the token alone, before any resolver runs."""
    api, log = counted
    await seed_bi(store, 9)
    query = (
        "query { conversations(first: 5) { totalCount edges { node { id } } } "
        'contact(id: "x") { id } }'
    )
    log.clear()
    response = await api.post(query, {}, permissions=["externalContacts:session:view"])
    body = response.json()
    assert body["data"] is None  # conversations is non-null
    assert sorted(e["path"][0] for e in body["errors"]) == ["contact", "conversations"]
    assert {e["extensions"]["code"] for e in body["errors"]} == {"FORBIDDEN"}
    assert log.names() == [], log.names()


RECORD = """mutation($i: InteractionInput!) { recordInteraction(input: $i) {
  created contact { id } } }"""


def interaction(cid: str, phone: str, started: str) -> dict[str, object]:
    return {
        "i": {
            "conversationId": cid,
            "channel": "VOICE",
            "startedAt": started,
            "identifiers": [{"type": "PHONE", "value": phone}],
        }
    }


async def test_an_ingest_costs_a_fixed_number_of_commands(
    counted: tuple[Api, CommandLog], store: Store
) -> None:
    """The hot path of ``make load``: every command of a recording, by kind. A new caller's
    first call creates and claims; a known caller's later call renews the contact's expiry
    (contact and claims); recording a conversation again reads its link instead of the
    claims."""
    api, log = counted
    day = now() - timedelta(days=1)
    first = await commands_of(
        api, log, RECORD, interaction("ingest-1", "+18035550100", day.isoformat())
    )
    later = (day + timedelta(hours=1)).isoformat()
    known = await commands_of(api, log, RECORD, interaction("ingest-2", "+18035550100", later))
    again = await commands_of(api, log, RECORD, interaction("ingest-2", "+18035550100", later))
    print(f"\n  new caller: {len(first)} {first}\n  known: {len(known)} {known}")
    print(f"  again: {len(again)} {again}")
    assert known == [
        "find:identity_settings",  # the org's blocked identifiers
        "find:conversations",  # recorded before?
        "aggregate:identifiers",  # the claims of its identifiers and their holders
        "update:contacts",  # the holder's expiry …
        "update:identifiers",  # … and its claims' …
        "commitTransaction:1",  # … in one transaction
        "update:conversations",  # the upsert
        "update:conversation_counts",  # its hour's and day's count buckets, one command
    ], known
    # + the holders of listed values, then one transaction: the draft contact, its claim (read,
    # insert), its feed positions (reserved alongside) and changes, the commit
    assert len(first) == 12, first
    assert "findAndModify:change_counters" in first and "insert:changes" in first, first
    # its link decides: the linked contact (and its claims), no claims lookup, no renewal
    assert len(again) == 5 and "aggregate:identifiers" not in again, again


MERGE = "mutation($ids: [ID!]!) { mergeContacts(contactIds: $ids) { id } }"
UNMERGE = "mutation($id: ID!) { unmergeContacts(contactId: $id) { id } }"
PHONE_FIELDS = ("cellPhone", "workPhone", "homePhone", "otherPhone")


async def unmerge_commands(
    api: Api, log: CommandLog, store: Store, tag: int, phones: int
) -> list[str]:
    """The commands of unmerging two merged IDENTIFIED contacts that list and claim
    ``phones`` phones each."""
    ids: list[str] = []
    for side in range(2):
        fields = {f: f"+1803555{tag}{side}{n}{n}" for n, f in enumerate(PHONE_FIELDS[:phones])}
        doc = build_contact(store, fields, kind=ContactType.IDENTIFIED)
        assert len(doc["keys"]) == phones, doc["keys"]
        ids.append((await insert_contact(store, doc))["_id"])
    merged = await api.gql(MERGE, {"ids": ids})
    return await commands_of(api, log, UNMERGE, {"id": merged["mergeContacts"]["id"]})


async def test_an_unmerge_costs_the_same_commands_for_one_and_four_phones_a_contact(
    counted: tuple[Api, CommandLog], store: Store
) -> None:
    """The restored contacts' claims go back in one write, and are claimed again with one
    read of the claims and of the block list (the suggestions refresh reads it once too),
    not one command per identifier or per contact."""
    api, log = counted
    one = await unmerge_commands(api, log, store, 1, phones=1)
    four = await unmerge_commands(api, log, store, 2, phones=4)
    print(f"\n  one phone each: {len(one)} {one}\n  four phones each: {len(four)} {four}")
    # the same commands (the two contacts' refreshes run side by side: their order varies)
    assert sorted(one) == sorted(four), (one, four)
    assert one.count("find:identity_settings") == 2, one  # in the transaction, and after it
