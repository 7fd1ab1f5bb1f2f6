"""Contact.matchSuggestions: the binding score bands, reasons, exclusions, names, and a
constant number of database commands whatever the directory size."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from resolvers import matching, names
from resolvers.clock import now
from resolvers.contact_fields import ContactType
from resolvers.documents import ContactDoc
from resolvers.errors import BadUserInput
from resolvers.store import Store
from tests.conftest import Api, codes
from tests.factories import add_contact, add_merge_set, auto_contact, contact_docs

PHONE = "+18031230000"


async def suggest(store: Store, subject: ContactDoc, **kw: Any) -> list[matching.Suggestion]:
    return await matching.suggestions(store, "acme", subject, **kw)


async def only(
    store: Store, subject: ContactDoc, other: ContactDoc, **kw: Any
) -> matching.Suggestion:
    found = await suggest(store, subject, min_score=0.0, **kw)
    assert [s.contact["_id"] for s in found] == [other["_id"]]
    return found[0]


async def test_alexis_and_david_sharing_a_number_are_a_possible_match(store: Store) -> None:
    alexis = await add_contact(store, firstName="Alexis", lastName="Smith", workPhone=PHONE)
    david = await add_contact(store, firstName="David", lastName="Jones", cellPhone=PHONE)
    found = await only(store, alexis, david)
    assert 0.5 <= found.score < 0.9
    assert found.reasons == (matching.Reason("SHARED_IDENTIFIER", "workPhone", PHONE),)


async def test_a_shared_number_and_a_similar_name_is_strong(store: Store) -> None:
    smith = await add_contact(store, firstName="Alexis", lastName="Smith", workPhone=PHONE)
    smyth = await add_contact(store, firstName="Alexis", lastName="Smyth", homePhone=PHONE)
    found = await only(store, smith, smyth)
    assert found.score >= 0.9
    assert [r.kind for r in found.reasons] == ["SHARED_IDENTIFIER", "SIMILAR_NAME"]


async def test_two_shared_identifiers_of_different_types_without_names_are_strong(
    store: Store,
) -> None:
    first = await auto_contact(store, cellPhone=PHONE, personalEmail="kim@example.com")
    second = await auto_contact(store, workPhone=PHONE, workEmail="kim@example.com")
    found = await only(store, first, second)
    assert found.score >= 0.9
    assert [(r.kind, r.field) for r in found.reasons] == [
        ("SHARED_IDENTIFIER", "personalEmail"),  # EMAIL before PHONE: priority order
        ("SHARED_IDENTIFIER", "cellPhone"),
    ]


async def test_one_side_unnamed_sharing_a_number_is_possible(store: Store) -> None:
    named = await add_contact(store, firstName="Ann", lastName="Lee", workPhone=PHONE)
    unnamed = await auto_contact(store, cellPhone=PHONE)
    assert 0.5 <= (await only(store, unnamed, named)).score < 0.9


async def test_a_similar_name_and_the_same_address_is_possible(store: Store) -> None:
    address = {"line1": "12 Main St.", "postalCode": "29201"}
    jon = await add_contact(store, firstName="Jonathan", lastName="Reyes", address=address)
    jonny = await add_contact(
        store,
        firstName="Jonathon",
        lastName="Reyes",
        address={"line1": "12 MAIN ST", "postalCode": "29201"},
    )
    found = await only(store, jon, jonny)
    assert 0.5 <= found.score < 0.9
    assert [r.kind for r in found.reasons] == ["SIMILAR_NAME", "SAME_ADDRESS"]


async def test_a_similar_name_alone_is_weak_and_left_out_by_default(store: Store) -> None:
    bob = await add_contact(store, firstName="Bob", lastName="Müller")
    robert = await add_contact(store, firstName="Robert", lastName="Muller")
    found = await only(store, bob, robert)
    assert found.score < 0.5
    assert await suggest(store, bob) == []  # minScore 0.5 by default


async def test_nothing_shared_is_never_a_candidate(store: Store) -> None:
    ann = await add_contact(store, firstName="Ann", lastName="Lee", workPhone=PHONE)
    await add_contact(store, firstName="Zed", lastName="Quinn", workPhone="+18031230001")
    await add_contact(store, firstName="Ann", lastName="Berg")
    assert await suggest(store, ann, min_score=0.0) == []


async def test_blocked_values_are_never_evidence(store: Store) -> None:
    ann = await add_contact(
        store, firstName="Ann", lastName="Lee", workEmail="noreply@acme.example"
    )
    await add_contact(store, firstName="Zed", lastName="Quinn", workEmail="noreply@acme.example")
    assert await suggest(store, ann, min_score=0.0) == []


async def test_a_value_claimed_through_an_interaction_is_evidence(store: Store) -> None:
    ann = await add_contact(store, firstName="Ann", lastName="Lee", workPhone=PHONE)
    caller = await auto_contact(store, facebookId="ann.lee")
    await store.identifiers.insert_one(
        {
            "org": "acme",
            "key": f"PHONE:{PHONE}",
            "type": "PHONE",
            "value": PHONE,
            "contactId": caller["_id"],
            "claimedAt": now(),
            "via": "interaction",
            "expiresAt": None,
        }
    )
    found = await only(store, ann, caller)
    assert found.reasons[0] == matching.Reason("SHARED_IDENTIFIER", "workPhone", PHONE)
    # and from the other side: the caller claims it, Ann lists it
    back = await only(store, caller, ann)
    assert back.reasons[0] == matching.Reason("SHARED_IDENTIFIER", None, PHONE)


async def test_own_merge_set_ancestors_and_expired_contacts_are_left_out(store: Store) -> None:
    canonical, ancestors = await add_merge_set(store, 3)
    await store.contacts.update_many(
        {"_id": {"$in": [canonical["_id"], *(a["_id"] for a in ancestors)]}},
        {"$set": {"workPhone": PHONE, "keys": [f"PHONE:{PHONE}"]}},
    )
    canonical["keys"] = [f"PHONE:{PHONE}"]
    await auto_contact(store, cellPhone=PHONE, expires_at=now() - timedelta(minutes=1))
    assert await suggest(store, canonical, min_score=0.0) == []
    live = await auto_contact(store, cellPhone=PHONE)
    assert [s.contact["_id"] for s in await suggest(store, canonical)] == [live["_id"]]


async def test_best_first_and_at_most_first(store: Store) -> None:
    ann = await add_contact(
        store, firstName="Ann", lastName="Lee", workPhone=PHONE, workEmail="ann@example.com"
    )
    strong = await add_contact(
        store, firstName="Anne", lastName="Lee", cellPhone=PHONE, personalEmail="ann@example.com"
    )
    weak = await add_contact(store, firstName="Zed", lastName="Quinn", cellPhone=PHONE)
    found = await suggest(store, ann)
    assert [s.contact["_id"] for s in found] == [strong["_id"], weak["_id"]]
    assert found[0].score > found[1].score
    assert [s.contact["_id"] for s in await suggest(store, ann, first=1)] == [strong["_id"]]


@pytest.mark.parametrize("first,min_score", [(0, 0.5), (101, 0.5), (10, -0.1), (10, 1.01)])
async def test_bad_arguments_are_bad_user_input(store: Store, first: int, min_score: float) -> None:
    ann = await add_contact(store)
    with pytest.raises(BadUserInput):
        await suggest(store, ann, first=first, min_score=min_score)


@pytest.mark.parametrize(
    "a,b,expected",
    [
        (("Jonathan", "Smith"), ("Jonathon", "Smtih"), names.NameMatch.SIMILAR),
        (("Bill", "Gates"), ("William", "Gates"), names.NameMatch.SIMILAR),
        (("Liz", "Taylor"), ("Elizabeth", "Taylor"), names.NameMatch.SIMILAR),
        (("Kate", "Bush"), ("Katherine", "Bush"), names.NameMatch.SIMILAR),
        (("José", "Núñez"), ("jose", "NUNEZ"), names.NameMatch.SIMILAR),
        (("Mary-Jane", "O'Brien"), ("Mary Jane", "OBrien"), names.NameMatch.SIMILAR),
        (("Alexis", "Smith"), ("David", "Jones"), names.NameMatch.CONFLICTING),
        (("Ann", "Lee"), ("Ann", "Lei"), names.NameMatch.CONFLICTING),  # too short for a typo
        (("Ann", None), (None, "Lee"), names.NameMatch.UNKNOWN),
    ],
)
def test_names(
    a: tuple[str | None, str | None], b: tuple[str | None, str | None], expected: names.NameMatch
) -> None:
    left = {"firstName": a[0], "lastName": a[1]}
    right = {"firstName": b[0], "lastName": b[1]}
    assert names.compare_names(left, right) is expected
    assert names.compare_names(right, left) is expected


QUERY = """query($id: ID!, $first: Int, $min: Float) {
  contact(id: $id) {
    matchSuggestions(first: $first, minScore: $min) {
      score contact { id firstName } reasons { kind field value }
    }
  }
}"""


async def test_over_the_api(api: Api, store: Store) -> None:
    alexis = await add_contact(store, firstName="Alexis", lastName="Smith", workPhone=PHONE)
    david = await add_contact(store, firstName="David", lastName="Jones", cellPhone=PHONE)
    data = await api.gql(QUERY, {"id": alexis["_id"]})
    [suggestion] = data["contact"]["matchSuggestions"]
    assert suggestion["contact"] == {"id": david["_id"], "firstName": "David"}
    assert suggestion["reasons"] == [
        {"kind": "SHARED_IDENTIFIER", "field": "workPhone", "value": PHONE}
    ]
    assert (await api.gql(QUERY, {"id": alexis["_id"], "min": 0.9}))["contact"] == {
        "matchSuggestions": []
    }
    _, errors = await api.gql_error(QUERY, {"id": alexis["_id"], "first": 0})
    assert codes(errors) == ["BAD_USER_INPUT"]
    assert (await api.gql(QUERY, {"id": "unknown"}))["contact"] is None


async def _directory(store: Store, size: int) -> ContactDoc:
    """``size`` unrelated contacts, plus a subject with one duplicate of each kind."""
    docs = contact_docs(store, size)
    for n, doc in enumerate(docs):  # every one with a number, an email and an address
        doc["keys"] = [f"PHONE:+1803555{n:04d}", f"EMAIL:p{n}@example.com"]
        doc["matchKeys"] = names.match_keys(
            {**doc, "address": {"line1": f"{n} Elm", "postalCode": "1"}}
        )
    await store.contacts.insert_many(docs)
    subject = await add_contact(
        store,
        firstName="Ann",
        lastName="Lee",
        workPhone=PHONE,
        address={"line1": "1 Main", "postalCode": "2"},
    )
    await add_contact(store, firstName="Zed", lastName="Quinn", cellPhone=PHONE)
    await add_contact(
        store, firstName="Anne", lastName="Lee", address={"line1": "1 Main", "postalCode": "2"}
    )
    await auto_contact(store, ContactType.IDENTIFIED, facebookId="x")  # claims something
    return subject


@pytest.mark.parametrize("size", [100, 2000])
async def test_the_commands_of_one_contacts_suggestions_do_not_grow_with_the_directory(
    counted: Any, store: Store, size: int
) -> None:
    api, log = counted
    subject = await _directory(store, size)
    log.clear()
    data = await api.gql(QUERY, {"id": subject["_id"]})
    assert len(data["contact"]["matchSuggestions"]) == 2
    commands = log.names()
    print(f"\nmatchSuggestions with {size} contacts: {len(commands)} commands {commands}")
    # the contact, then: claims, name/address keys, block list; holders, listers
    assert len(commands) <= 6, commands
    assert "getMore" not in commands
