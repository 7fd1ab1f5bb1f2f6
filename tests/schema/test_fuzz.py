"""Bad input, fuzzed: hypothesis drives the four writing mutations over HTTP.

Every example runs in an org of its own (created for it, with a few contacts to aim at), so
examples never see each other's data; org ``acme`` holds the foreign ids every property
also throws in. After every call:

- the status is 200 (400 only for a malformed request), never 500, and no response text
  carries a traceback;
- every error has a contract code (never ``INTERNAL_SERVER_ERROR``);
- a mutation that failed wrote nothing (its org and acme compare equal document by document
  before and after, and no collection gained or lost a document);
- acme's data never changes, and ``find_violations`` finds nothing in the example's org and
  acme (then the example's org is deleted, so the database stays small; every property ends
  with ``find_violations`` over the whole database).

Hypothesis runs its examples synchronously: each property runs in a worker thread
(``asyncio.to_thread``) while the test's event loop stays free, and every example hands its
coroutine back to that loop with ``run_coroutine_threadsafe``. ``derandomize=True`` and no
example database keep CI runs identical.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable, Coroutine, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from typing import Any, TypeVar

import httpx
from bson import ObjectId
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from gateway.auth import ALL_PERMISSIONS
from resolvers import contacts, merges
from resolvers.clock import now
from resolvers.contact_fields import ContactType
from resolvers.conversations import Channel, Direction
from resolvers.identifiers import IdentifierType
from resolvers.invariants import find_violations
from resolvers.principal import Principal
from resolvers.store import Doc, Store
from tests.conftest import Api
from tests.factories import insert_auto

T = TypeVar("T")

ACME = "acme"
COLLECTIONS = ("contacts", "identifiers", "conversations", "merge_sets", "notes")
CONTRACT_CODES = frozenset(
    {
        "UNAUTHENTICATED",
        "FORBIDDEN",
        "NOT_FOUND",
        "BAD_USER_INPUT",
        "READ_ONLY",
        "MERGE_NOT_ALLOWED",
        "CONFLICT",
        "QUERY_TOO_COMPLEX",
        "SERVICE_UNAVAILABLE",
        "GRAPHQL_PARSE_FAILED",
        "GRAPHQL_VALIDATION_FAILED",
    }
)

# identifiers that the per-example orgs (and acme) already use, so fuzzed input collides
TAKEN_PHONE = "+18031230000"
AUTO_PHONE = "+18031230001"
MERGED_PHONE = "+18031230002"
TAKEN_EMAIL = "taken@example.com"
ACME_CONVERSATION = "acme-conversation-1"

CONTACT = """
  id type firstName lastName workPhone cellPhone homePhone otherPhone
  workEmail personalEmail otherEmail readOnly expiresAt
  externalIds { source value } identifiers { type value }
"""
CREATE = f"mutation($i: ContactInput!) {{ createContact(input: $i) {{ {CONTACT} }} }}"
UPDATE = (
    f"mutation($id: ID!, $i: ContactInput!) {{ updateContact(id: $id, input: $i) {{ {CONTACT} }} }}"
)
MERGE = (
    "mutation($ids: [ID!]!, $o: ContactInput) { mergeContacts(contactIds: $ids, "
    f"valueOverride: $o) {{ {CONTACT} mergeSet {{ size contactIds }} }} }}"
)
RECORD = f"""mutation($i: InteractionInput!) {{
  recordInteraction(input: $i) {{
    created
    conversation {{ id channel startedAt endedAt durationSeconds externalContactId
                   identifiers {{ type value }} }}
    contact {{ {CONTACT} }}
    otherMatches {{ id }}
  }}
}}"""


# --- strategies ----------------------------------------------------------------------------------

ODD_CHARS = [
    "\x00",
    "\x01",
    "\x08",
    "\x1b",
    "\x1f",
    "\x7f",
    "\u0085",
    "\u200b",  # zero-width space
    "\u200e",  # LRM
    "\u200f",  # RLM
    "\u202e",  # RLO
    "\u2066",  # LRI
    "\ufeff",  # BOM
    "\ufffd",
    "\u0301",  # combining acute
    "😀",
    "👩\u200d👩\u200d👧",
    "🏳️\u200d🌈",
    "\U0010fffd",
    "ß",
    "İ",
    "ﬃ",
    "١٢٣",  # Arabic-Indic digits
    "\n",
    "\r\n",
    "\t",
    " ",
    "\\",
    '"',
    "'",
    "$",
    "$where",
    ".",
    "{",
    "}",
    "%s",
    "<script>",
    "null",
    "@",
    ":",
]


def _repeat(pair: tuple[str, int]) -> str:
    unit, size = pair
    return (unit * (size // len(unit) + 1))[:size]


def _no_nul(value: str) -> str:
    return value.replace("\x00", "")


# Every strategy comes in two flavours: ``clean`` values are odd but acceptable (unicode,
# control characters but no NUL, at most 1,000 characters, valid emails, dates that parse)
# so the writes really happen; the full flavour adds what must be refused (NUL, 2,000
# characters, broken emails and dates, wrong JSON types). A property draws whole inputs of
# either flavour, so about half of its calls get through to the database.
long_text = st.tuples(
    st.sampled_from(["x", "é", "9", "😀", " ", "\u202e", "ab"]), st.integers(100, 1000)
).map(_repeat)
huge_text = st.tuples(
    st.sampled_from(["x", "é", "9", "😀", " ", "\u202e", "a\x00"]), st.integers(1001, 2100)
).map(_repeat)
odd_text = st.lists(st.one_of(st.sampled_from(ODD_CHARS), st.text(max_size=4)), max_size=12).map(
    "".join
)
plausible = st.sampled_from(["Ann", "O'Brien-Smith", "José", "李", "Zoë \u200f", "Ωmega"])
clean_text = st.one_of(
    plausible,
    st.text(max_size=30).map(_no_nul),
    odd_text.map(_no_nul),
    long_text,
    st.sampled_from(["", "   ", "\u200f"]),
)
any_text = st.one_of(clean_text, odd_text, huge_text, st.text(max_size=30))


def texts(clean: bool) -> st.SearchStrategy[str]:
    return clean_text if clean else any_text


ascii_digits = st.text(alphabet="0123456789", min_size=1, max_size=30)
unicode_digits = st.text(alphabet=st.characters(categories=["Nd"]), min_size=1, max_size=15)
odd_phones = st.one_of(
    st.sampled_from(
        [
            TAKEN_PHONE,
            AUTO_PHONE,
            MERGED_PHONE,
            "+1 803-123-0000",
            "(803) 123-0000",
            "803.123.0001 x12",
            "+1 803 123 0002 ext. 42",
            "+44 20 7946 0958",
            "tel:+18031230000",
            "+",
            "++1",
            "0",
            "call me maybe",
            "+1803123000012345678901234567890",
            "+١٨٠٣١٢٣٠٠٠٠",
            "\uff18\uff10\uff13\uff11\uff12\uff13\uff10\uff10\uff10\uff10",  # fullwidth
        ]
    ),
    st.builds(
        lambda p, d: p + d, st.sampled_from(["", "+", "00", "+1", "+44", "+0"]), ascii_digits
    ),
    unicode_digits,
    unicode_digits.map(lambda d: "+" + d),
    st.text(alphabet="0123456789abcxyz+-() .#*,;/", max_size=25),
    st.integers(100, 1000).map(lambda n: "9" * n),
)


def phones(clean: bool) -> st.SearchStrategy[str]:
    """A phone that cannot be normalised is stored as entered: only NUL and length fail."""
    if clean:
        return st.one_of(odd_phones, clean_text)
    return st.one_of(odd_phones, st.integers(1001, 2100).map(lambda n: "9" * n), any_text)


valid_emails = st.one_of(
    st.sampled_from(
        [
            TAKEN_EMAIL,
            " Taken@Example.COM ",
            "user+tag@Example.COM",
            "ÄÖ@例え.jp",
            "auto2@example.com",
        ]
    ),
    st.emails(),
    st.emails().map(lambda e: f"  {e.upper()}\t"),
)
broken_emails = st.sampled_from(
    [
        "a@b",
        "@example.com",
        "a@",
        "a@@b.com",
        "a b@c.com",
        '"quoted"@example.com',
        "a@[127.0.0.1]",
        "a@localhost",
        "a@b.c\x00",
        "x" * 300 + "@example.com",
        "a@" + "b" * 250 + ".com",
    ]
)


def emails(clean: bool) -> st.SearchStrategy[str]:
    return valid_emails if clean else st.one_of(valid_emails, broken_emails, any_text)


def contact_inputs(clean: bool, *, names_required: bool) -> st.SearchStrategy[dict[str, Any]]:
    """A ContactInput: any subset of its fields, each null, odd or plausible."""
    text = texts(clean)
    filled = text.filter(lambda t: bool(t.strip()) and ":" not in t)  # a name, an id source
    optional: dict[str, st.SearchStrategy[Any]] = {
        "middleName": st.one_of(st.none(), text),
        "title": st.one_of(st.none(), text),
        **{
            f: st.one_of(st.none(), phones(clean))
            for f in ("workPhone", "cellPhone", "homePhone", "otherPhone")
        },
        **{
            f: st.one_of(st.none(), emails(clean))
            for f in ("workEmail", "personalEmail", "otherEmail")
        },
        **{
            f: st.one_of(st.none(), phones(clean), text)
            for f in ("whatsAppId", "facebookId", "twitterId", "lineId", "instagramId")
        },
        "externalIds": st.one_of(
            st.none(),
            st.lists(
                st.fixed_dictionaries(
                    {
                        "source": st.one_of(st.sampled_from(["crm", "erp"]), filled)
                        if clean
                        else st.one_of(st.sampled_from(["crm", "a:b", ""]), text),
                        "value": st.one_of(st.sampled_from(["1", "42"]), filled if clean else text),
                    }
                ),
                max_size=10 if clean else 12,
            ),
        ),
        "address": st.one_of(
            st.none(),
            st.fixed_dictionaries(
                {},
                optional={
                    k: st.one_of(st.none(), text)
                    for k in ("line1", "line2", "city", "state", "postalCode", "countryCode")
                },
            ),
        ),
        "surveyOptOut": st.one_of(st.none(), st.booleans()),
    }
    names = st.one_of(plausible, filled if clean else text)
    if names_required:
        required = {"firstName": names, "lastName": names}
        if not clean:
            required = {k: st.one_of(st.none(), v) for k, v in required.items()}
        return st.fixed_dictionaries(required, optional=optional)
    name_fields = {
        "firstName": st.one_of(st.none(), names),
        "lastName": st.one_of(st.none(), names),
    }
    return st.fixed_dictionaries({}, optional={**name_fields, **optional})


def any_contact_input(*, names_required: bool) -> st.SearchStrategy[dict[str, Any]]:
    return st.one_of(
        contact_inputs(True, names_required=names_required),
        contact_inputs(False, names_required=names_required),
    )


OFFSETS = [
    UTC,
    timezone(timedelta(hours=14)),
    timezone(timedelta(hours=-12)),
    timezone(timedelta(hours=5, minutes=30)),
    timezone(timedelta(hours=-23, minutes=-59)),
]
recent = st.integers(0, 60 * 24 * 90).map(lambda m: datetime.now(UTC) - timedelta(minutes=m))
moments = st.one_of(
    recent,
    st.datetimes(
        min_value=datetime(1990, 1, 1),
        max_value=datetime(2100, 1, 1),
        timezones=st.sampled_from(OFFSETS),
    ),
    st.datetimes(timezones=st.sampled_from(OFFSETS)),  # years 1 to 9999
)
odd_dates: st.SearchStrategy[Any] = st.one_of(
    st.sampled_from(
        [
            "",
            "yesterday",
            "2024-01-01",
            "2024-01-01T10:00:00",
            "2024-13-01T00:00:00Z",
            "2024-02-30T00:00:00Z",
            "2024-01-01T00:00:00+25:00",
            "0001-01-01T00:00:00+14:00",
            "9999-12-31T23:59:59.999999-12:00",
            "9999-12-31T23:59:59Z",
            "1969-12-31T23:59:59.9999999Z",
            "+002024-01-01T00:00:00Z",
            "2024-01-01T00:00:00Z\x00",
        ]
    ),
    moments.map(lambda d: d.isoformat()),
    any_text,
    st.integers(-(2**53), 2**53),
    st.floats(allow_nan=False),  # infinity is not JSON: a malformed request, HTTP 400
    st.booleans(),
)


def dates(clean: bool) -> st.SearchStrategy[Any]:
    """ISO-8601 text with an offset: recent (mostly), any year, 'Z' or '+hh:mm'."""
    good = st.one_of(
        recent.map(lambda d: d.isoformat()),
        recent.map(lambda d: d.isoformat().replace("+00:00", "Z")),
        moments.map(lambda d: d.isoformat()),
    )
    return good if clean else st.one_of(good, odd_dates)


def identifiers(clean: bool) -> st.SearchStrategy[list[dict[str, Any]]]:
    text = texts(clean)
    identifier = st.fixed_dictionaries(
        {
            "type": st.sampled_from([t.value for t in IdentifierType]),
            "value": st.one_of(
                phones(clean),
                valid_emails,
                text,
                st.sampled_from(["crm:1", "crm:", ":1", "cookie-1", "@handle"]),
            ),
        }
    )
    if clean:
        return st.lists(identifier, max_size=8)
    return st.tuples(st.lists(identifier, max_size=22), st.booleans()).map(
        lambda t: t[0] + t[0] if t[1] else t[0]  # duplicates, and sometimes more than 20
    )


@dataclass(frozen=True)
class Example:
    """The ids one example can aim at: its own org's contacts, acme's and unknown ones."""

    org: str
    curated: str
    curated_2: str
    auto: str
    auto_2: str
    ephemeral: str
    canonical: str
    ancestor: str
    foreign: str
    foreign_auto: str

    def pick(self, name: str) -> str:
        value: str = getattr(self, name)
        return value


ID_NAMES = [
    "curated",
    "curated_2",
    "auto",
    "auto_2",
    "ephemeral",
    "canonical",
    "ancestor",
    "foreign",
    "foreign_auto",
]
unknown_ids = st.one_of(
    st.binary(min_size=12, max_size=12).map(bytes.hex),  # an ObjectId no one has
    st.just(""),
    st.text(max_size=30),
    huge_text,
)
# an id: a name of the example's contacts (resolved per example), or an unknown/odd id
named_ids = st.sampled_from(ID_NAMES).map(lambda n: ("name", n))
own_ids = st.sampled_from(["curated", "auto", "auto_2", "ephemeral", "canonical", "ancestor"]).map(
    lambda n: ("name", n)
)
id_choices: st.SearchStrategy[tuple[str, str]] = st.one_of(
    own_ids, named_ids, unknown_ids.map(lambda v: ("raw", v))
)


def resolve(choice: tuple[str, str], example: Example) -> str:
    kind, value = choice
    return example.pick(value) if kind == "name" else value


# --- the harness ----------------------------------------------------------------------------------


async def snapshot(store: Store, org: str | None = None) -> dict[str, list[Doc]]:
    scope = {} if org is None else {"org": org}
    reads = [store.db[name].find(scope).sort("_id", 1).to_list() for name in COLLECTIONS]
    return dict(zip(COLLECTIONS, await asyncio.gather(*reads), strict=True))


def checked(response: httpx.Response) -> dict[str, Any]:
    """The response body, after the properties every response has."""
    assert response.status_code in (200, 400), (response.status_code, response.text)
    assert "Traceback" not in response.text, response.text
    assert 'File "' not in response.text, response.text
    body: dict[str, Any] = response.json()
    for error in body.get("errors") or []:
        code = (error.get("extensions") or {}).get("code")
        assert code in CONTRACT_CODES, error
    if response.status_code == 400:
        assert body.get("errors"), body
    return body


async def state(store: Store, org: str) -> tuple[dict[str, list[Doc]], dict[str, int]]:
    """The caller's org and acme document by document, and how many documents each
    collection holds in all (a write elsewhere would have to add or remove one: no call
    gets an id of another fuzz org to change)."""
    counts = [store.db[name].count_documents({}) for name in COLLECTIONS]
    (mine, theirs), totals = await asyncio.gather(
        asyncio.gather(snapshot(store, org), snapshot(store, ACME)), asyncio.gather(*counts)
    )
    docs = {**{f"{org}.{k}": v for k, v in mine.items()}, **theirs}
    return docs, dict(zip(COLLECTIONS, totals, strict=True))


async def call_mutation(
    api: Api, store: Store, org: str, document: str, variables: dict[str, Any]
) -> dict[str, Any]:
    """Post a mutation; when it fails, nothing may have changed; acme never changes."""
    before, counts = await state(store, org)
    body = checked(await api.post(document, variables, org=org))
    if body.get("errors"):
        assert body.get("data") is None, body
        assert await state(store, org) == (before, counts), f"a failed call wrote: {body}"
    else:
        acme = {k: v for k, v in before.items() if not k.startswith(f"{org}.")}
        assert await snapshot(store, ACME) == acme
    return body


def run_property(
    strategy: st.SearchStrategy[T],
    body: Callable[[T], Coroutine[Any, Any, None]],
    *,
    max_examples: int,
    examples: Sequence[T] = (),
) -> Awaitable[None]:
    """Run ``body`` for hypothesis' examples of ``strategy`` (after the explicit
    ``examples``, which always run) on the caller's event loop."""
    loop = asyncio.get_running_loop()

    @settings(
        max_examples=max_examples,
        deadline=None,
        derandomize=True,
        database=None,
        print_blob=False,
        suppress_health_check=[
            HealthCheck.too_slow,
            HealthCheck.data_too_large,
            HealthCheck.large_base_example,
        ],
    )
    def prop(value: T) -> None:
        asyncio.run_coroutine_threadsafe(body(value), loop).result(timeout=120)

    for value in reversed(examples):
        prop = example(value)(prop)
    return asyncio.to_thread(given(strategy)(prop))


# --- data for an example --------------------------------------------------------------------------


async def create_curated(store: Store, org: str, **fields: Any) -> str:
    principal = Principal(org=org, sub="setup", permissions=frozenset(ALL_PERMISSIONS))
    doc = await contacts.create_contact(
        store, principal, {"firstName": "Casey", "lastName": "Setup", **fields}
    )
    contact_id: str = doc["_id"]
    return contact_id


async def acme_data(store: Store) -> tuple[str, str]:
    """acme's contacts (the foreign ids) and a conversation, with the same phone and email
    as every example org's curated contact."""
    curated = await create_curated(store, ACME, workPhone=TAKEN_PHONE, workEmail=TAKEN_EMAIL)
    auto = await insert_auto(store, org=ACME, cellPhone=AUTO_PHONE)
    await store.conversations.insert_one(
        {
            "_id": str(ObjectId()),
            "org": ACME,
            "cid": ACME_CONVERSATION,
            "channel": "VOICE",
            "direction": "INBOUND",
            "startedAt": now(),
            "endedAt": None,
            "durationSeconds": None,
            "identifiers": [{"type": "PHONE", "value": AUTO_PHONE}],
            "expiresAt": now() + timedelta(days=60),
            "createdAt": now(),
            "modifiedAt": now(),
            "externalContactId": auto,
            "queue": None,
            "agent": None,
            "wrapUpCode": None,
            "status": None,
            "notes": None,
        }
    )
    return curated, auto


async def new_example(store: Store, foreign: tuple[str, str]) -> Example:
    org = f"fuzz-{uuid.uuid4().hex[:12]}"
    principal = Principal(org=org, sub="setup", permissions=frozenset(ALL_PERMISSIONS))
    # distinct identifiers: the contacts can be made side by side
    curated, curated_2, auto, auto_2, ephemeral, a, b = await asyncio.gather(
        create_curated(store, org, workPhone=TAKEN_PHONE, workEmail=TAKEN_EMAIL),
        create_curated(store, org, firstName="Second"),
        insert_auto(store, org=org, cellPhone=AUTO_PHONE),
        insert_auto(store, org=org, personalEmail="auto2@example.com"),
        insert_auto(store, ContactType.EPHEMERAL, org=org),
        insert_auto(store, org=org, cellPhone=MERGED_PHONE),
        insert_auto(store, org=org, twitterId="@merged"),
    )
    merged = await merges.merge_contacts(store, principal, [a, b], {})
    return Example(
        org=org,
        curated=curated,
        curated_2=curated_2,
        auto=auto,
        auto_2=auto_2,
        ephemeral=ephemeral,
        canonical=merged["_id"],
        ancestor=a,
        foreign=foreign[0],
        foreign_auto=foreign[1],
    )


async def sound(store: Store, *orgs: str) -> None:
    """No invariant is broken: in the given orgs (after each example), or anywhere."""
    violations = [v for org in orgs for v in await find_violations(store, org)]
    if not orgs:
        violations = await find_violations(store)
    assert violations == [], violations


async def finish(store: Store, org: str) -> None:
    """The example's org is sound; then it goes, so the database stays small and fast."""
    await sound(store, org, ACME)
    for name in COLLECTIONS:
        await store.db[name].delete_many({"org": org})


# --- the properties -------------------------------------------------------------------------------


async def test_create_contact_fuzzed(api: Api, store: Store) -> None:
    await acme_data(store)

    async def create(patch: dict[str, Any]) -> None:
        org = f"fuzz-{uuid.uuid4().hex[:12]}"
        await create_curated(store, org, workPhone=TAKEN_PHONE, workEmail=TAKEN_EMAIL)
        body = await call_mutation(api, store, org, CREATE, {"i": patch})
        if not body.get("errors"):
            created = body["data"]["createContact"]
            assert created["type"] == "CURATED"
            assert created["firstName"] == patch["firstName"].strip()
            assert created["lastName"] == patch["lastName"].strip()
            for slot in ("workEmail", "personalEmail", "otherEmail"):
                assert created[slot] is None or created[slot] == created[slot].lower()
        await finish(store, org)

    known: list[dict[str, Any]] = [
        {"firstName": "Nul\x00", "lastName": "Byte"},
        {"firstName": "x" * 2000, "lastName": "Huge"},
        {"firstName": " ", "lastName": "Blank"},
        {"firstName": "Ann", "lastName": "Lee", "cellPhone": TAKEN_PHONE, "workEmail": "a@@b"},
        {"firstName": "Ann", "lastName": "Lee", "externalIds": [{"source": "a:b", "value": "1"}]},
        {"firstName": "Ann", "lastName": "Lee", "homePhone": "9" * 2000},
        {"firstName": "\u202eAnn", "lastName": "😀", "workPhone": "+١٨٠٣١٢٣٠٠٠٠"},
        {"firstName": "Ann", "lastName": "Lee", "workEmail": " Taken@Example.COM "},
    ]
    await run_property(
        any_contact_input(names_required=True), create, max_examples=60, examples=known
    )
    await sound(store)


async def test_update_contact_fuzzed(api: Api, store: Store) -> None:
    foreign = await acme_data(store)

    async def update(case: tuple[tuple[str, str], dict[str, Any]]) -> None:
        choice, patch = case
        example = await new_example(store, foreign)
        target = resolve(choice, example)
        body = await call_mutation(api, store, example.org, UPDATE, {"id": target, "i": patch})
        errors = body.get("errors") or []
        if choice in (("name", "foreign"), ("name", "foreign_auto")):
            assert [e["extensions"]["code"] for e in errors] in (
                ["NOT_FOUND"],
                ["BAD_USER_INPUT"],  # the input is checked first
            ), body
        if not errors:
            updated = body["data"]["updateContact"]
            assert updated["type"] == "CURATED"
            assert updated["readOnly"] is False
            assert updated["expiresAt"] is None
        await finish(store, example.org)

    known: list[tuple[tuple[str, str], dict[str, Any]]] = [
        (("name", "foreign"), {"firstName": "Hijacked"}),
        (("name", "foreign_auto"), {"workPhone": AUTO_PHONE}),
        (("name", "ancestor"), {"workPhone": TAKEN_PHONE, "cellPhone": None}),
        (("name", "auto"), {"workEmail": "not an email", "firstName": "Promoted"}),
        (("name", "canonical"), {"cellPhone": None, "twitterId": None, "externalIds": None}),
        (("name", "curated"), {"workPhone": None, "workEmail": None, "lastName": None}),
        (("raw", ""), {"firstName": "Nobody"}),
        (("raw", "x" * 2000), {}),
    ]
    strategy = st.tuples(st.one_of(own_ids, id_choices), any_contact_input(names_required=False))
    await run_property(strategy, update, max_examples=50, examples=known)
    await sound(store)


async def test_merge_contacts_fuzzed(api: Api, store: Store) -> None:
    foreign = await acme_data(store)

    async def merge(case: tuple[list[tuple[str, str]], dict[str, Any] | None]) -> None:
        choices, override = case
        example = await new_example(store, foreign)
        ids = [resolve(c, example) for c in choices]
        body = await call_mutation(api, store, example.org, MERGE, {"ids": ids, "o": override})
        errors = body.get("errors") or []
        if any(c in (("name", "foreign"), ("name", "foreign_auto")) for c in choices):
            assert errors, body  # a foreign id never merges
        if not errors:
            merged = body["data"]["mergeContacts"]
            assert merged["readOnly"] is False
            assert merged["expiresAt"] is None
            assert set(ids) <= set(merged["mergeSet"]["contactIds"])
        await finish(store, example.org)

    def named(*names: str) -> list[tuple[str, str]]:
        return [("name", n) for n in names]

    known: list[tuple[list[tuple[str, str]], dict[str, Any] | None]] = [
        (named("auto", "foreign"), None),
        (named("auto", "foreign_auto"), None),
        (named("foreign", "foreign_auto"), None),
        (named("curated", "curated_2"), None),
        (named("auto", "auto"), None),
        (named("ancestor", "canonical"), None),
        (named("auto", "auto_2", "ephemeral", "ancestor", "curated"), None),
        (named("auto", "auto_2"), {"workEmail": "a@@b"}),
        (named("auto", "auto_2"), {"firstName": "\x00"}),
        (named(*(["auto"] * 26)), None),
        (named("auto"), None),
        ([], None),
    ]
    strategy = st.tuples(
        st.one_of(
            st.lists(own_ids, min_size=2, max_size=6),  # mostly mergeable
            st.lists(id_choices, max_size=27),
        ),
        st.one_of(st.none(), any_contact_input(names_required=False)),
    )
    await run_property(strategy, merge, max_examples=50, examples=known)
    await sound(store)


def interactions(clean: bool) -> st.SearchStrategy[dict[str, Any]]:
    text = texts(clean)
    optional: dict[str, st.SearchStrategy[Any]] = {
        "direction": st.one_of(st.none(), st.sampled_from([d.value for d in Direction])),
        "endedAt": st.one_of(st.none(), dates(clean)),  # before startedAt at times
        "identifiers": identifiers(clean),
        "provided": st.one_of(st.none(), contact_inputs(clean, names_required=False)),
        **{
            name: st.one_of(st.none(), text)
            for name in ("queue", "agent", "wrapUpCode", "status", "notes")
        },
    }
    conversation_ids = st.one_of(st.just("fresh"), st.just(ACME_CONVERSATION), text)
    if not clean:
        conversation_ids = st.one_of(conversation_ids, st.integers(0, 10**6))
    return st.fixed_dictionaries(
        {
            "conversationId": conversation_ids,
            "channel": st.sampled_from([c.value for c in Channel]),
            "startedAt": dates(clean),
        },
        optional=optional,
    )


async def test_record_interaction_fuzzed(api: Api, store: Store) -> None:
    await acme_data(store)

    async def record(case: tuple[dict[str, Any], bool]) -> None:
        interaction, twice = case
        org = f"fuzz-{uuid.uuid4().hex[:12]}"
        await create_curated(store, org, workPhone=TAKEN_PHONE, workEmail=TAKEN_EMAIL)
        await insert_auto(store, org=org, cellPhone=AUTO_PHONE)
        variables = dict(interaction)
        if variables["conversationId"] == "fresh":
            variables["conversationId"] = f"conv-{uuid.uuid4().hex}"
        for attempt in range(2 if twice else 1):  # the same conversation id again
            body = await call_mutation(api, store, org, RECORD, {"i": variables})
            if not body.get("errors"):
                resolution = body["data"]["recordInteraction"]
                cid = resolution["conversation"]["id"]
                assert await store.conversations.count_documents({"org": org, "cid": cid}) == 1
                contact = resolution["contact"]
                if attempt == 0:  # a repeat keeps the link it has
                    linked = resolution["conversation"]["externalContactId"]
                    assert linked == (contact["id"] if contact is not None else None)
                if contact is not None:
                    doc = await store.contacts.find_one({"_id": contact["id"]})
                    assert doc is not None and doc["org"] == org
        await finish(store, org)

    def voice(started: Any, **more: Any) -> tuple[dict[str, Any], bool]:
        phone = [{"type": "PHONE", "value": AUTO_PHONE}]
        return {
            "conversationId": "fresh",
            "channel": "VOICE",
            "startedAt": started,
            "identifiers": phone,
            **more,
        }, False

    recent = datetime.now(UTC).isoformat()
    known: list[tuple[dict[str, Any], bool]] = [
        voice("9999-12-31T23:59:59Z"),
        voice("0001-01-01T00:00:00+14:00"),
        voice("0001-01-01T00:00:00Z"),
        voice(recent, endedAt="2000-01-01T00:00:00Z"),
        voice(recent, conversationId=ACME_CONVERSATION),
        voice(recent, conversationId="with\x00nul"),
        voice(recent, identifiers=[{"type": "COOKIE", "value": "\x00"}] * 21),
        voice(recent, identifiers=[{"type": "EXTERNAL_ID", "value": "crm:\x00"}]),
        voice(recent, provided={"workEmail": "a@@b"}),
        voice(recent, channel="WHATSAPP"),
        voice(recent, channel="CAMPAIGN", identifiers=[{"type": "EMAIL", "value": TAKEN_EMAIL}]),
        (voice(recent)[0], True),
    ]
    await run_property(
        st.tuples(st.one_of(interactions(True), interactions(False)), st.booleans()),
        record,
        max_examples=60,
        examples=known,
    )
    await sound(store)
