"""``GET /export/person/{contactId}.json``: everything held about a person, as one JSON
document (GDPR article 15, subject access).

The document is ``{"contactId", "exportedAt", "contacts", "identifiers", "notes",
"mergeHistory", "conversations", "webSessions", "changes"}``; each item of a list has its
GraphQL type's fields under their GraphQL names, made by the same ``from_doc`` views the API
uses (:func:`plain`), so the export and the API cannot drift apart. An identifier also
names the contact that holds it (``"contact": {"id": …}``, as ``Identifier.contact { id }``).

It is streamed: the head of the document goes out once the person is found, then each
section as its cursor yields batches (``resolvers/person_export.py``), so memory stays flat
whatever the person holds. Needs ``externalContacts:contact:view`` and
``externalContacts:conversation:viewAll``; no token is 401, a missing permission 403, an
unknown id or another org's id 404, an ancestor id works.
"""

from __future__ import annotations

import functools
from collections.abc import AsyncIterator, Callable, Iterable
from datetime import datetime
from enum import Enum
from typing import Any

import orjson
from graphql import GraphQLObjectType
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from strawberry.types.base import get_object_definition, has_object_definition

from gateway.export import guarded_export
from resolvers import person_export
from resolvers.clock import now
from resolvers.documents import ClaimDoc
from resolvers.person_export import Person
from resolvers.principal import Permission, Principal
from resolvers.store import Store
from resolvers.web_documents import WebEventDoc, WebSessionDoc
from schema.changes import Change
from schema.contact import Contact, Identifier, Note
from schema.conversation import Conversation
from schema.merge import MergeEvent
from schema.scalars import serialize_datetime
from schema.schema import schema
from schema.web import WebEvent, WebSession

MEDIA_TYPE = "application/json"
NAMES = schema.config.name_converter

Render = Callable[[Any], dict[str, Any]]
Reader = Callable[[Store, Person], AsyncIterator[list[Any]]]


@functools.cache
def plain_fields(view_type: type) -> tuple[tuple[str, str], ...]:
    """(Python name, GraphQL name) of each field of a Strawberry type that needs no resolver
    and is in the schema (``strawberry.Private`` attributes are not)."""
    definition = get_object_definition(view_type, strict=True)
    in_schema = schema._schema.type_map[definition.name]
    assert isinstance(in_schema, GraphQLObjectType)
    found = []
    for field in definition.fields:
        name = NAMES.get_graphql_name(field)
        if field.base_resolver is None and name in in_schema.fields:
            found.append((field.python_name, name))
    return tuple(found)


def plain(view: object) -> dict[str, Any]:
    """The fields of a Strawberry object that need no resolver, under their GraphQL names,
    as the API serialises them (DateTime in UTC, enums by name, nested objects alike)."""
    view_type: type = type(view)
    return {name: _value(getattr(view, attr)) for attr, name in plain_fields(view_type)}


def _value(value: object) -> Any:
    if isinstance(value, datetime):
        return serialize_datetime(value)
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, list):
        return [_value(v) for v in value]
    if has_object_definition(value):
        return plain(value)
    return value


def _identifier(doc: ClaimDoc) -> dict[str, Any]:
    return {**plain(Identifier.from_doc(doc)), "contact": {"id": doc["contactId"]}}


def _session(item: tuple[WebSessionDoc, list[WebEventDoc]]) -> dict[str, Any]:
    session, events = item
    return {
        **plain(WebSession.from_doc(session)),
        "events": [plain(WebEvent.from_doc(e)) for e in events],
    }


# The document's lists, in order: (name, reader, renderer of one stored document).
SECTIONS: list[tuple[str, Reader, Render]] = [
    ("contacts", person_export.members, lambda d: plain(Contact.from_doc(d))),
    ("identifiers", person_export.claims, _identifier),
    ("notes", person_export.notes, lambda d: plain(Note.from_doc(d))),
    ("mergeHistory", person_export.merge_history, lambda d: plain(MergeEvent.from_doc(d))),
    ("conversations", person_export.conversations, lambda d: plain(Conversation.from_doc(d))),
    ("webSessions", person_export.web_sessions, _session),
    ("changes", person_export.changes, lambda d: plain(Change.from_doc(d))),
]


async def person_document(store: Store, person: Person) -> AsyncIterator[bytes]:
    """The export of ``person``, in pieces: the head, then a piece per batch of a section."""
    head = {"contactId": person.head["_id"], "exportedAt": serialize_datetime(now())}
    yield orjson.dumps(head)[:-1]  # the object stays open
    for name, read, render in SECTIONS:
        yield b',"' + name.encode() + b'":['
        first = True
        async for batch in read(store, person):
            yield _items((render(doc) for doc in batch), first=first)
            first = False
        yield b"]"
    yield b"}"


def _items(items: Iterable[dict[str, Any]], *, first: bool) -> bytes:
    body = b",".join(orjson.dumps(item) for item in items)
    return body if first else b"," + body


async def export_person(request: Request) -> Response:
    store = request.app.state.runtime.store

    async def prepare(principal: Principal) -> Response:
        principal.require(Permission.CONTACT_VIEW)
        principal.require(Permission.CONVERSATION_VIEW_ALL)
        contact_id = request.path_params["contact_id"]
        person = await person_export.find_person(store, principal.org, contact_id)
        filename = f"person-{person.head['_id']}.json"
        return StreamingResponse(
            person_document(store, person),
            media_type=MEDIA_TYPE,
            headers={"Content-Disposition": f'attachment; filename="{filename}"'},
        )

    return await guarded_export(request, "person export", prepare)
