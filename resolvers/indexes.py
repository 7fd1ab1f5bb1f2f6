"""Every index the queries rely on, per collection, and the ones earlier versions left behind.

The embedded server plans a filter on one index whose leading fields are exactly the
filter's equality fields (plus one trailing range): each index below names the query shape
it serves. ``tests/schema/test_explain.py`` proves every command the gateway sends uses one.
"""

from __future__ import annotations

from typing import Any, Final

from pymongo import ASCENDING, DESCENDING, IndexModel


def index(name: str, *fields: str, **options: Any) -> IndexModel:
    """An ascending compound index on ``fields``."""
    return IndexModel([(field, ASCENDING) for field in fields], name=name, **options)


def keyset_index(name: str, *equal: str) -> IndexModel:
    """An index for keyset pages, newest first: equality fields, then ``startedAt`` and
    ``_id`` descending (the page order and its tie-break)."""
    keys = [(field, ASCENDING) for field in equal]
    return IndexModel([*keys, ("startedAt", DESCENDING), ("_id", DESCENDING)], name=name)


TTL: Final = index("ttl", "expiresAt", expireAfterSeconds=0)

INDEXES: Final[dict[str, list[IndexModel]]] = {
    "contacts": [
        index("org_keys", "org", "keys"),  # who lists a value, oldest first
        index("org_names", "org", "nameTokens"),  # name search: an anchored prefix range
        index("org_match", "org", "matchKeys"),  # match suggestions: name/address candidates
        index("org_set", "org", "mergeSetId"),
        TTL,
        # {org, _id: {$in: ids}} (batch loads): without it the org's every contact is read
        index("org_id", "org", "_id"),
        # conditional writes ({org, _id, readOnly[, modifiedAt]})
        index("org_id_state", "org", "_id", "readOnly", "modifiedAt"),
        # the CSV importer recognises rows it imported before by their fingerprint
        index("org_import", "org", "importKey"),
        # scanContacts and the contact export: windows of ids of canonical contacts of a type
        index("org_scan", "org", "readOnly", "type", "_id"),
        # … and with modifiedSince: what changed since, in id order (resolvers/scan.py)
        index("org_scan_modified", "org", "readOnly", "type", "modifiedAt"),
    ],
    "identifiers": [
        index("claim", "org", "key", unique=True),  # the arbiter of every claim race
        index("org_contact", "org", "contactId"),
        # a holder's claims by key ({org, contactId, key}): releases, moves, undo
        index("org_contact_key", "org", "contactId", "key"),
        TTL,
    ],
    "conversations": [
        index("org_cid", "org", "cid", unique=True),
        # linking a conversation only while it is unlinked ({org, cid, externalContactId})
        index("org_cid_link", "org", "cid", "externalContactId"),
        keyset_index("org_contact_page", "org", "externalContactId"),
        keyset_index("org_page", "org"),
        keyset_index("org_channel_page", "org", "channel"),
        # erasure: the conversations (of anyone) that carry an erased identifier value
        index("org_seen", "org", "identifiers.value"),
        TTL,
    ],
    "merge_sets": [
        index("org_members", "org", "memberIds"),
        # {org, _id[, canonicalId]}: reads by id and writes conditional on the head
        index("org_id_head", "org", "_id", "canonicalId"),
    ],
    "conversation_counts": [index("org_unit_start", "org", "unit", "start"), TTL],
    # duplicateClusters: pairs at or above a score; a contact's pairs, replaced per write
    "match_pairs": [index("org_score", "org", "score"), index("org_ids", "org", "ids")],
    # Contact.mergeHistory: the events a batch of contacts was involved in
    "merge_events": [index("org_contacts", "org", "contactIds")],
    # erasureReceipts: newest first, keyset on (at, _id)
    "erasure_receipts": [
        IndexModel([("org", ASCENDING), ("at", DESCENDING), ("_id", DESCENDING)], name="org_at")
    ],
    # web journeys: a cookie's events in time order (sessions, WebSession.events), idempotent
    # eventIds, and a cookie's sessions newest first (journeys join them through the claims)
    "web_events": [
        index("org_cookie_at", "org", "cookie", "at", "_id"),
        index("org_event_id", "org", "eventId", unique=True),  # the event's own id if none given
        TTL,
    ],
    "web_sessions": [
        keyset_index("org_cookie_page", "org", "cookie"),
        index("org_id", "org", "_id"),  # the writes of a batch, by id
        TTL,
    ],
    # the change feed: one position per org (the unique index refuses a void for a position
    # whose change committed), read in position order; expired changes go
    "changes": [
        index("org_seq", "org", "seq", unique=True),
        TTL,
        # a person's changes (the subject-access export); an erasure's pseudonyms: the
        # changes naming an erased value or conversation
        index("org_contacts", "org", "contactIds"),
        index("org_value", "org", "identifier.value"),
        index("org_conversation", "org", "conversationId"),
    ],
    # an org's webhooks; the delivery loop's due ones
    "webhooks": [index("org_id", "org", "_id"), index("due", "nextAttemptAt")],
    # the delivery lease: taken by compare-and-set on the lease as read, released by its owner
    "leases": [index("lease_cas", "_id", "owner", "until"), index("lease_owner", "_id", "owner")],
    "notes": [
        IndexModel(
            [("org", ASCENDING), ("contactId", ASCENDING), ("createdAt", DESCENDING)],
            name="org_contact_created",
        )
    ],
}

# Indexes of earlier versions that no query uses any more (every page filter now starts with
# org): each one only cost every write of its collection an index update.
STALE_INDEXES: Final[dict[str, tuple[str, ...]]] = {"conversations": ("contact_page", "started")}
