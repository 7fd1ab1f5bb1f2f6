"""Finding contacts: search, reverse lookup, identifier lookup."""

from __future__ import annotations

from dataclasses import dataclass

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
from resolvers.pagination import Page, check_first, decode_cursor, encode_cursor, known_total
from resolvers.store import Store

SEARCH_MAX_FIRST = 100
SEARCH_CURSOR = "search"
MAX_QUERY_TOKENS = 8


@dataclass(frozen=True)
class SearchTerms:
    """What a search query asks for: identifier keys (an exact email or phone) and name
    prefixes (every word must start a name token)."""

    keys: tuple[str, ...]
    prefixes: tuple[str, ...]


def search_terms(store: Store, query: str) -> SearchTerms:
    """Name prefixes (every word, case-insensitive), an exact email, or a normalised phone."""
    if len(query) > MAX_STRING:
        raise BadUserInput(f"query is longer than {MAX_STRING} characters")
    text = query.strip()
    if not text:
        raise BadUserInput("query must not be empty")
    if "\x00" in text:
        raise BadUserInput("query contains a NUL character")
    keys: list[str] = []
    email = try_normalize_email(text) if "@" in text else None
    if email:
        keys.append(key(IdentifierType.EMAIL, email))
    if sum(ch.isdigit() for ch in text) >= 3:
        phone = normalize_phone(text, store.config.default_region)
        if phone:
            keys.append(key(IdentifierType.PHONE, phone))
    prefixes = name_tokens({"firstName": text})[:MAX_QUERY_TOKENS]
    return SearchTerms(keys=tuple(keys), prefixes=tuple(prefixes))


def _names_match(doc: ContactDoc, prefixes: tuple[str, ...]) -> bool:
    tokens = doc.get("nameTokens") or []
    return bool(prefixes) and all(any(t.startswith(p) for t in tokens) for p in prefixes)


async def search_matches(
    store: Store, org: str, terms: SearchTerms, types: list[ContactType]
) -> list[ContactDoc]:
    """Every live contact of the types that the terms find, in id order.

    Two index-only queries, never a ``$or`` or a predicate beyond an index (the embedded
    server scans for those): the keys on ``org_keys``, the longest name prefix as a range on
    ``org_names``. Types, liveness and the other prefixes are checked here."""
    found: dict[str, ContactDoc] = {}
    if terms.keys:
        listed = store.contacts.find({"org": org, "keys": {"$in": list(terms.keys)}})
        for doc in await listed.to_list():
            found[doc["_id"]] = doc
    if terms.prefixes:
        longest = max(terms.prefixes, key=len)
        named = store.contacts.find(
            {"org": org, "nameTokens": {"$gte": longest, "$lt": longest + "\U0010ffff"}}
        )
        for doc in await named.to_list():
            if _names_match(doc, terms.prefixes):
                found[doc["_id"]] = doc
    wanted = {str(t) for t in types}
    moment = now()
    matches = [d for d in found.values() if d["type"] in wanted and liveness.is_live(d, moment)]
    return sorted(matches, key=lambda d: str(d["_id"]))


async def search_contacts(
    store: Store,
    org: str,
    query: str,
    types: list[ContactType],
    first: int,
    after: str | None,
) -> Page[ContactDoc]:
    """A page of matching canonical contacts in id order; its total is how many match."""
    check_first(first, SEARCH_MAX_FIRST)
    if not types:
        raise BadUserInput("types must not be empty")
    terms = search_terms(store, query)
    last_id: str | None = None
    if after is not None:
        (position,) = decode_cursor(SEARCH_CURSOR, after, 1)
        last_id = str(position)
    matches = await search_matches(store, org, terms, types)
    rest = [d for d in matches if last_id is None or str(d["_id"]) > str(last_id)]
    docs = rest[:first]
    return Page(
        docs=docs,
        has_next=len(rest) > first,
        cursors=[search_cursor(d) for d in docs],
        total=known_total(len(matches)),
    )


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
