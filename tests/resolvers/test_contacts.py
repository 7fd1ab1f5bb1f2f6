"""Contact reads in the domain: aliases (an ancestor id reads its canonical) and notes."""

from __future__ import annotations

from resolvers import contacts, loaders, merges
from resolvers.documents import ContactDoc
from resolvers.store import Store
from tests.conftest import principal
from tests.factories import auto_contact

P = principal()


async def test_canonicals_of_reads_ancestors_as_their_canonical_in_two_batches(
    store: Store,
) -> None:
    a = await auto_contact(store, cellPhone="+18031230001")
    b = await auto_contact(store, cellPhone="+18031230002")
    loner = await auto_contact(store, cellPhone="+18031230003")
    merged = await merges.merge_contacts(store, P, [a["_id"], b["_id"]])
    batches: list[list[str]] = []

    async def load_many(ids: list[str]) -> list[ContactDoc | None]:
        batches.append(ids)
        return await loaders.contacts_by_id(store, "acme", ids)

    found = await contacts.canonicals_of(load_many, [a["_id"], "unknown", loner["_id"]])
    assert [d["_id"] if d is not None else None for d in found] == [
        merged["_id"],
        None,
        loner["_id"],
    ]
    assert len(batches) == 2


async def test_a_merged_contact_shows_the_notes_of_its_whole_set(store: Store) -> None:
    a = await auto_contact(store, cellPhone="+18031230001")
    b = await auto_contact(store, cellPhone="+18031230002")
    assert contacts.note_owners(a, None) == (a["_id"],)
    merged = await merges.merge_contacts(store, P, [a["_id"], b["_id"]])
    merge_set = await merges.get_merge_set(store, "acme", a["_id"])
    assert merge_set is not None
    assert set(contacts.note_owners(merged, merge_set)) == {a["_id"], b["_id"], merged["_id"]}
