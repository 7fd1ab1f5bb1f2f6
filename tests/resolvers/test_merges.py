"""Merge and unmerge, without GraphQL: merge sets, identifiers, exact undo, races, invariants."""

from __future__ import annotations

import asyncio
import random
from datetime import timedelta
from typing import Any

import pytest

from resolvers import claims, contacts, merges
from resolvers.clock import now
from resolvers.contact_fields import ContactType
from resolvers.documents import ContactDoc
from resolvers.errors import BadUserInput, DomainError, MergeNotAllowed, NotFound
from resolvers.invariants import find_violations
from resolvers.store import Doc, Store
from tests.conftest import principal
from tests.factories import auto_contact as auto

P = principal()
COLLECTIONS = ("contacts", "identifiers", "conversations", "merge_sets", "notes")
PHONE_1 = "+18031230001"
PHONE_2 = "+18031230002"
PHONE_3 = "+18031230003"


async def curated(store: Store, first: str = "Ada", **fields: Any) -> ContactDoc:
    return await contacts.create_contact(
        store, P, {"firstName": first, "lastName": "Lovelace", **fields}
    )


async def snapshot(store: Store) -> dict[str, list[Doc]]:
    """Every document of every collection, as plain documents (compared whole)."""
    return {name: await store.db[name].find().sort("_id", 1).to_list() for name in COLLECTIONS}


async def reread(store: Store, contact_id: str) -> ContactDoc:
    doc = await store.contacts.find_one({"_id": contact_id})
    assert doc is not None
    return doc


async def holders(store: Store) -> dict[str, tuple[str, str]]:
    """key -> (contactId, via) of every identifier."""
    return {d["key"]: (d["contactId"], d["via"]) for d in await store.identifiers.find().to_list()}


async def no_violations(store: Store) -> None:
    assert await find_violations(store) == []


# --- merge --------------------------------------------------------------------------------


async def test_identified_caller_merged_into_curated_contact(store: Store) -> None:
    ada = await curated(store, workPhone=PHONE_1, workEmail="ada@example.com")
    caller = await auto(store, cellPhone=PHONE_2)
    merged = await merges.merge_contacts(store, P, [caller["_id"], ada["_id"]])

    assert merged["_id"] not in (ada["_id"], caller["_id"])
    assert merged["type"] == ContactType.CURATED
    assert (merged["firstName"], merged["lastName"]) == ("Ada", "Lovelace")
    assert (merged["workPhone"], merged["cellPhone"]) == (PHONE_1, PHONE_2)
    assert merged["workEmail"] == "ada@example.com"
    assert merged["expiresAt"] is None
    assert merged["since"] == ada["since"]  # as old as its oldest member
    assert merged == await reread(store, merged["_id"])
    for old in (ada, caller):
        doc = await reread(store, old["_id"])
        assert doc["readOnly"] is True
        assert doc["canonicalId"] == merged["_id"]
        assert doc["mergeSetId"] == merged["mergeSetId"]
        assert doc["expiresAt"] is None
    assert await holders(store) == {
        f"PHONE:{PHONE_1}": (merged["_id"], "field"),
        f"PHONE:{PHONE_2}": (merged["_id"], "field"),
        "EMAIL:ada@example.com": (merged["_id"], "field"),
    }
    assert all(d["expiresAt"] is None for d in await store.identifiers.find().to_list())
    merge_set = await merges.get_merge_set(store, "acme", caller["_id"])
    assert merge_set is not None
    assert merge_set["canonicalId"] == merged["_id"]
    assert merge_set["memberIds"] == [caller["_id"], ada["_id"], merged["_id"]]
    [event] = merge_set["history"]
    assert (event["kind"], event["by"], event["canonicalId"]) == ("MERGE", "agent-1", merged["_id"])
    assert event["inputIds"] == [caller["_id"], ada["_id"]]
    await no_violations(store)


async def test_fields_come_from_the_most_recently_modified_input(store: Store) -> None:
    old = await curated(store, "Ada", title="Countess", cellPhone=PHONE_1, personalEmail="a@x.io")
    new = await auto(store, cellPhone=PHONE_2, personalEmail="b@x.io", twitterId="@ada")
    merged = await merges.merge_contacts(store, P, [old["_id"], new["_id"]])
    assert merged["firstName"] == "Ada"  # only the older one has a name
    assert merged["title"] == "Countess"
    assert merged["twitterId"] == "@ada"
    # the newer input wins the slot, the losing value moves to a free field of its kind
    assert (merged["cellPhone"], merged["workPhone"]) == (PHONE_2, PHONE_1)
    assert (merged["personalEmail"], merged["workEmail"]) == ("b@x.io", "a@x.io")


async def test_losing_phone_is_dropped_from_fields_when_no_slot_is_free(store: Store) -> None:
    full = await auto(
        store, cellPhone=PHONE_1, workPhone=PHONE_2, homePhone=PHONE_3, otherPhone="+18031230004"
    )
    extra = await auto(store, cellPhone="+18031230009")
    merged = await merges.merge_contacts(store, P, [full["_id"], extra["_id"]])
    assert merged["cellPhone"] == "+18031230009"
    assert [merged[f] for f in ("workPhone", "homePhone", "otherPhone")] == [
        PHONE_2,
        PHONE_3,
        "+18031230004",
    ]
    # the set still owns the identifier; no field lists it, so it is held via "merge"
    assert (await holders(store))[f"PHONE:{PHONE_1}"] == (merged["_id"], "merge")
    await no_violations(store)


async def test_value_override_wins_and_is_validated(store: Store) -> None:
    a = await auto(store, cellPhone=PHONE_1, firstName="Al")
    b = await auto(store, cellPhone=PHONE_2, firstName="Bo")
    before = await snapshot(store)
    with pytest.raises(BadUserInput):
        await merges.merge_contacts(store, P, [a["_id"], b["_id"]], {"workEmail": "not-an-email"})
    with pytest.raises(BadUserInput):
        await merges.merge_contacts(store, P, [a["_id"], b["_id"]], {"nickname": "x"})
    assert await snapshot(store) == before
    merged = await merges.merge_contacts(
        store,
        P,
        [a["_id"], b["_id"]],
        {"firstName": "Alice", "cellPhone": "(803) 123-0003", "workEmail": " Alice@Example.COM "},
    )
    assert merged["firstName"] == "Alice"
    assert merged["workEmail"] == "alice@example.com"
    # the override took cellPhone; both inputs' phones moved to free phone fields
    assert merged["cellPhone"] == PHONE_3
    assert {merged["workPhone"], merged["homePhone"]} == {PHONE_1, PHONE_2}
    keys = await holders(store)
    assert keys[f"PHONE:{PHONE_3}"] == (merged["_id"], "field")
    assert keys["EMAIL:alice@example.com"] == (merged["_id"], "field")
    await no_violations(store)


async def test_override_clearing_a_field_keeps_it_empty(store: Store) -> None:
    a = await auto(store, cellPhone=PHONE_1)
    b = await auto(store, twitterId="@b")
    merged = await merges.merge_contacts(store, P, [a["_id"], b["_id"]], {"cellPhone": None})
    assert merged["cellPhone"] is None
    assert merged["workPhone"] == PHONE_1  # the losing value still moves to a free field


async def test_external_ids_are_joined_and_opt_out_is_kept(store: Store) -> None:
    a = await auto(store, externalIds=[{"source": "crm", "value": "1"}], surveyOptOut=True)
    b = await auto(store, externalIds=[{"source": "erp", "value": "2"}])
    merged = await merges.merge_contacts(store, P, [a["_id"], b["_id"]])
    assert merged["externalIds"] == [
        {"source": "erp", "value": "2"},
        {"source": "crm", "value": "1"},
    ]
    assert merged["surveyOptOut"] is True


@pytest.mark.parametrize(
    ("kinds", "expected"),
    [
        ((ContactType.CURATED, ContactType.EPHEMERAL), ContactType.CURATED),
        ((ContactType.IDENTIFIED, ContactType.EPHEMERAL), ContactType.IDENTIFIED),
        ((ContactType.EPHEMERAL, ContactType.EPHEMERAL), ContactType.EPHEMERAL),
    ],
)
async def test_type_of_the_new_canonical(
    store: Store, kinds: tuple[ContactType, ContactType], expected: ContactType
) -> None:
    docs: list[ContactDoc] = []
    for i, kind in enumerate(kinds):
        if kind == ContactType.CURATED:
            docs.append(await curated(store))
        elif kind == ContactType.IDENTIFIED:
            docs.append(await auto(store, kind, cellPhone=f"+1803123000{i}"))
        else:
            docs.append(await auto(store, kind))
    merged = await merges.merge_contacts(store, P, [d["_id"] for d in docs])
    assert merged["type"] == expected
    assert merged["expiresAt"] is None
    await no_violations(store)


async def test_interaction_claims_stay_sticky_and_field_claims_follow_the_fields(
    store: Store,
) -> None:
    a = await auto(store, cellPhone=PHONE_1)
    b = await auto(store, ContactType.EPHEMERAL)
    await claims.claim(store, "acme", "COOKIE:c-1", b, claims.VIA_INTERACTION)
    merged = await merges.merge_contacts(store, P, [a["_id"], b["_id"]])
    assert await holders(store) == {
        f"PHONE:{PHONE_1}": (merged["_id"], "field"),
        "COOKIE:c-1": (merged["_id"], "interaction"),
    }


async def test_new_canonical_takes_values_by_the_field_rule(store: Store) -> None:
    # the override lists a phone another, younger contact holds: the set is older, it wins
    a = await auto(store, cellPhone=PHONE_1)
    b = await auto(store, cellPhone=PHONE_2)
    younger = await auto(store, cellPhone=PHONE_3)
    merged = await merges.merge_contacts(store, P, [a["_id"], b["_id"]], {"homePhone": PHONE_3})
    assert (await holders(store))[f"PHONE:{PHONE_3}"] == (merged["_id"], "field")
    assert younger["since"] > merged["since"]
    await no_violations(store)


@pytest.mark.parametrize("count", [0, 1, 26])
async def test_two_to_twenty_five_ids(store: Store, count: int) -> None:
    docs = [await auto(store, ContactType.EPHEMERAL) for _ in range(3)]
    with pytest.raises(BadUserInput):
        await merges.merge_contacts(store, P, [docs[i % 3]["_id"] for i in range(count)])


async def test_ids_of_one_contact_are_not_a_merge(store: Store) -> None:
    a = await auto(store, ContactType.EPHEMERAL)
    b = await auto(store, ContactType.EPHEMERAL)
    with pytest.raises(BadUserInput):
        await merges.merge_contacts(store, P, [a["_id"], a["_id"]])
    merged = await merges.merge_contacts(store, P, [a["_id"], b["_id"]])
    with pytest.raises(BadUserInput):  # an ancestor and its canonical are one contact
        await merges.merge_contacts(store, P, [a["_id"], merged["_id"], b["_id"]])


async def test_at_most_one_curated_contact(store: Store) -> None:
    a = await curated(store, "Ada")
    b = await curated(store, "Bea")
    c = await auto(store, ContactType.EPHEMERAL)
    with pytest.raises(MergeNotAllowed):
        await merges.merge_contacts(store, P, [a["_id"], b["_id"], c["_id"]])
    merged = await merges.merge_contacts(store, P, [a["_id"], c["_id"]])
    with pytest.raises(MergeNotAllowed):  # the set's canonical is curated now
        await merges.merge_contacts(store, P, [c["_id"], b["_id"]])
    assert merged["type"] == ContactType.CURATED


async def test_a_set_has_at_most_52_members(store: Store) -> None:
    docs = [await auto(store, ContactType.EPHEMERAL) for _ in range(50)]
    first = await merges.merge_contacts(store, P, [d["_id"] for d in docs[:25]])  # 26 members
    big = await merges.merge_contacts(store, P, [first["_id"], *(d["_id"] for d in docs[25:48])])
    full = await merges.merge_contacts(store, P, [big["_id"], docs[48]["_id"]])
    merge_set = await merges.get_merge_set(store, "acme", full["_id"])
    assert merge_set is not None
    assert len(merge_set["memberIds"]) == 52
    before = await snapshot(store)
    with pytest.raises(MergeNotAllowed):
        await merges.merge_contacts(store, P, [docs[0]["_id"], docs[49]["_id"]])
    assert await snapshot(store) == before
    await no_violations(store)


async def test_unknown_and_other_org_ids_are_not_found(store: Store) -> None:
    a = await auto(store, ContactType.EPHEMERAL)
    other = await auto(store, ContactType.EPHEMERAL, org="globex")
    for ids in (
        [a["_id"], "000000000000000000000000"],
        [a["_id"], other["_id"]],
        [a["_id"], "x" * 5000],
    ):
        with pytest.raises(NotFound):
            await merges.merge_contacts(store, P, ids)
    with pytest.raises(NotFound):
        await merges.unmerge_contacts(store, P, other["_id"])


async def test_expired_contacts_cannot_be_merged(store: Store) -> None:
    a = await auto(store, ContactType.EPHEMERAL)
    gone = await auto(store, ContactType.EPHEMERAL, expires_at=now() - timedelta(seconds=1))
    with pytest.raises(NotFound):
        await merges.merge_contacts(store, P, [a["_id"], gone["_id"]])


# --- growing sets ---------------------------------------------------------------------------


async def test_merging_a_member_grows_its_set(store: Store) -> None:
    a = await auto(store, cellPhone=PHONE_1)
    b = await auto(store, cellPhone=PHONE_2)
    c = await auto(store, cellPhone=PHONE_3)
    first = await merges.merge_contacts(store, P, [a["_id"], b["_id"]])
    second = await merges.merge_contacts(store, P, [c["_id"], a["_id"]])  # an ancestor id
    assert second["mergeSetId"] == first["mergeSetId"]
    assert await store.merge_sets.count_documents({}) == 1
    merge_set = await merges.get_merge_set(store, "acme", b["_id"])
    assert merge_set is not None
    assert merge_set["canonicalId"] == second["_id"]
    assert merge_set["memberIds"] == [a["_id"], b["_id"], first["_id"], c["_id"], second["_id"]]
    assert [(e["kind"], e["inputIds"], e["canonicalId"]) for e in merge_set["history"]] == [
        ("MERGE", [a["_id"], b["_id"]], first["_id"]),
        ("MERGE", [c["_id"], first["_id"]], second["_id"]),
    ]
    for member in (a, b, first, c):
        doc = await reread(store, member["_id"])
        assert (doc["readOnly"], doc["canonicalId"]) == (True, second["_id"])
    assert {h for h, _ in (await holders(store)).values()} == {second["_id"]}
    await no_violations(store)


async def test_merging_two_sets_makes_one(store: Store) -> None:
    a, b, c, d = [await auto(store, cellPhone=f"+1803123000{i}") for i in range(4)]
    left = await merges.merge_contacts(store, P, [a["_id"], b["_id"]])
    right = await merges.merge_contacts(store, P, [c["_id"], d["_id"]])
    before = await snapshot(store)
    merged = await merges.merge_contacts(store, P, [b["_id"], d["_id"]])
    [merge_set] = await store.merge_sets.find().to_list()
    assert merge_set["canonicalId"] == merged["_id"]
    assert set(merge_set["memberIds"]) == {x["_id"] for x in (a, b, c, d, left, right, merged)}
    assert [e["canonicalId"] for e in merge_set["history"]] == [
        left["_id"],
        right["_id"],
        merged["_id"],
    ]
    await no_violations(store)
    await merges.unmerge_contacts(store, P, a["_id"])
    after = await snapshot(store)
    assert after["contacts"] == before["contacts"]
    assert after["identifiers"] == before["identifiers"]
    assert without_history(after["merge_sets"]) == without_history(before["merge_sets"])
    await no_violations(store)


def without_history(sets: list[Doc]) -> list[Doc]:
    return [{k: v for k, v in s.items() if k != "history"} for s in sets]


# --- unmerge --------------------------------------------------------------------------------


async def test_unmerge_restores_the_state_before_the_merge_exactly(store: Store) -> None:
    ada = await curated(store, workPhone=PHONE_1)
    caller = await auto(store, cellPhone=PHONE_2, personalEmail="c@x.io")
    await claims.claim(store, "acme", "COOKIE:c-1", caller, claims.VIA_INTERACTION)
    await contacts.add_note(store, P, ada["_id"], "VIP")
    before = await snapshot(store)
    merged = await merges.merge_contacts(store, P, [ada["_id"], caller["_id"]], {"lastName": "K"})
    assert await snapshot(store) != before
    restored = await merges.unmerge_contacts(store, P, caller["_id"])
    assert [d["_id"] for d in restored] == [ada["_id"], caller["_id"]]
    assert await snapshot(store) == before  # nothing differs, not even claimedAt or the set
    assert await contacts.get_exact(store, "acme", merged["_id"]) is None
    await no_violations(store)


async def test_repeated_unmerges_walk_back_the_tree(store: Store) -> None:
    a, b, c, d = [await auto(store, cellPhone=f"+1803123000{i}") for i in range(4)]
    states = [await snapshot(store)]
    first = await merges.merge_contacts(store, P, [a["_id"], b["_id"]])
    states.append(await snapshot(store))
    second = await merges.merge_contacts(store, P, [first["_id"], c["_id"]])
    states.append(await snapshot(store))
    third = await merges.merge_contacts(store, P, [d["_id"], b["_id"]])

    restored = await merges.unmerge_contacts(store, P, a["_id"])
    assert [r["_id"] for r in restored] == [d["_id"], second["_id"]]
    now_state = await snapshot(store)
    assert now_state["contacts"] == states[2]["contacts"]
    assert now_state["identifiers"] == states[2]["identifiers"]
    [merge_set] = now_state["merge_sets"]
    [previous] = states[2]["merge_sets"]
    assert without_history([merge_set]) == without_history([previous])
    assert merge_set["history"][:2] == previous["history"]
    undone, undo = merge_set["history"][2:]
    assert (undone["kind"], undone["canonicalId"]) == ("MERGE", third["_id"])
    assert "inputs" not in undone  # what undoing needed is gone with the undo
    assert (undo["kind"], undo["canonicalId"], undo["inputIds"]) == (
        "UNMERGE",
        third["_id"],
        [d["_id"], second["_id"]],
    )
    await no_violations(store)

    await merges.unmerge_contacts(store, P, b["_id"])
    now_state = await snapshot(store)
    assert now_state["contacts"] == states[1]["contacts"]
    assert now_state["identifiers"] == states[1]["identifiers"]
    [merge_set] = now_state["merge_sets"]
    assert merge_set["canonicalId"] == first["_id"]
    assert [(e["kind"], e["canonicalId"]) for e in merge_set["history"]] == [
        ("MERGE", first["_id"]),
        ("MERGE", second["_id"]),
        ("MERGE", third["_id"]),
        ("UNMERGE", third["_id"]),
        ("UNMERGE", second["_id"]),
    ]
    await no_violations(store)

    await merges.unmerge_contacts(store, P, first["_id"])
    assert await snapshot(store) == states[0]  # the set is gone with its last merge
    with pytest.raises(BadUserInput):
        await merges.unmerge_contacts(store, P, a["_id"])
    await no_violations(store)


async def test_unmerge_gives_later_claims_to_the_oldest_lister(store: Store) -> None:
    a = await auto(store, cellPhone=PHONE_1)
    b = await auto(store, cellPhone=PHONE_2)
    merged = await merges.merge_contacts(store, P, [a["_id"], b["_id"]])
    # after the merge: the canonical lists a new phone, a younger contact lists it too, and an
    # interaction stitches a cookie to the canonical
    await contacts.update_contact(store, P, merged["_id"], {"homePhone": PHONE_3})
    younger = await auto(store, cellPhone=PHONE_3)
    await claims.claim(store, "acme", "COOKIE:c-9", merged, claims.VIA_INTERACTION)
    assert (await holders(store))[f"PHONE:{PHONE_3}"] == (merged["_id"], "field")

    await merges.unmerge_contacts(store, P, merged["_id"])
    assert await holders(store) == {
        f"PHONE:{PHONE_1}": (a["_id"], "field"),
        f"PHONE:{PHONE_2}": (b["_id"], "field"),
        f"PHONE:{PHONE_3}": (younger["_id"], "field"),
    }
    await no_violations(store)


async def test_unmerge_reclaims_what_an_input_lists_and_the_canonical_lost(store: Store) -> None:
    a = await auto(store, cellPhone=PHONE_1)
    b = await auto(store, cellPhone=PHONE_2)
    merged = await merges.merge_contacts(store, P, [a["_id"], b["_id"]])
    await contacts.update_contact(store, P, merged["_id"], {"workPhone": None})  # drops PHONE_1
    assert f"PHONE:{PHONE_1}" not in await holders(store)
    await merges.unmerge_contacts(store, P, a["_id"])
    assert (await holders(store))[f"PHONE:{PHONE_1}"] == (a["_id"], "field")
    await no_violations(store)


async def test_unmerge_renews_an_expiry_that_passed_meanwhile(store: Store) -> None:
    a = await auto(store, cellPhone=PHONE_1)
    b = await auto(store, cellPhone=PHONE_2)
    merged = await merges.merge_contacts(store, P, [a["_id"], b["_id"]])
    # as if the merge had happened long ago: the first input's old expiry has passed since
    await store.merge_sets.update_one(
        {"_id": merged["mergeSetId"]},
        {"$set": {"history.0.inputs.0.contact.expiresAt": now() - timedelta(days=1)}},
    )
    restored = await merges.unmerge_contacts(store, P, b["_id"])
    expiry = restored[0]["expiresAt"]
    assert expiry is not None
    assert expiry > now() + timedelta(days=59)
    assert restored[1]["expiresAt"] == b["expiresAt"]
    claim = await store.identifiers.find_one({"key": f"PHONE:{PHONE_1}"})
    assert claim is not None
    assert (claim["contactId"], claim["expiresAt"]) == (a["_id"], expiry)
    await no_violations(store)


async def test_notes_written_on_the_canonical_stay_with_the_oldest_input(store: Store) -> None:
    a = await auto(store, cellPhone=PHONE_1)
    b = await auto(store, cellPhone=PHONE_2)
    merged = await merges.merge_contacts(store, P, [b["_id"], a["_id"]])
    note = await contacts.add_note(store, P, merged["_id"], "called back")
    await merges.unmerge_contacts(store, P, a["_id"])
    moved = await store.notes.find_one({"_id": note["_id"]})
    assert moved is not None
    assert moved["contactId"] == a["_id"]


async def test_unmerge_needs_a_merged_contact(store: Store) -> None:
    a = await auto(store, ContactType.EPHEMERAL)
    with pytest.raises(BadUserInput):
        await merges.unmerge_contacts(store, P, a["_id"])
    with pytest.raises(NotFound):
        await merges.unmerge_contacts(store, P, "000000000000000000000000")


# --- races ----------------------------------------------------------------------------------


async def test_racing_overlapping_merges_keep_every_invariant(store: Store) -> None:
    rng = random.Random(4)
    docs = [await curated(store, f"C{i}", cellPhone=f"+1803555000{i}") for i in range(2)]
    docs += [await auto(store, cellPhone=f"+1803555001{i}") for i in range(6)]
    docs += [await auto(store, ContactType.EPHEMERAL) for _ in range(4)]
    ids = [d["_id"] for d in docs]

    async def attempt(picked: list[str]) -> ContactDoc | str:
        try:
            return await merges.merge_contacts(store, P, picked)
        except DomainError as exc:
            return exc.code

    outcomes = await asyncio.gather(
        *(attempt(rng.sample(ids, rng.choice([2, 2, 3]))) for _ in range(16))
    )
    merged = [o for o in outcomes if isinstance(o, dict)]
    failed = [o for o in outcomes if isinstance(o, str)]
    assert merged, outcomes
    assert set(failed) <= {"CONFLICT", "MERGE_NOT_ALLOWED", "BAD_USER_INPUT"}
    await no_violations(store)
    # every successful merge left exactly one new contact behind, in some set
    assert await store.contacts.count_documents({}) == len(docs) + len(merged)

    # and unmerges racing merges too
    async def undo(contact_id: str) -> list[ContactDoc] | str:
        try:
            return await merges.unmerge_contacts(store, P, contact_id)
        except DomainError as exc:
            return exc.code

    mixed = await asyncio.gather(
        *(undo(rng.choice(ids)) for _ in range(6)),
        *(attempt(rng.sample(ids, 2)) for _ in range(6)),
    )
    assert {o for o in mixed if isinstance(o, str)} <= {
        "CONFLICT",
        "MERGE_NOT_ALLOWED",
        "BAD_USER_INPUT",
    }
    await no_violations(store)


# --- the invariant checker itself -------------------------------------------------------------


async def test_find_violations_reports_broken_data(store: Store) -> None:
    a = await auto(store, cellPhone=PHONE_1)
    b = await auto(store, cellPhone=PHONE_2)
    merged = await merges.merge_contacts(store, P, [a["_id"], b["_id"]])
    await no_violations(store)
    # an identifier pointing at an ancestor, a contact in two sets, an auto-created contact
    # that never expires, an identifier stored twice
    await store.identifiers.update_one(
        {"key": f"PHONE:{PHONE_1}"}, {"$set": {"contactId": a["_id"]}}
    )
    # deliberately broken documents: written untyped, past the collections' shapes
    await store.db["merge_sets"].insert_one(
        {"_id": "other", "org": "acme", "canonicalId": merged["_id"], "memberIds": [merged["_id"]]}
    )
    lonely = await auto(store, ContactType.EPHEMERAL)
    await store.contacts.update_one({"_id": lonely["_id"]}, {"$set": {"expiresAt": None}})
    await store.identifiers.drop_index("claim")
    await store.db["identifiers"].insert_one(
        {"org": "acme", "key": f"PHONE:{PHONE_2}", "contactId": merged["_id"], "expiresAt": None}
    )
    found = "\n".join(await find_violations(store))
    assert f"points to ancestor {a['_id']}" in found
    assert f"contact {merged['_id']} is in 2 merge sets" in found
    assert (
        f"contact {lonely['_id']} (org acme) is auto-created (EPHEMERAL) and never expires" in found
    )
    assert f"identifier PHONE:{PHONE_2} (org acme) is stored 2 times" in found
    assert await find_violations(store, "globex") == []
