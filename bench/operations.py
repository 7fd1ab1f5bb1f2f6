"""The per-operation latency table of `make bench`: one row per operation a user calls.

Each :class:`Operation` is one row: the GraphQL call over HTTP (what an agent desktop, an
integration, a BI tool or a data steward sends) and the least driver work that gives the
same result, both run ``calls`` times in the same run, interleaved (the order alternates per
call, so the machine's other work hits both alike). A row reports p50 and p99 of each and
the ratio of the p50s against the row's targets: every p50 ≤ 25 ms and ≤ ``ratio`` times raw.

Where the gateway's time goes is printed beside it: around each gateway call the benchmark
reads the gateway's ``/metrics`` (outside the timed part), whose command histogram gives the
call's database commands and their round-trip time (:class:`DatabaseUse`); the rest of the
call is the gateway itself (HTTP, authentication, GraphQL, the resolvers' Python, the log
line) and the client.

The raw side is the least driver work an index serves: a find by ``_id``, a claim lookup, an
update by ``_id``. Where the least work is itself the resolvers' data access — journey pages
(an index range per member), whole-org pages (time windows) and their totals (count
buckets), the export's first chunk — the raw side calls those functions directly, without
HTTP or GraphQL: the ratio is then the gateway's own overhead.

To add a row, add an :class:`Operation` to :func:`operations` — a name, the gateway call and
the raw call, each ``(fixture, n) -> awaitable`` for the n-th call (use ``n`` to pick fresh
ids when a call changes state, e.g. a merge needs two unmerged contacts each time).
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import aiohttp
import httpx
import orjson
from pymongo import ReturnDocument

from gateway.export import FIRST_LINES
from resolvers import journey_reads, journeys
from resolvers.clock import now
from resolvers.contact_fields import ContactType
from resolvers.contacts import new_contact_doc, new_id
from resolvers.documents import ClaimDoc, ContactDoc, ConversationDoc, NoteDoc, field_of
from resolvers.org_windows import org_windows
from resolvers.store import Store
from schema.scalars import serialize_datetime

P50_LIMIT_MS = 25.0
ROW_BUDGET_S = 20.0  # a row slower than this stops early (its call count shows it) …
MIN_CALLS = 10  # … but never before this many calls
CONTACT_FIELDS = "id firstName lastName type"


@dataclass
class Fixture:
    """The seeded data an operation reads: ids and values picked before timing starts."""

    http: httpx.AsyncClient
    store: Store
    org: str
    contacts: list[ContactDoc]  # curated contacts with a name, a phone and an email
    spare: list[str]  # unmerged IDENTIFIED contacts, for promote and merge (used up)
    conversation_ids: list[str]  # conversation ids (cid), for link and unlink
    small_set: str  # canonical id of a 3-member merge set
    large_set: str  # canonical id of a 10-member merge set
    phones: list[str]  # phones claimed by curated contacts (known callers)
    merged: dict[str, list[str]] = field(default_factory=dict)  # "gateway"/"raw" → heads

    def take(self, count: int) -> list[str]:
        """``count`` spare contacts no call has used yet."""
        taken, self.spare = self.spare[:count], self.spare[count:]
        if len(taken) < count:
            raise RuntimeError("the seeded data set has too few unmerged IDENTIFIED contacts")
        return taken


Work = Callable[[Fixture, int], Awaitable[object]]


@dataclass(frozen=True)
class Operation:
    name: str
    gateway: Work
    raw: Work
    ratio: float = 3.0  # target: gateway p50 ≤ ratio times raw p50
    available: Callable[[Fixture], int] | None = None  # most calls the fixture allows


@dataclass(frozen=True)
class DatabaseUse:
    """Database commands so far and their round-trip seconds (the gateway's /metrics)."""

    commands: int = 0
    seconds: float = 0.0

    def __sub__(self, other: DatabaseUse) -> DatabaseUse:
        return DatabaseUse(self.commands - other.commands, self.seconds - other.seconds)


COMMAND_HISTOGRAM = "scv_db_command_duration_seconds"


async def database_use(http: httpx.AsyncClient) -> DatabaseUse:
    """The gateway's database commands so far, from its /metrics command histogram."""
    commands, seconds = 0, 0.0
    for line in (await http.get("/metrics")).text.splitlines():
        if line.startswith(COMMAND_HISTOGRAM + "_count{"):
            commands += int(float(line.rsplit(" ", 1)[1]))
        elif line.startswith(COMMAND_HISTOGRAM + "_sum{"):
            seconds += float(line.rsplit(" ", 1)[1])
    return DatabaseUse(commands, seconds)


@dataclass(frozen=True)
class Measured:
    operation: Operation
    gateway: list[float]
    raw: list[float]
    failures: list[str]
    database: list[DatabaseUse] = field(default_factory=list)  # per timed gateway call

    @property
    def commands(self) -> float:
        """Database commands per gateway call (median)."""
        return statistics.median(d.commands for d in self.database) if self.database else 0.0

    @property
    def database_seconds(self) -> float:
        """Database round-trip time per gateway call (median)."""
        return statistics.median(d.seconds for d in self.database) if self.database else 0.0

    @property
    def ratio(self) -> float:
        if not self.gateway or not self.raw:
            return float("nan")
        return statistics.median(self.gateway) / statistics.median(self.raw)

    @property
    def met(self) -> bool:
        if self.failures or not self.gateway:
            return False
        p50_ms = statistics.median(self.gateway) * 1000
        return p50_ms <= P50_LIMIT_MS and self.ratio <= self.operation.ratio


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * p))] if ordered else float("nan")


async def measure(
    fixture: Fixture,
    operation: Operation,
    calls: int,
    *,
    warmup: int = 3,
    budget_s: float = ROW_BUDGET_S,
) -> Measured:
    """``calls`` timed calls of each side (fewer if a row uses up ``budget_s``, at least
    :data:`MIN_CALLS`); a failed call is counted and left out of the times."""
    times: dict[str, list[float]] = {"gateway": [], "raw": []}
    database: list[DatabaseUse] = []
    failures: list[str] = []
    works = {"gateway": operation.gateway, "raw": operation.raw}
    deadline = time.monotonic() + budget_s
    total = calls + warmup
    if operation.available is not None:
        total = min(total, operation.available(fixture))
    for n in range(total):
        if n >= warmup + MIN_CALLS and time.monotonic() > deadline:
            break
        for side in ("gateway", "raw") if n % 2 else ("raw", "gateway"):
            before = await database_use(fixture.http) if side == "gateway" else None
            started = time.perf_counter()
            try:
                await works[side](fixture, n)
            except Exception as exc:
                failures.append(f"{side}: {str(exc)[:160]}")
                continue
            if n >= warmup:
                times[side].append(time.perf_counter() - started)
                if before is not None:
                    database.append(await database_use(fixture.http) - before)
    return Measured(operation, times["gateway"], times["raw"], failures, database)


# --- the gateway's way ---------------------------------------------------------------------


class GatewayClient(httpx.AsyncClient):
    """An httpx client of a gateway whose GraphQL calls (:func:`gql`) go through an aiohttp
    session. httpx's HTTP is pure Python: about 1.5 ms of every call was the client's own
    CPU (a ``contact`` query's p50 4.3 ms through httpx, 2.8 ms through aiohttp, alternating
    on one server), counted against the gateway next to raw driver calls that pay nothing
    of the kind. httpx still does the rest (streams, ``/metrics``, ``/readyz``)."""

    def __init__(self, base_url: str, token: str) -> None:
        headers = {"Authorization": f"Bearer {token}"}
        super().__init__(base_url=base_url, headers=headers, timeout=300)
        self.graphql = aiohttp.ClientSession(
            base_url=base_url,
            headers={**headers, "Content-Type": "application/json"},
            timeout=aiohttp.ClientTimeout(total=300),
        )

    async def __aexit__(self, *exc_info: Any) -> None:
        await self.graphql.close()
        await super().__aexit__(*exc_info)


async def gql(http: httpx.AsyncClient, query: str, variables: dict[str, Any]) -> Any:
    payload = {"query": query, "variables": variables}
    if isinstance(http, GatewayClient):
        async with http.graphql.post("/graphql", data=orjson.dumps(payload)) as answer:
            status, raw = answer.status, await answer.read()
    else:  # an app in process (ASGI)
        response = await http.post("/graphql", json=payload)
        status, raw = response.status_code, response.content
    body = orjson.loads(raw)
    if status != 200 or body.get("errors"):
        raise RuntimeError(f"GraphQL failed: {status} {raw[:500]!r}")
    return body["data"]


def call(query: str, variables: Callable[[Fixture, int], dict[str, Any]]) -> Work:
    """A GraphQL document with the n-th call's variables."""

    async def work(fixture: Fixture, n: int) -> object:
        return await gql(fixture.http, query, variables(fixture, n))

    return work


def contact_of(fixture: Fixture, n: int) -> ContactDoc:
    return fixture.contacts[n % len(fixture.contacts)]


def started_at(n: int) -> str:
    return serialize_datetime(datetime.now(UTC).replace(microsecond=0) - timedelta(seconds=n))


def record(kind: str) -> Work:
    query = """mutation($input: InteractionInput!) {
      recordInteraction(input: $input) { created contact { id } conversation { id } } }"""

    def variables(fixture: Fixture, n: int) -> dict[str, Any]:
        phone = fixture.phones[n % len(fixture.phones)] if kind == "known" else new_phone(n, 0)
        return {
            "input": {
                "conversationId": f"op-gql-{kind}-{n}",
                "channel": "VOICE",
                "startedAt": started_at(n),
                "identifiers": [{"type": "PHONE", "value": phone}],
            }
        }

    return call(query, variables)


def new_phone(n: int, side: int) -> str:
    return f"+1808{5 + side}{n:06d}"


async def export_first_line(fixture: Fixture, n: int) -> object:
    """The export's first line, then the response closed unfinished (so its connection
    closes). Through the aiohttp session: an httpx client made for each call cost about
    15 ms of set-up (its SSL context), counted against the gateway."""
    http = fixture.http
    if not isinstance(http, GatewayClient):  # an app in process (ASGI)
        async with http.stream("GET", EXPORT_PATH) as streamed:
            async for chunk in streamed.aiter_bytes():
                if b"\n" in chunk:
                    return chunk[: chunk.index(b"\n")]
        return b""
    received = b""
    async with http.graphql.get(EXPORT_PATH) as response:
        async for chunk in response.content.iter_any():
            received += chunk
            if b"\n" in received:
                response.close()
                return received[: received.index(b"\n")]
    return b""


EXPORT_PATH = "/export/conversations.ndjson"


# --- raw driver work ----------------------------------------------------------------------


def raw_contact(fixture: Fixture, n: int) -> Awaitable[ContactDoc | None]:
    return fixture.store.contacts.find_one({"_id": contact_of(fixture, n)["_id"]})


async def raw_search_name(fixture: Fixture, n: int) -> object:
    """The name prefix as an index range on ``nameTokens`` (the shape the index serves)."""
    token = contact_of(fixture, n)["nameTokens"][0]
    query = {"org": fixture.org, "nameTokens": {"$gte": token, "$lt": token + "\U0010ffff"}}
    docs = await fixture.store.contacts.find(query).to_list()
    return sorted(docs, key=lambda d: str(d["_id"]))[:11]


async def raw_by_key(fixture: Fixture, key: str) -> object:
    claim = await fixture.store.identifiers.find_one({"org": fixture.org, "key": key})
    assert claim is not None
    return await fixture.store.contacts.find_one({"_id": claim["contactId"]})


def key_of(fixture: Fixture, n: int, prefix: str) -> str:
    keys: list[str] = contact_of(fixture, n)["keys"]
    return next(k for k in keys if k.startswith(prefix))


async def raw_reverse(fixture: Fixture, n: int) -> object:
    query = {"org": fixture.org, "keys": key_of(fixture, n, "PHONE:")}
    return await fixture.store.contacts.find(query).to_list()


async def raw_ingest(fixture: Fixture, n: int) -> object:
    """Claim lookup, holder, conversation upsert: resolving a known caller."""
    phone = fixture.phones[n % len(fixture.phones)]
    holder = await raw_by_key(fixture, f"PHONE:{phone}")
    assert isinstance(holder, dict)
    return await upsert_conversation(fixture, f"op-raw-known-{n}", phone, holder["_id"])


async def raw_ingest_new(fixture: Fixture, n: int) -> object:
    """Claim lookup (none), new contact, its claim, conversation upsert."""
    phone = new_phone(n, 1)
    store = fixture.store
    await store.identifiers.find_one({"org": fixture.org, "key": f"PHONE:{phone}"})
    contact = contact_doc(fixture, {"cellPhone": phone})
    contact_id = contact["_id"]
    await store.contacts.insert_one(contact)
    claim: ClaimDoc = {
        "org": fixture.org,
        "key": f"PHONE:{phone}",
        "type": "PHONE",
        "value": phone,
        "contactId": contact_id,
        "claimedAt": now(),
        "via": "interaction",
        "expiresAt": contact["expiresAt"],
    }
    await store.identifiers.insert_one(claim)
    return await upsert_conversation(fixture, f"op-raw-new-{n}", phone, contact_id)


def contact_doc(fixture: Fixture, fields: dict[str, Any]) -> ContactDoc:
    """An auto-created contact as the resolvers store it (so every later read handles it)."""
    expires = now() + timedelta(days=fixture.store.config.retention_days)
    return new_contact_doc(
        fixture.store, fixture.org, fields, ContactType.IDENTIFIED, expires_at=expires
    )


async def upsert_conversation(fixture: Fixture, cid: str, phone: str, contact_id: str) -> object:
    moment = now()
    return await fixture.store.conversations.find_one_and_update(
        {"org": fixture.org, "cid": cid},
        {
            "$set": {
                "channel": "VOICE",
                "direction": "INBOUND",
                "startedAt": moment,
                "endedAt": None,
                "durationSeconds": None,
                "identifiers": [{"type": "PHONE", "value": phone}],
                "expiresAt": moment + timedelta(days=60),
                "modifiedAt": moment,
            },
            "$setOnInsert": {
                "_id": new_id(),
                "createdAt": moment,
                "externalContactId": contact_id,
            },
        },
        upsert=True,
        return_document=ReturnDocument.AFTER,
    )


def conversation_of(fixture: Fixture, n: int) -> str:
    return fixture.conversation_ids[n % len(fixture.conversation_ids)]


async def raw_link(fixture: Fixture, n: int) -> object:
    contact = contact_of(fixture, n)["_id"]
    await fixture.store.contacts.find_one({"_id": contact})
    return await fixture.store.conversations.update_one(
        {"org": fixture.org, "cid": conversation_of(fixture, n)},
        {"$set": {"externalContactId": contact}},
    )


async def raw_unlink(fixture: Fixture, n: int) -> object:
    return await fixture.store.conversations.update_one(
        {"org": fixture.org, "cid": conversation_of(fixture, n)},
        {"$set": {"externalContactId": None}},
    )


async def raw_update(fixture: Fixture, n: int) -> object:
    return await fixture.store.contacts.update_one(
        {"_id": contact_of(fixture, n)["_id"]}, {"$set": {"title": f"Title {n}"}}
    )


async def raw_note(fixture: Fixture, n: int) -> object:
    note: NoteDoc = {
        "_id": new_id(),
        "org": fixture.org,
        "contactId": contact_of(fixture, n)["_id"],
        "text": f"n{n}",
        "createdAt": now(),
        "createdBy": "bench",
    }
    return await fixture.store.notes.insert_one(note)


async def raw_promote(fixture: Fixture, n: int) -> object:
    return await fixture.store.contacts.update_one(
        {"_id": fixture.take(1)[0], "type": "IDENTIFIED"},
        {"$set": {"type": "CURATED"}, "$unset": {"expiresAt": ""}},
    )


async def raw_merge(fixture: Fixture, n: int) -> object:
    """A new canonical, a merge set, the members pointed at both (one transaction)."""
    members = fixture.take(2)
    store = fixture.store
    head_doc, set_id = contact_doc(fixture, {}), new_id()
    head = head_doc["_id"]
    async with store.db.client.start_session() as session, await session.start_transaction():
        await store.contacts.insert_one(head_doc, session=session)
        await store.merge_sets.insert_one(
            {
                "_id": set_id,
                "org": fixture.org,
                "canonicalId": head,
                "memberIds": [*members, head],
                "history": [],
            },
            session=session,
        )
        await store.contacts.update_many(
            {"_id": {"$in": [*members, head]}},
            {"$set": {"canonicalId": head, "mergeSetId": set_id}},
            session=session,
        )
    fixture.merged.setdefault("raw", []).append(set_id)
    return head


async def raw_unmerge(fixture: Fixture, n: int) -> object:
    store = fixture.store
    set_id = fixture.merged["raw"][n]
    async with store.db.client.start_session() as session, await session.start_transaction():
        merge_set = await store.merge_sets.find_one_and_delete({"_id": set_id}, session=session)
        assert merge_set is not None
        await store.contacts.update_many(
            {"_id": {"$in": merge_set["memberIds"]}},
            [{"$set": {"canonicalId": "$_id", "mergeSetId": None}}],
            session=session,
        )
    return merge_set


def raw_journey(members: Callable[[Fixture], str]) -> Work:
    async def work(fixture: Fixture, n: int) -> object:
        return await journey_queries(fixture.store, fixture.org, members(fixture))

    return work


async def journey_queries(store: Store, org: str, contact_id: str) -> int:
    """Contact, merge set, and the summary with the first page of 100 (one aggregate): the
    resolvers' own index-served commands, called without HTTP or GraphQL."""
    contact = await store.contacts.find_one({"_id": contact_id, "org": org})
    assert contact is not None
    members = [contact_id]
    if contact.get("mergeSetId"):
        merge_set = await store.merge_sets.find_one({"_id": contact["mergeSetId"], "org": org})
        assert merge_set is not None
        members = merge_set["memberIds"]
    request = journeys.page_request(
        journeys.JOURNEY_CURSOR, members, journeys.conversation_filter(), 100, None, maximum=100
    )
    summary, page = await journey_reads.summary_and_page(store, org, request)
    return len(page.docs) + summary.count


async def raw_conversations_page(fixture: Fixture, n: int) -> object:
    """A whole-org page of 100 and its exact total: the resolvers' time-window reads and
    count buckets, called without HTTP or GraphQL."""
    request = journeys.page_request(
        journeys.CONVERSATIONS_CURSOR, None, journeys.conversation_filter(), 100, None, maximum=100
    )
    page = await journeys.conversation_page(fixture.store, fixture.org, request)
    return len(page.docs), await page.total()


async def raw_first_line(fixture: Fixture, n: int) -> object:
    """The export's first window (sized for its first ``FIRST_LINES`` lines, ``org_windows``),
    one line written."""
    first: list[ConversationDoc] = []
    async for window in org_windows(
        fixture.store, fixture.org, journeys.conversation_filter(), 2500, first=FIRST_LINES
    ):
        first = window
        break
    return orjson.dumps(first[0] if first else None, default=str)


# --- the rows ---------------------------------------------------------------------------------

JOURNEY = """query($id: ID!) { journey(contactId: $id) {
  contact { id firstName lastName type } contactIds conversationCount firstSeenAt lastSeenAt
  channels conversations(first: 100) { pageInfo { hasNextPage endCursor }
    edges { cursor node { id channel direction startedAt endedAt durationSeconds queue agent
                          wrapUpCode status notes externalContactId } } } } }"""


def operations() -> list[Operation]:
    def contact_id(f: Fixture, n: int) -> dict[str, Any]:
        return {"id": contact_of(f, n)["_id"]}

    def search(field: str) -> Callable[[Fixture, int], dict[str, Any]]:
        def variables(f: Fixture, n: int) -> dict[str, Any]:
            contact = contact_of(f, n)
            value = contact["nameTokens"][0] if field == "name" else field_of(contact, field)
            return {"q": value}

        return variables

    search_query = f"""query($q: String!) {{ searchContacts(query: $q, first: 10) {{
      edges {{ node {{ {CONTACT_FIELDS} }} }} }} }}"""
    merge_query = "mutation($ids: [ID!]!) { mergeContacts(contactIds: $ids) { id } }"

    async def gateway_merge(f: Fixture, n: int) -> object:
        data = await gql(f.http, merge_query, {"ids": f.take(2)})
        f.merged.setdefault("gateway", []).append(data["mergeContacts"]["id"])
        return data

    async def gateway_unmerge(f: Fixture, n: int) -> object:
        query = "mutation($id: ID!) { unmergeContacts(contactId: $id) { id } }"
        return await gql(f.http, query, {"id": f.merged["gateway"][n]})

    return [
        Operation(
            "contact",
            call(f"query($id: ID!) {{ contact(id: $id) {{ {CONTACT_FIELDS} }} }}", contact_id),
            raw_contact,
        ),
        Operation("searchContacts by name", call(search_query, search("name")), raw_search_name),
        Operation(
            "searchContacts by phone",
            call(search_query, search("cellPhone")),
            lambda f, n: raw_by_key(f, key_of(f, n, "PHONE:")),
        ),
        Operation(
            "searchContacts by email",
            call(search_query, search("workEmail")),
            lambda f, n: raw_by_key(f, key_of(f, n, "EMAIL:")),
        ),
        Operation(
            "reverseLookup",
            call(
                f"query($v: String!) {{ reverseLookup(value: $v) {{ {CONTACT_FIELDS} }} }}",
                lambda f, n: {"v": contact_of(f, n)["cellPhone"]},
            ),
            raw_reverse,
        ),
        Operation(
            "identifier",
            call(
                "query($v: String!) { identifier(type: PHONE, value: $v) { value contact { id } } }",
                lambda f, n: {"v": contact_of(f, n)["cellPhone"]},
            ),
            lambda f, n: raw_by_key(f, key_of(f, n, "PHONE:")),
        ),
        Operation("recordInteraction, known caller", record("known"), raw_ingest, 1.5),
        Operation("recordInteraction, new caller", record("new"), raw_ingest_new, 1.5),
        Operation(
            "linkConversation",
            call(
                "mutation($c: ID!, $id: ID!) { linkConversation(conversationId: $c, contactId: $id) { id } }",
                lambda f, n: {"c": conversation_of(f, n), "id": contact_of(f, n)["_id"]},
            ),
            raw_link,
        ),
        Operation(
            "unlinkConversation",
            call(
                "mutation($c: ID!) { unlinkConversation(conversationId: $c) { id } }",
                lambda f, n: {"c": conversation_of(f, n)},
            ),
            raw_unlink,
        ),
        Operation(
            "updateContact",
            call(
                f"mutation($id: ID!, $t: String) {{ updateContact(id: $id, input: {{title: $t}}) {{ {CONTACT_FIELDS} }} }}",
                lambda f, n: {"id": contact_of(f, n)["_id"], "t": f"Title {n}"},
            ),
            raw_update,
        ),
        Operation(
            "addNote",
            call(
                "mutation($id: ID!, $t: String!) { addNote(contactId: $id, text: $t) { id } }",
                lambda f, n: {"id": contact_of(f, n)["_id"], "t": f"note {n}"},
            ),
            raw_note,
        ),
        Operation(
            "promoteContact",
            call(
                f"mutation($id: ID!) {{ promoteContact(id: $id) {{ {CONTACT_FIELDS} }} }}",
                lambda f, n: {"id": f.take(1)[0]},
            ),
            raw_promote,
        ),
        Operation("mergeContacts (two contacts)", gateway_merge, raw_merge),
        Operation(
            "unmergeContacts",
            gateway_unmerge,
            raw_unmerge,
            available=lambda f: min(len(f.merged.get(side, [])) for side in ("gateway", "raw")),
        ),
        Operation(
            "journey: first page of 100, 3-member set",
            call(JOURNEY, lambda f, n: {"id": f.small_set}),
            raw_journey(lambda f: f.small_set),
            1.3,
        ),
        Operation(
            "journey: first page of 100, 10-member set",
            call(JOURNEY, lambda f, n: {"id": f.large_set}),
            raw_journey(lambda f: f.large_set),
            1.3,
        ),
        Operation(
            "conversations: page of 100 with totalCount",
            call(
                """{ conversations(first: 100) { totalCount edges { node {
                  id channel startedAt externalContactId } } } }""",
                lambda f, n: {},
            ),
            raw_conversations_page,
        ),
        Operation("export: first NDJSON line", export_first_line, raw_first_line),
    ]


async def make_fixture(
    http: httpx.AsyncClient,
    store: Store,
    org: str,
    calls: int,
    small_set: str,
    large_set: str,
    phones: list[str],
) -> Fixture:
    """Ids for every row, read before timing starts."""
    contacts = await store.contacts.find(
        {
            "org": org,
            "type": "CURATED",
            "mergeSetId": None,
            "cellPhone": {"$ne": None},
            "workEmail": {"$ne": None},
            "firstName": {"$ne": None},
        }
    ).to_list(200)
    spare = await store.contacts.find(
        {"org": org, "type": "IDENTIFIED", "mergeSetId": None}, {"_id": 1}
    ).to_list(6 * (calls + 10))
    conversations = await store.conversations.find({"org": org}, {"cid": 1}).to_list(200)
    return Fixture(
        http=http,
        store=store,
        org=org,
        contacts=[c for c in contacts if c.get("nameTokens")],
        spare=[c["_id"] for c in spare],
        conversation_ids=[c["cid"] for c in conversations],
        small_set=small_set,
        large_set=large_set,
        phones=phones,
    )
