"""scanContacts reads windows of the id line (resolvers/scan.py): whole, unsorted windows
ordered in the gateway, and a first page sized from an earlier scan. Whatever the sizes, a
scan returns every contact of the type once, in id order."""

from __future__ import annotations

from typing import Any

from resolvers import scan
from resolvers.contact_fields import ContactType
from resolvers.contacts import new_contact_doc
from resolvers.store import Store
from tests.conftest import Api
from tests.schema.test_integrations_api import BULK_CREATE, person, scan_all


async def curated(store: Store, contact_id: str, name: str) -> None:
    doc = new_contact_doc(store, "acme", {"firstName": name}, ContactType.CURATED)
    await store.contacts.insert_one({**doc, "_id": contact_id})


async def test_a_scan_after_another_reads_contacts_older_than_what_it_learnt(
    api: Api, store: Store
) -> None:
    """The second scan's first page is a window sized from the first scan (no full read of
    the type): it has no lower bound, so a contact with an id older than every id the first
    scan saw is still listed, first."""
    created = await api.gql(BULK_CREATE, {"i": [person(n) for n in range(30)]})
    ids = sorted(i["contact"]["id"] for i in created["bulkCreateContacts"])
    assert [n["id"] for n in await scan_all(api, 7)] == ids
    assert any(key[1] == "acme" for key in scan._HINTS)  # the first scan left its hint
    older = "000000000000000000000001"  # before the whole id line the hint starts at
    await curated(store, older, "Oldest")
    assert [n["id"] for n in await scan_all(api, 7)] == [older, *ids]


async def test_windows_read_whole_return_pages_in_id_order(api: Api, store: Store) -> None:
    """Windows that hold more than the page (contacts bunched in one second of ids) and ids
    that are not ObjectIds (the open window at the end): every contact once, in id order."""
    created = await api.gql(BULK_CREATE, {"i": [person(n) for n in range(40)]})
    ids = [i["contact"]["id"] for i in created["bulkCreateContacts"]]
    others = [f"crm-{n:02d}" for n in range(5)]
    for n, other in enumerate(others):
        await curated(store, other, f"Other{n}")
    expected = sorted([*ids, *others])
    for first in (3, 8, 40, 200):
        scan._HINTS.clear()
        pages: list[Any] = await scan_all(api, first)
        assert [n["id"] for n in pages] == expected, first
        assert [n["id"] for n in await scan_all(api, first)] == expected, first  # hinted
