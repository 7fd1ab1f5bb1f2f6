"""Finding contacts: search, reverse lookup, identifier lookup."""

from __future__ import annotations

import re
from typing import Any

from resolvers import claims, liveness
from resolvers.clock import now
from resolvers.contact_fields import ContactType, name_tokens
from resolvers.documents import ClaimDoc, ContactDoc
from resolvers.errors import BadUserInput
from resolvers.identifiers import (
    MAX_STRING,
    IdentifierType,
    key,
    normalize_phone,
    normalize_value,
    try_normalize_email,
)
from resolvers.pagination import Page, check_first, decode_cursor, encode_cursor
from resolvers.store import Store

SEARCH_MAX_FIRST = 100
SEARCH_CURSOR = "search"
MAX_QUERY_TOKENS = 8


def search_filter(store: Store, org: str, query: str, types: list[ContactType]) -> dict[str, Any]:
    """Name prefixes (every word, case-insensitive), an exact email, or a normalised phone."""
    if len(query) > MAX_STRING:
        raise BadUserInput(f"query is longer than {MAX_STRING} characters")
    text = query.strip()
    if not text:
        raise BadUserInput("query must not be empty")
    if "\x00" in text:  # MongoDB rejects a regex with a NUL byte (and no field holds one)
        raise BadUserInput("query contains a NUL character")
    alternatives: list[dict[str, Any]] = []
    email = try_normalize_email(text) if "@" in text else None
    if email:
        alternatives.append({"keys": key(IdentifierType.EMAIL, email)})
    if sum(ch.isdigit() for ch in text) >= 3:
        phone = normalize_phone(text, store.config.default_region)
        if phone:
            alternatives.append({"keys": key(IdentifierType.PHONE, phone)})
    tokens = name_tokens({"firstName": text})[:MAX_QUERY_TOKENS]
    if tokens:
        alternatives.append(
            {"$and": [{"nameTokens": {"$regex": "^" + re.escape(t)}} for t in tokens]}
        )
    if not alternatives:  # nothing searchable in the query (e.g. "---"): match nothing
        alternatives.append({"_id": {"$in": []}})
    return {
        "org": org,
        "type": {"$in": [str(t) for t in types]},
        "$and": [liveness.live_filter(), {"$or": alternatives}],
    }


async def search_contacts(
    store: Store,
    org: str,
    query: str,
    types: list[ContactType],
    first: int,
    after: str | None,
) -> tuple[Page[ContactDoc], dict[str, Any]]:
    """A page of matching canonical contacts in id order, and the filter (for totalCount)."""
    check_first(first, SEARCH_MAX_FIRST)
    if not types:
        raise BadUserInput("types must not be empty")
    base = search_filter(store, org, query, types)
    page_filter = dict(base)
    if after is not None:
        (last_id,) = decode_cursor(SEARCH_CURSOR, after, 1)
        page_filter["_id"] = {"$gt": last_id}
    docs = await store.contacts.find(page_filter).sort("_id", 1).limit(first + 1).to_list()
    return Page(docs=docs[:first], has_next=len(docs) > first), base


def search_cursor(doc: ContactDoc) -> str:
    return encode_cursor(SEARCH_CURSOR, doc["_id"])


async def reverse_lookup(store: Store, org: str, value: str) -> list[ContactDoc]:
    """CURATED contacts that list the phone or email, oldest first."""
    if len(value) > MAX_STRING:
        raise BadUserInput(f"value is longer than {MAX_STRING} characters")
    keys: list[str] = []
    email = try_normalize_email(value) if "@" in value else None
    if email:
        keys.append(key(IdentifierType.EMAIL, email))
    phone = normalize_phone(value, store.config.default_region)
    if phone:
        keys.append(key(IdentifierType.PHONE, phone))
    if not keys:
        return []
    moment = now()
    listers = await store.contacts.find({"org": org, "keys": {"$in": keys}}).to_list()
    curated = [
        d for d in listers if d["type"] == ContactType.CURATED and liveness.is_live(d, moment)
    ]
    return claims.oldest_first(curated)[:500]


async def find_identifier(
    store: Store, org: str, kind: IdentifierType, value: str
) -> ClaimDoc | None:
    if len(value) > MAX_STRING:
        raise BadUserInput(f"value is longer than {MAX_STRING} characters")
    normalised = normalize_value(kind, value, store.config.default_region)
    if normalised is None:
        return None
    doc = await store.identifiers.find_one({"org": org, "key": key(kind, normalised)})
    return None if doc is None or liveness.is_expired(doc) else doc
