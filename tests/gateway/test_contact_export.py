"""``GET /export/contacts.ndjson``: one line per canonical contact, streamed in batches."""

from __future__ import annotations

import tracemalloc
from datetime import timedelta
from typing import Any

import orjson

from bench.command_log import CommandLog
from gateway.contact_export import contact_lines
from resolvers.clock import now
from resolvers.contact_fields import ContactType
from resolvers.principal import Permission
from resolvers.store import Store
from tests.conftest import Api, codes
from tests.factories import add_merge_set, contact_docs, insert_auto

EXPORT = "/export/contacts.ndjson"
CONTACT = """query($id: ID!) { contact(id: $id) {
  id type firstName middleName lastName title workPhone cellPhone homePhone otherPhone
  workEmail personalEmail otherEmail whatsAppId facebookId twitterId lineId instagramId
  surveyOptOut createdAt modifiedAt expiresAt readOnly
  externalIds { source value } address { line1 line2 city state postalCode countryCode }
  identifiers { type value } mergeSet { contactIds } } }"""


async def export(
    api: Api, permissions: tuple[str, ...] | None = None, **params: str
) -> list[dict[str, Any]]:
    token = api.token(permissions=permissions) if permissions else api.token()
    response = await api.http.get(
        EXPORT, params=params, headers={"Authorization": f"Bearer {token}"}
    )
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("application/x-ndjson")
    return [orjson.loads(line) for line in response.text.splitlines()]


async def test_every_line_is_a_canonical_contact_as_graphql_shows_it(
    api: Api, store: Store
) -> None:
    made = await api.gql(
        """mutation { createContact(input: {firstName: "Ada", lastName: "Lovelace",
        cellPhone: "+18035551200", workEmail: "ADA@X.com", externalIds: [{source: "crm", value: "7"}],
        address: {city: "London"}}) { id } }"""
    )
    ada = made["createContact"]["id"]
    canonical, members = await add_merge_set(store, size=3)
    await insert_auto(store)  # IDENTIFIED: not exported by default
    lines = await export(api)
    by_id = {line["id"]: line for line in lines}
    heads = {canonical["_id"]} if canonical["type"] == "CURATED" else set()
    assert set(by_id) == {ada, *heads}
    shown = (await api.gql(CONTACT, {"id": ada}))["contact"]
    line = by_id[ada]
    assert line["mergeSetIds"] == [ada]
    assert sorted(line.pop("identifiers"), key=str) == sorted(shown.pop("identifiers"), key=str)
    shown.pop("mergeSet")
    assert {k: line[k] for k in shown} == shown
    every = await export(api, types="CURATED,IDENTIFIED,EPHEMERAL")
    ancestors = {m["_id"] for m in members if m["readOnly"]}
    assert not ancestors & {line["id"] for line in every}
    merged = next(line for line in every if line["id"] == canonical["_id"])
    assert sorted(merged["mergeSetIds"]) == sorted(m["_id"] for m in members)
    assert [line["type"] for line in every].index("IDENTIFIED") > 0  # scan order: CURATED first


async def test_the_export_filters_refuses_bad_parameters_and_needs_contact_view(
    api: Api, store: Store
) -> None:
    docs = contact_docs(store, 3)
    docs[0]["modifiedAt"] = now() + timedelta(minutes=5)
    await store.contacts.insert_many(docs)
    assert [line["id"] for line in await export(api, modifiedSince=now().isoformat())] == [
        docs[0]["_id"]
    ]
    for params in ({"types": "NOPE"}, {"modifiedSince": "yesterday"}, {"colour": "red"}):
        response = await api.http.get(
            EXPORT, params=params, headers={"Authorization": f"Bearer {api.token()}"}
        )
        assert response.status_code == 400, params
        assert codes(response.json()["errors"]) == ["BAD_USER_INPUT"]
    others = [p for p in Permission if p is not Permission.CONTACT_VIEW]
    token = api.token(permissions=[str(p) for p in others])
    response = await api.http.get(EXPORT, headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 403
    assert codes(response.json()["errors"]) == ["FORBIDDEN"]
    assert await export(api, permissions=(str(Permission.CONTACT_VIEW),))


async def test_batches_cost_two_reads_each_whatever_their_size(
    logged: tuple[Store, CommandLog],
) -> None:
    store, log = logged
    await store.contacts.insert_many(contact_docs(store, 1000))
    log.clear()
    lines = [chunk async for chunk in contact_lines(store, "acme", chunk=250)]
    assert [chunk.count(b"\n") for chunk in lines] == [250] * 4
    finds = [n for n in log.names(get_more=False) if n.startswith("find")]
    # their claims: one read per batch; the contacts: one window per batch, and the open
    # window at the end of the id line (a few empty, ever wider ones before it at most)
    assert finds.count("find:identifiers") == 4, finds
    assert finds.count("find:contacts") <= 4 + 4, finds


async def peak_memory(store: Store, org: str) -> tuple[int, int]:
    """Bytes written and the peak of memory allocated while exporting ``org``."""
    tracemalloc.start()
    try:
        written = 0
        async for chunk in contact_lines(store, org, chunk=250):
            written += len(chunk)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return written, peak


async def test_memory_stays_flat_however_many_contacts_are_exported(store: Store) -> None:
    await store.contacts.insert_many(contact_docs(store, 500, org="small"))
    for _ in range(5):
        await store.contacts.insert_many(contact_docs(store, 1000))
    small_written, small_peak = await peak_memory(store, "small")
    large_written, large_peak = await peak_memory(store, "acme")
    print(f"\n500 contacts: {small_written} bytes, peak {small_peak}")
    print(f"5000 contacts: {large_written} bytes, peak {large_peak}")
    assert large_written > 9 * small_written
    assert large_peak < 1.5 * small_peak, (small_peak, large_peak)


async def test_contact_lines_refuses_empty_types_before_reading(store: Store) -> None:
    lines = contact_lines(store, "acme", types=[])
    try:
        await anext(lines)
    except Exception as exc:
        assert type(exc).__name__ == "BadUserInput"
    else:
        raise AssertionError("empty types were accepted")
    assert ContactType.CURATED in ContactType
