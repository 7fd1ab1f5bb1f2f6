"""Claim rules, without GraphQL: the oldest lister holds a value, also when creations race."""

from __future__ import annotations

import asyncio
import random
from datetime import timedelta
from typing import Any

import pytest

from resolvers import bulk, bulk_claims, claims, contacts
from resolvers.clock import now
from resolvers.contact_fields import ContactType
from resolvers.documents import ContactDoc, field_of
from resolvers.errors import Conflict, NotFound
from resolvers.invariants import find_violations
from resolvers.store import Store
from tests.conftest import principal
from tests.factories import build_contact, insert_contact

PHONE = "PHONE:+18031230000"


async def holder(store: Store, identifier_key: str, org: str = "acme") -> str | None:
    docs = await store.identifiers.find({"org": org, "key": identifier_key}).to_list()
    assert len(docs) <= 1
    return docs[0]["contactId"] if docs else None


async def test_create_contact_claims_every_listed_value(store: Store) -> None:
    doc = await contacts.create_contact(
        store,
        principal(),
        {
            "firstName": "Alexis",
            "lastName": "Smith",
            "cellPhone": "+1 803-123-0000",
            "workPhone": "anonymous",
            "workEmail": "Alexis@Example.com",
            "twitterId": "@alexis",
            "externalIds": [{"source": "crm", "value": "42"}],
        },
    )
    claimed = await store.identifiers.find({"org": "acme"}).to_list()
    assert {(c["type"], c["value"]) for c in claimed} == {
        ("PHONE", "+18031230000"),
        ("EMAIL", "alexis@example.com"),
        ("TWITTER", "@alexis"),
        ("EXTERNAL_ID", "crm:42"),
    }
    assert {c["contactId"] for c in claimed} == {doc["_id"]}
    assert {c["via"] for c in claimed} == {claims.VIA_FIELD}
    assert all(c["expiresAt"] is None for c in claimed)


async def test_second_lister_does_not_take_the_claim(store: Store) -> None:
    first = await contacts.create_contact(
        store, principal(), {"firstName": "A", "lastName": "A", "cellPhone": "8031230000"}
    )
    await contacts.create_contact(
        store, principal(), {"firstName": "B", "lastName": "B", "homePhone": "+18031230000"}
    )
    assert await holder(store, PHONE) == first["_id"]


async def test_younger_contact_that_claimed_first_hands_over_to_the_older(store: Store) -> None:
    base = now()
    older = build_contact(store, {"cellPhone": "+18031230000"}, moment=base)
    younger = build_contact(
        store, {"cellPhone": "+18031230000"}, moment=base + timedelta(seconds=1)
    )
    await insert_contact(store, younger)
    assert await holder(store, PHONE) == younger["_id"]
    await insert_contact(store, older)
    assert await holder(store, PHONE) == older["_id"]
    # and the younger one claiming again changes nothing
    result = await claims.claim(store, "acme", PHONE, younger, claims.VIA_FIELD)
    assert result == older["_id"]
    assert await holder(store, PHONE) == older["_id"]


async def test_same_moment_ties_are_broken_by_id(store: Store) -> None:
    moment = now()
    first = build_contact(store, {"cellPhone": "+18031230000"}, moment=moment)
    second = build_contact(store, {"cellPhone": "+18031230000"}, moment=moment)
    assert first["_id"] < second["_id"]
    await insert_contact(store, second)
    await insert_contact(store, first)
    assert await holder(store, PHONE) == first["_id"]


async def test_twenty_racing_claims_leave_the_oldest_holding(store: Store) -> None:
    docs = [build_contact(store, {"cellPhone": "(803) 123-0000", "workEmail": "x@example.com"})]
    docs += [build_contact(store, {"cellPhone": "(803) 123-0000"}) for _ in range(19)]
    assert sorted(docs, key=claims.rank) == docs  # built in order: the first is the oldest
    await store.contacts.insert_many(docs)
    shuffled = docs[1:]
    random.Random(7).shuffle(shuffled)
    shuffled.append(docs[0])  # the oldest starts last: it has to take the claim over
    await asyncio.gather(
        *(claims.claim_all(store, "acme", d["keys"], d, claims.VIA_FIELD) for d in shuffled)
    )
    assert await store.identifiers.count_documents({"org": "acme", "key": PHONE}) == 1
    assert await holder(store, PHONE) == docs[0]["_id"]
    assert await holder(store, "EMAIL:x@example.com") == docs[0]["_id"]


async def test_twenty_racing_creations_leave_the_oldest_holding(store: Store) -> None:
    created = await asyncio.gather(
        *(
            contacts.create_contact(
                store,
                principal(),
                {"firstName": f"N{i}", "lastName": "Race", "cellPhone": "+1 803-123-0000"},
            )
            for i in range(20)
        )
    )
    oldest = min(created, key=claims.rank)
    assert await store.identifiers.count_documents({"org": "acme"}) == 1
    assert await holder(store, PHONE) == oldest["_id"]


async def test_delete_hands_the_value_to_the_oldest_remaining_live_lister(store: Store) -> None:
    base = now()
    holder_doc = await insert_contact(
        store, build_contact(store, {"cellPhone": "+18031230000"}, moment=base)
    )
    expired = await insert_contact(
        store,
        build_contact(
            store,
            {"cellPhone": "+18031230000"},
            kind=ContactType.IDENTIFIED,
            moment=base + timedelta(seconds=1),
            expires_at=base - timedelta(seconds=1),
        ),
    )
    ancestor = build_contact(
        store, {"cellPhone": "+18031230000"}, moment=base + timedelta(seconds=2)
    )
    ancestor["readOnly"] = True
    await insert_contact(store, ancestor)
    middle = await insert_contact(
        store,
        build_contact(store, {"workPhone": "+18031230000"}, moment=base + timedelta(seconds=3)),
    )
    await insert_contact(
        store,
        build_contact(store, {"homePhone": "+18031230000"}, moment=base + timedelta(seconds=4)),
    )
    assert await holder(store, PHONE) == holder_doc["_id"]

    await contacts.delete_contact(store, principal(), holder_doc["_id"])
    assert expired["_id"] != middle["_id"]
    assert await holder(store, PHONE) == middle["_id"]


async def test_delete_of_the_last_lister_frees_the_value(store: Store) -> None:
    doc = await contacts.create_contact(
        store, principal(), {"firstName": "A", "lastName": "A", "cellPhone": "+18031230000"}
    )
    assert await contacts.delete_contact(store, principal(), doc["_id"]) is True
    assert await store.identifiers.count_documents({"org": "acme"}) == 0
    assert await store.contacts.count_documents({"org": "acme"}) == 0


async def test_update_releases_removed_values_and_claims_new_ones(store: Store) -> None:
    alexis = await contacts.create_contact(
        store, principal(), {"firstName": "A", "lastName": "A", "cellPhone": "+18031230000"}
    )
    david = await contacts.create_contact(
        store, principal(), {"firstName": "D", "lastName": "D", "cellPhone": "+18031230000"}
    )
    await contacts.update_contact(
        store, principal(), alexis["_id"], {"cellPhone": None, "workEmail": "a@example.com"}
    )
    assert await holder(store, PHONE) == david["_id"]
    assert await holder(store, "EMAIL:a@example.com") == alexis["_id"]
    # Alexis was created first: listing the value again takes it back from David at once
    await contacts.update_contact(store, principal(), alexis["_id"], {"workPhone": "8031230000"})
    assert await holder(store, PHONE) == alexis["_id"]


async def test_moving_a_value_between_fields_keeps_the_claim(store: Store) -> None:
    alexis = await contacts.create_contact(
        store, principal(), {"firstName": "A", "lastName": "A", "cellPhone": "+18031230000"}
    )
    before = await store.identifiers.find_one({"org": "acme", "key": PHONE})
    assert before is not None
    await contacts.update_contact(
        store, principal(), alexis["_id"], {"cellPhone": None, "workPhone": "(803) 123-0000"}
    )
    after = await store.identifiers.find_one({"org": "acme", "key": PHONE})
    assert after is not None
    assert after["contactId"] == alexis["_id"]
    assert after["_id"] == before["_id"]


async def test_interaction_claims_are_sticky(store: Store) -> None:
    base = now()
    older = build_contact(store, {"cellPhone": "+18031230000"}, moment=base)
    younger = build_contact(
        store, {}, kind=ContactType.IDENTIFIED, moment=base + timedelta(seconds=1)
    )
    await store.contacts.insert_many([older, younger])
    await claims.claim(store, "acme", PHONE, younger, claims.VIA_INTERACTION)
    await claims.claim_all(store, "acme", older["keys"], older, claims.VIA_FIELD)
    assert await holder(store, PHONE) == younger["_id"]
    # editing fields releases only field claims
    released = await claims.release(
        store, "acme", younger["_id"], [PHONE], only_via=claims.VIA_FIELD
    )
    assert released == []
    assert await holder(store, PHONE) == younger["_id"]


async def test_stale_claims_are_taken_over(store: Store) -> None:
    base = now()
    gone = build_contact(store, {"cellPhone": "+18031230000"}, moment=base)
    await insert_contact(store, gone)
    await store.contacts.delete_one({"_id": gone["_id"]})  # holder vanished without release
    newcomer = await insert_contact(
        store,
        build_contact(store, {"cellPhone": "+18031230000"}, moment=base + timedelta(seconds=1)),
    )
    assert await holder(store, PHONE) == newcomer["_id"]

    await store.contacts.update_one({"_id": newcomer["_id"]}, {"$set": {"readOnly": True}})
    third = await insert_contact(
        store,
        build_contact(store, {"cellPhone": "+18031230000"}, moment=base + timedelta(seconds=2)),
    )
    assert await holder(store, PHONE) == third["_id"]

    expired_at = now() - timedelta(seconds=1)
    await store.contacts.update_one({"_id": third["_id"]}, {"$set": {"expiresAt": expired_at}})
    await claims.set_claims_expiry(store, "acme", [third["_id"]], expired_at)
    fourth = await insert_contact(
        store,
        build_contact(store, {"cellPhone": "+18031230000"}, moment=base + timedelta(seconds=3)),
    )
    assert await holder(store, PHONE) == fourth["_id"]


async def test_identifiers_are_unique_per_org(store: Store) -> None:
    acme = await contacts.create_contact(
        store, principal(), {"firstName": "A", "lastName": "A", "cellPhone": "+18031230000"}
    )
    globex = await contacts.create_contact(
        store,
        principal(org="globex"),
        {"firstName": "G", "lastName": "G", "cellPhone": "+18031230000"},
    )
    assert await holder(store, PHONE, org="acme") == acme["_id"]
    assert await holder(store, PHONE, org="globex") == globex["_id"]
    await contacts.delete_contact(store, principal(org="globex"), globex["_id"])
    assert await holder(store, PHONE, org="acme") == acme["_id"]
    assert await holder(store, PHONE, org="globex") is None


async def test_concurrent_edits_of_one_contact_lose_nothing(store: Store) -> None:
    doc = await contacts.create_contact(store, principal(), {"firstName": "A", "lastName": "A"})
    edits: list[dict[str, Any]] = [
        {"cellPhone": "+18031230001"},
        {"workPhone": "+18031230002"},
        {"homePhone": "+18031230003"},
        {"otherPhone": "+18031230004"},
        {"workEmail": "w@example.com"},
        {"personalEmail": "p@example.com"},
        {"otherEmail": "o@example.com"},
        {"twitterId": "@a"},
    ]  # each edit is a transaction: a write conflict retries it on a fresh snapshot
    await asyncio.gather(
        *(contacts.update_contact(store, principal(), doc["_id"], edit) for edit in edits)
    )
    stored = await store.contacts.find_one({"_id": doc["_id"]})
    assert stored is not None
    for edit in edits:
        for field, value in edit.items():
            assert field_of(stored, field) == value, field
    assert len(stored["keys"]) == len(edits)
    claimed = await store.identifiers.find({"contactId": doc["_id"]}).to_list()
    assert sorted(c["key"] for c in claimed) == sorted(stored["keys"])


async def test_edits_in_the_same_millisecond_lose_nothing(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    doc = await contacts.create_contact(store, principal(), {"firstName": "A", "lastName": "A"})
    frozen = doc["modifiedAt"]
    monkeypatch.setattr(contacts, "now", lambda: frozen)  # a busy millisecond
    await asyncio.gather(
        contacts.update_contact(store, principal(), doc["_id"], {"cellPhone": "+18031230001"}),
        contacts.update_contact(store, principal(), doc["_id"], {"workEmail": "w@example.com"}),
        contacts.update_contact(store, principal(), doc["_id"], {"title": "Dr"}),
    )
    stored = await store.contacts.find_one({"_id": doc["_id"]})
    assert stored is not None
    assert (stored["cellPhone"], stored["workEmail"], stored["title"]) == (
        "+18031230001",
        "w@example.com",
        "Dr",
    )
    assert sorted(stored["keys"]) == ["EMAIL:w@example.com", "PHONE:+18031230001"]
    assert stored["modifiedAt"] > frozen


async def test_an_edit_never_undoes_a_concurrent_merge(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    doc = await contacts.create_contact(store, principal(), {"firstName": "A", "lastName": "A"})
    real_canonicals = bulk.canonicals

    async def merged_meanwhile(*args: Any, **kwargs: Any) -> dict[str, ContactDoc]:
        heads = await real_canonicals(*args, **kwargs)
        current = heads.get(doc["_id"])
        if current is not None and not current["readOnly"]:
            # between the edit's read and its write, a merge makes the contact an ancestor
            await store.contacts.update_one(
                {"_id": doc["_id"]},
                {"$set": {"readOnly": True, "canonicalId": "elsewhere", "mergeSetId": "set"}},
            )
        return heads

    monkeypatch.setattr(bulk, "canonicals", merged_meanwhile)
    with pytest.raises(NotFound):  # the alias target "elsewhere" does not exist
        await contacts.update_contact(store, principal(), doc["_id"], {"title": "Dr"})
    stored = await store.contacts.find_one({"_id": doc["_id"]})
    assert stored is not None
    assert (stored["readOnly"], stored["canonicalId"], stored["mergeSetId"]) == (
        True,
        "elsewhere",
        "set",
    )
    assert stored["title"] is None


async def test_an_edit_interleaved_with_another_leaves_no_claim_on_a_value_no_longer_listed(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Edit 1 adds a phone and is held just before it claims it; edit 2 removes the phone
    and finishes meanwhile. Claims written after the document (outside its transaction) left
    the phone claimed by a contact that no longer lists it."""
    doc = await contacts.create_contact(store, principal(), {"firstName": "A", "lastName": "A"})
    held, resume = asyncio.Event(), asyncio.Event()
    real_claim_many = bulk_claims.claim_many

    async def claim_many(*args: Any, **kwargs: Any) -> dict[str, str]:
        if any(k == PHONE for k, _, _ in args[2]) and not held.is_set():
            held.set()
            await resume.wait()
        return await real_claim_many(*args, **kwargs)

    monkeypatch.setattr(bulk_claims, "claim_many", claim_many)
    adding = asyncio.create_task(
        contacts.update_contact(store, principal(), doc["_id"], {"cellPhone": "+18031230000"})
    )
    await held.wait()
    removing: BaseException | None = None
    try:  # with one transaction per edit this one conflicts with the held one
        await contacts.update_contact(store, principal(), doc["_id"], {"cellPhone": None})
    except Conflict as exc:
        removing = exc
    resume.set()
    await adding
    stored = await store.contacts.find_one({"_id": doc["_id"]})
    assert stored is not None
    claim = await store.identifiers.find_one({"key": PHONE})
    if PHONE in stored["keys"]:
        assert removing is not None  # the removal was refused, the phone listed and claimed
        assert claim is not None and claim["contactId"] == doc["_id"]
    else:
        assert claim is None, "the phone is claimed by a contact that no longer lists it"
    assert await find_violations(store) == []


async def test_the_checker_flags_a_field_claim_its_holder_no_longer_lists(store: Store) -> None:
    doc = await contacts.create_contact(
        store, principal(), {"firstName": "A", "lastName": "A", "cellPhone": "+18031230000"}
    )
    sticky = await contacts.create_contact(store, principal(), {"firstName": "B", "lastName": "B"})
    await claims.claim(store, "acme", "COOKIE:gc-b", sticky, claims.VIA_INTERACTION)
    assert await find_violations(store) == []  # an interaction's claim need not be listed
    # the document loses the phone, its claim stays behind (what the race above produced)
    await store.contacts.update_one({"_id": doc["_id"]}, {"$set": {"cellPhone": None, "keys": []}})
    assert await find_violations(store, "acme") == [
        f"identifier {PHONE} (org acme) is claimed through a field by contact {doc['_id']}, "
        "which no longer lists it"
    ]
