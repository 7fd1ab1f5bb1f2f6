"""GET /export/person/{contactId}.json: everything held about a person, as the API shows it."""

from __future__ import annotations

from typing import Any

import orjson
from strawberry.types.base import get_object_definition, has_object_definition

from gateway.auth import ALL_PERMISSIONS
from gateway.person_export import person_document, plain_fields
from resolvers import person_export
from resolvers.store import Store
from schema.changes import Change
from schema.contact import Contact, Identifier, Note
from schema.conversation import Conversation
from schema.merge import MergeEvent
from schema.web import WebEvent, WebSession
from tests.conftest import Api
from tests.people import bystander, relink, seed_person

VIEW = "externalContacts:contact:view"
VIEW_ALL = "externalContacts:conversation:viewAll"
SECTIONS = [
    "contacts",
    "identifiers",
    "notes",
    "mergeHistory",
    "conversations",
    "webSessions",
    "changes",
]


def selection(view_type: type) -> str:
    """The GraphQL selection of every field of ``view_type`` that needs no resolver (what the
    export writes), nested objects with their own such fields."""
    fields = {f.python_name: f for f in get_object_definition(view_type, strict=True).fields}
    parts = []
    for attr, name in plain_fields(view_type):
        inner = _object_type(fields[attr].type)
        parts.append(f"{name} {{ {selection(inner)} }}" if inner is not None else name)
    return " ".join(parts)


def test_the_selection_reads_the_scalar_and_nested_fields() -> None:
    contact = selection(Contact)
    for name in ("id", "firstName", "workPhone", "expiresAt", "readOnly"):
        assert f" {name} " in f" {contact} "
    assert "externalIds { source value }" in contact
    assert "address { line1 line2 city state postalCode countryCode }" in contact
    assert "doc" not in contact and "canonical" not in contact


def _object_type(annotation: Any) -> type | None:
    """The Strawberry object type inside a field's type (lists and optionals unwrapped)."""
    while hasattr(annotation, "of_type"):
        annotation = annotation.of_type
    return annotation if has_object_definition(annotation) else None


PERSON = f"""query($id: ID!) {{
  contact(id: $id) {{
    mergeSet {{ contacts {{ {selection(Contact)}
      identifiers {{ {selection(Identifier)} contact {{ id }} }}
      mergeHistory {{ id: canonicalId {selection(MergeEvent)} }} }} }}
    notes {{ {selection(Note)} }}
  }}
  journey(contactId: $id) {{
    conversations(first: 1000) {{ edges {{ node {{ {selection(Conversation)} }} }} }}
  }}
  changes(first: 500) {{ edges {{ node {{ {selection(Change)} }} }} }}
}}"""


async def export(api: Api, contact_id: str, **token: Any) -> Any:
    response = await api.http.get(
        f"/export/person/{contact_id}.json",
        headers={"Authorization": f"Bearer {api.token(**token)}"},
    )
    return response


def by_id(items: list[dict[str, Any]], key: str = "id") -> list[dict[str, Any]]:
    return sorted(items, key=lambda item: str(item[key]))


async def test_the_export_holds_what_the_api_returns_for_the_person(api: Api, store: Store) -> None:
    person = await seed_person(api)
    await relink(api, person)
    await bystander(api)
    ancestor = person.contact_ids[0]  # the curated contact, an ancestor now
    response = await export(api, ancestor)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("application/json")
    document = orjson.loads(response.content)
    assert list(document) == ["contactId", "exportedAt", *SECTIONS]
    assert document["contactId"] == person.canonical_id

    data = await api.gql(PERSON, {"id": ancestor})
    members = data["contact"]["mergeSet"]["contacts"]
    api_contacts = [
        {k: v for k, v in m.items() if k not in ("identifiers", "mergeHistory")} for m in members
    ]
    assert by_id(document["contacts"]) == by_id(api_contacts)
    assert sorted(c["id"] for c in document["contacts"]) == sorted(person.contact_ids)
    api_identifiers = [i for m in members for i in m["identifiers"]]
    assert by_id(document["identifiers"]) == by_id(api_identifiers)
    assert len(document["identifiers"]) == 7
    assert document["notes"] == data["contact"]["notes"]  # newest first, both
    history: dict[tuple[str, str], dict[str, Any]] = {}
    for member in members:
        for event in member["mergeHistory"]:
            history[(event["at"], event.pop("id"))] = event
    assert document["mergeHistory"] == [history[k] for k in sorted(history)]
    assert len(document["mergeHistory"]) == 2
    edges = data["journey"]["conversations"]["edges"]
    assert document["conversations"] == [e["node"] for e in edges]  # newest first, both
    assert len(document["conversations"]) == 4
    members = set(person.contact_ids)
    feed = [e["node"] for e in data["changes"]["edges"]]
    assert document["changes"] == [c for c in feed if members & set(c["contactIds"])]
    kinds = {c["kind"] for c in document["changes"]}
    assert {"CONTACT_CREATED", "CONTACTS_MERGED", "CONVERSATION_LINKED"} <= kinds
    # nothing of the bystander, every value of the person
    assert "Stay" not in response.text
    assert all(value in response.text for value in person.values)
    canonical = await export(api, person.canonical_id)
    same = orjson.loads(canonical.content)
    assert {**same, "exportedAt": None} == {**document, "exportedAt": None}


async def test_the_export_is_written_in_pieces(api: Api, store: Store) -> None:
    person = await seed_person(api)
    found = await person_export.find_person(store, "acme", person.canonical_id)
    pieces = [piece async for piece in person_document(store, found)]
    assert len(pieces) >= 2 + 2 * len(SECTIONS)
    assert list(orjson.loads(b"".join(pieces))) == ["contactId", "exportedAt", *SECTIONS]


async def test_refusals(api: Api) -> None:
    person = await seed_person(api)
    no_token = await api.http.get(f"/export/person/{person.canonical_id}.json")
    assert no_token.status_code == 401
    assert no_token.json()["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"
    for granted in ([VIEW], [VIEW_ALL], [p for p in ALL_PERMISSIONS if p != VIEW]):
        refused = await export(api, person.canonical_id, permissions=granted)
        assert refused.status_code == 403, granted
        assert refused.json()["errors"][0]["extensions"]["code"] == "FORBIDDEN"
    allowed = await export(api, person.canonical_id, permissions=[VIEW, VIEW_ALL])
    assert allowed.status_code == 200
    for contact_id, org in (("unknown", "acme"), (person.canonical_id, "other")):
        missing = await export(api, contact_id, org=org)
        assert missing.status_code == 404
        body = missing.json()
        assert body["errors"][0]["extensions"]["code"] == "NOT_FOUND"
        assert person.canonical_id not in missing.text or org == "other"


WEB = "mutation($e: [WebEventInput!]!) { recordWebEvents(events: $e) { accepted } }"


async def test_the_web_sessions_are_the_journeys(api: Api) -> None:
    person = await seed_person(api)
    cookie = next(v for t, v in person.identifiers if t == "COOKIE")
    times = ["2026-12-01T10:00:00Z", "2026-12-01T10:05:00Z", "2026-12-01T14:00:00Z"]
    events = [
        {"cookie": cookie, "type": "PAGE_VIEW", "at": t, "url": f"/p{n}"}
        for n, t in enumerate(times)
    ]
    await api.gql(WEB, {"e": events})
    document = orjson.loads((await export(api, person.canonical_id)).content)
    query = f"""query($id: ID!) {{ journey(contactId: $id) {{ webSessions(first: 10) {{
      edges {{ node {{ {selection(WebSession)}
        events(first: 50) {{ edges {{ node {{ {selection(WebEvent)} }} }} }} }} }} }} }} }}"""
    data = await api.gql(query, {"id": person.canonical_id})
    expected = [
        {
            **{k: v for k, v in e["node"].items() if k != "events"},
            "events": [x["node"] for x in e["node"]["events"]["edges"]],
        }
        for e in data["journey"]["webSessions"]["edges"]
    ]
    assert document["webSessions"] == expected
    assert [len(s["events"]) for s in document["webSessions"]] == [1, 2]
