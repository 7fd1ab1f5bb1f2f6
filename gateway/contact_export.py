"""``GET /export/contacts.ndjson?types=&modifiedSince=``: every canonical contact as one line.

A line has the ``Contact`` scalar fields under their GraphQL names, ``externalIds``,
``address``, ``identifiers`` (``[{type, value}]``, the identifiers the contact claims) and
``mergeSetIds`` (every contact id of its merge set; just the contact when never merged).

Lines come in scan order (:mod:`resolvers.scan`: CURATED, then IDENTIFIED, then EPHEMERAL,
each by id), read in keyset batches of ``CHUNK`` contacts. Each batch costs three indexed
reads (the contacts, their claims, their merge sets) whatever its size, and the next batch is
read while the current one is resolved and written (``export.read_ahead``): memory holds about two
batches however many contacts the directory has.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from datetime import datetime
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response

from gateway.export import read_ahead, stream_lines
from resolvers import liveness, scan
from resolvers.clock import now
from resolvers.contact_fields import ALL_FIELDS, ContactType
from resolvers.documents import ContactDoc
from resolvers.errors import BadUserInput
from resolvers.principal import Permission, Principal
from resolvers.store import Store
from schema.scalars import parse_datetime, serialize_datetime

CHUNK = 1000
SCALARS = ("id", "type", *ALL_FIELDS, "createdAt", "modifiedAt", "expiresAt", "readOnly")
Batch = list[ContactDoc]


async def contact_lines(
    store: Store,
    org: str,
    types: Sequence[ContactType] = (ContactType.CURATED,),
    modified_since: datetime | None = None,
    *,
    chunk: int = CHUNK,
) -> AsyncIterator[bytes]:
    """Chunks of NDJSON (whole lines), one per batch of up to ``chunk`` contacts."""
    scan.scan_types(types)  # bad input before anything is read
    await store.db.command("ping")  # an unavailable database fails fast
    source = scan.scan_batches(store, org, types, modified_since, size=chunk)
    async for batch in read_ahead(source):
        yield await _render(store, org, batch)


async def _render(store: Store, org: str, batch: Batch) -> bytes:
    ids = [d["_id"] for d in batch]
    moment = now()
    held: dict[str, list[dict[str, str]]] = {i: [] for i in ids}
    async for claim in store.identifiers.find(
        {"org": org, "contactId": {"$in": ids}},
        {"contactId": 1, "type": 1, "value": 1, "expiresAt": 1},
    ):
        if not liveness.is_expired(claim, moment):
            held[claim["contactId"]].append({"type": claim["type"], "value": claim["value"]})
    set_ids = [d["mergeSetId"] for d in batch if d.get("mergeSetId")]
    members: dict[str, list[str]] = {}
    if set_ids:
        async for merge_set in store.merge_sets.find(
            {"org": org, "_id": {"$in": set_ids}}, {"memberIds": 1}
        ):
            members[merge_set["_id"]] = list(merge_set["memberIds"])
    lines = [
        orjson.dumps(_line(d, held[d["_id"]], members.get(d.get("mergeSetId") or "", [d["_id"]])))
        for d in batch
    ]
    lines.append(b"")
    return b"\n".join(lines)


def _line(doc: ContactDoc, identifiers: list[dict[str, str]], members: list[str]) -> dict[str, Any]:
    line: dict[str, Any] = {"id": doc["_id"]}
    for name in SCALARS[1:]:
        value = doc.get(name)
        line[name] = serialize_datetime(value) if isinstance(value, datetime) else value
    line["externalIds"] = line["externalIds"] or []
    line["surveyOptOut"] = bool(line["surveyOptOut"])
    line["identifiers"] = identifiers
    line["mergeSetIds"] = members
    return line


def _params(request: Request) -> tuple[list[ContactType], datetime | None]:
    """``types`` comma-separated or repeated (default CURATED), ``modifiedSince`` ISO-8601
    with offset; an empty value counts as absent. BAD_USER_INPUT otherwise."""
    params = request.query_params
    unknown = set(params) - {"types", "modifiedSince"}
    if unknown:
        raise BadUserInput(f"unknown query parameter {sorted(unknown)[0]!r}")
    raw = [t.strip().upper() for v in params.getlist("types") for t in v.split(",") if t.strip()]
    try:
        types = [ContactType(t) for t in raw] or [ContactType.CURATED]
    except ValueError:
        raise BadUserInput("types: CURATED, IDENTIFIED or EPHEMERAL") from None
    since = [v.strip() for v in params.getlist("modifiedSince") if v.strip()]
    if len(since) > 1:
        raise BadUserInput("modifiedSince given more than once")
    return types, parse_datetime(since[0]) if since else None


async def export_contacts(request: Request) -> Response:
    def lines(store: Store, principal: Principal) -> AsyncIterator[bytes]:
        types, since = _params(request)
        return contact_lines(store, principal.org, types, since)

    return await stream_lines(request, Permission.CONTACT_VIEW, lines)
