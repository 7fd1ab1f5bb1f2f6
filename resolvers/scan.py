"""scanContacts and the contact export: every canonical contact of some types, in a stable
keyset order, for a full directory sync.

Order: by type (CURATED, then IDENTIFIED, then EPHEMERAL, the types asked for), then by
``_id``. An edit never changes a contact's id, and the only type change is a promotion to
CURATED, which comes first: a contact modified (or promoted) during a scan is therefore met
at most once. Contacts created during a scan have later ids (ObjectIds) and are met when the
scan gets there. Ancestors (``readOnly``) are never listed; expired contacts are dropped
while reading (their TTL sweep may not have run yet).

Each page is one indexed range per type it spans (``contacts.org_scan``: ``{org, readOnly,
type, _id}``), never a sort on the server; ``modifiedSince`` filters within that range.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from datetime import datetime
from typing import Any

from resolvers import liveness
from resolvers.clock import now
from resolvers.contact_fields import ContactType
from resolvers.documents import ContactDoc
from resolvers.errors import BadUserInput
from resolvers.pagination import Page, check_first, decode_cursor, encode_cursor
from resolvers.store import Store

SCAN_CURSOR = "scan"
SCAN_MAX_FIRST = 200
TYPE_ORDER = (ContactType.CURATED, ContactType.IDENTIFIED, ContactType.EPHEMERAL)

Position = tuple[ContactType, str | None]  # the type being read, the last id read of it


def scan_types(types: Sequence[ContactType]) -> list[ContactType]:
    if not types:
        raise BadUserInput("types must not be empty")
    return [t for t in TYPE_ORDER if t in types]


def scan_cursor(doc: ContactDoc) -> str:
    return encode_cursor(SCAN_CURSOR, doc["type"], doc["_id"])


def _position(after: str | None, types: list[ContactType]) -> Position:
    if after is None:
        return types[0], None
    kind, last_id = decode_cursor(SCAN_CURSOR, after, 2)
    if kind not in types or not isinstance(last_id, str):
        raise BadUserInput("invalid cursor")
    return ContactType(str(kind)), last_id


def scan_filter(
    org: str, kind: ContactType, after_id: str | None, modified_since: datetime | None
) -> dict[str, Any]:
    query: dict[str, Any] = {"org": org, "readOnly": False, "type": str(kind)}
    if after_id is not None:
        query["_id"] = {"$gt": after_id}
    if modified_since is not None:
        query["modifiedAt"] = {"$gte": modified_since}
    return query


async def scan_batches(
    store: Store,
    org: str,
    types: Sequence[ContactType],
    modified_since: datetime | None = None,
    *,
    after: str | None = None,
    size: int = SCAN_MAX_FIRST,
) -> AsyncIterator[list[ContactDoc]]:
    """Batches of up to ``size`` live canonical contacts, in scan order, from ``after``."""
    wanted = scan_types(types)
    kind, last_id = _position(after, wanted)
    for current in wanted[wanted.index(kind) :]:
        while True:
            docs = await store.contacts.find(
                scan_filter(org, current, last_id, modified_since),
                sort=[("_id", 1)],
                limit=size,
            ).to_list()
            moment = now()
            live = [d for d in docs if not liveness.is_expired(d, moment)]
            if live:
                yield live
            if len(docs) < size:
                break
            last_id = docs[-1]["_id"]
        last_id = None


async def scan_contacts(
    store: Store,
    org: str,
    first: int,
    after: str | None,
    types: Sequence[ContactType],
    modified_since: datetime | None = None,
) -> Page[ContactDoc]:
    """One page of the scan: ``first`` contacts (at most 200) after the cursor."""
    check_first(first, SCAN_MAX_FIRST)
    docs: list[ContactDoc] = []
    async for batch in scan_batches(
        store, org, types, modified_since, after=after, size=first + 1 - len(docs)
    ):
        docs.extend(batch)
        if len(docs) > first:
            break
    page = docs[:first]

    async def total() -> int:  # only when asked: every matching contact of the types
        counts = [
            await store.contacts.count_documents(scan_filter(org, kind, None, modified_since))
            for kind in scan_types(types)
        ]
        return sum(counts)

    return Page(
        docs=page,
        has_next=len(docs) > first,
        cursors=[scan_cursor(d) for d in page],
        total=total,
    )
