"""The database handle the domain works on: collections, indexes, and the domain's settings."""

from __future__ import annotations

import asyncio
import contextlib
import random
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar, cast

from pymongo import ASCENDING, DESCENDING, IndexModel
from pymongo.asynchronous.client_session import AsyncClientSession
from pymongo.asynchronous.collection import AsyncCollection
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import ConnectionFailure, OperationFailure, PyMongoError

from resolvers.documents import (
    ClaimDoc,
    ContactDoc,
    ConversationDoc,
    CountBucketDoc,
    MergeEventDoc,
    MergeSetDoc,
    NoteDoc,
)
from resolvers.errors import Conflict

# An untyped document: only for the database handle itself and for aggregation replies
# whose shape a pipeline builds (each caller names what it reads).
Doc = dict[str, Any]
T = TypeVar("T")
D = TypeVar("D", bound=Mapping[str, Any])

MAX_TRANSACTION_ATTEMPTS = 8
STALE_CONVERSATION_INDEXES = ("contact_page", "started")


@dataclass(frozen=True)
class DomainConfig:
    default_region: str = "US"
    retention_days: int = 60


class Store:
    """One database, its collections and the domain's configuration."""

    def __init__(self, db: AsyncDatabase[Doc], config: DomainConfig | None = None) -> None:
        self.db = db
        self.config = config or DomainConfig()
        self.contacts = _typed(db, "contacts", ContactDoc)
        self.identifiers = _typed(db, "identifiers", ClaimDoc)
        self.conversations = _typed(db, "conversations", ConversationDoc)
        self.merge_sets = _typed(db, "merge_sets", MergeSetDoc)
        self.notes = _typed(db, "notes", NoteDoc)
        # hourly and daily conversation counts per org (resolvers/conversation_counts.py)
        self.conversation_counts = _typed(db, "conversation_counts", CountBucketDoc)
        self.merge_events = _typed(db, "merge_events", MergeEventDoc)

    async def ensure_indexes(self) -> None:
        """Create every index the queries rely on. Idempotent."""
        await self.contacts.create_indexes(
            [
                IndexModel([("org", ASCENDING), ("keys", ASCENDING)], name="org_keys"),
                IndexModel([("org", ASCENDING), ("nameTokens", ASCENDING)], name="org_names"),
                IndexModel([("org", ASCENDING), ("mergeSetId", ASCENDING)], name="org_set"),
                IndexModel([("expiresAt", ASCENDING)], name="ttl", expireAfterSeconds=0),
                # {org, _id: {$in: ids}} (batch loads): the embedded server plans it on this
                # index; without it the org's every contact is read for each batch.
                IndexModel([("org", ASCENDING), ("_id", ASCENDING)], name="org_id"),
                # conditional writes ({org, _id, readOnly[, modifiedAt]}): the embedded server
                # plans a filter on one index whose leading fields are exactly its fields
                IndexModel(
                    [
                        ("org", ASCENDING),
                        ("_id", ASCENDING),
                        ("readOnly", ASCENDING),
                        ("modifiedAt", ASCENDING),
                    ],
                    name="org_id_state",
                ),
                # the CSV importer recognises rows it imported before by their fingerprint
                IndexModel([("org", ASCENDING), ("importKey", ASCENDING)], name="org_import"),
            ]
        )
        await self.identifiers.create_indexes(
            [
                IndexModel([("org", ASCENDING), ("key", ASCENDING)], name="claim", unique=True),
                IndexModel([("org", ASCENDING), ("contactId", ASCENDING)], name="org_contact"),
                # a holder's claims by key ({org, contactId, key}): releases, moves, undo
                IndexModel(
                    [("org", ASCENDING), ("contactId", ASCENDING), ("key", ASCENDING)],
                    name="org_contact_key",
                ),
                IndexModel([("expiresAt", ASCENDING)], name="ttl", expireAfterSeconds=0),
            ]
        )
        await self.conversations.create_indexes(
            [
                IndexModel([("org", ASCENDING), ("cid", ASCENDING)], name="org_cid", unique=True),
                # linking a conversation only while it is unlinked ({org, cid, externalContactId})
                IndexModel(
                    [("org", ASCENDING), ("cid", ASCENDING), ("externalContactId", ASCENDING)],
                    name="org_cid_link",
                ),
                _keyset_index("org_contact_page", "org", "externalContactId"),
                _keyset_index("org_page", "org"),
                _keyset_index("org_channel_page", "org", "channel"),
                IndexModel([("expiresAt", ASCENDING)], name="ttl", expireAfterSeconds=0),
            ]
        )
        # Indexes of earlier versions that no query uses any more (every page filter now
        # starts with org): each one only cost every conversation write an index update.
        present = await self.conversations.index_information()
        for stale in STALE_CONVERSATION_INDEXES:
            if stale in present:
                await self.conversations.drop_index(stale)
        await self.merge_sets.create_indexes(
            [
                IndexModel([("org", ASCENDING), ("memberIds", ASCENDING)], name="org_members"),
                # {org, _id[, canonicalId]}: reads by id and writes conditional on the head
                IndexModel(
                    [("org", ASCENDING), ("_id", ASCENDING), ("canonicalId", ASCENDING)],
                    name="org_id_head",
                ),
            ]
        )
        await self.conversation_counts.create_indexes(
            [
                IndexModel(
                    [("org", ASCENDING), ("unit", ASCENDING), ("start", ASCENDING)],
                    name="org_unit_start",
                ),
                IndexModel([("expiresAt", ASCENDING)], name="ttl", expireAfterSeconds=0),
            ]
        )
        # Contact.mergeHistory: the events a batch of contacts was involved in
        await self.merge_events.create_indexes(
            [IndexModel([("org", ASCENDING), ("contactIds", ASCENDING)], name="org_contacts")]
        )
        await self.notes.create_indexes(
            [
                IndexModel(
                    [("org", ASCENDING), ("contactId", ASCENDING), ("createdAt", DESCENDING)],
                    name="org_contact_created",
                )
            ]
        )

    async def in_transaction(self, work: Callable[[AsyncClientSession], Awaitable[T]]) -> T:
        """Run ``work`` in one transaction, retrying it on transient errors.

        A write conflict that outlives the retries becomes ``CONFLICT``.
        """
        client = self.db.client
        last: PyMongoError | None = None
        for attempt in range(MAX_TRANSACTION_ATTEMPTS):
            async with client.start_session() as session:
                try:
                    await session.start_transaction()
                    result = await work(session)
                    await _commit(session)
                    return result
                except PyMongoError as exc:
                    if session.in_transaction:
                        await _abort_quietly(session)
                    if not _is_transient(exc):
                        raise
                    last = exc
                except BaseException:
                    if session.in_transaction:
                        await _abort_quietly(session)
                    raise
            # jittered backoff, so racing transactions run one after the other
            await asyncio.sleep(random.uniform(0.005, 0.02) * (attempt + 1))
        raise Conflict("the change conflicted with a concurrent change; try again") from last


def _keyset_index(name: str, *equal: str) -> IndexModel:
    """An index for keyset pages, newest first: equality fields, then ``startedAt`` and
    ``_id`` descending (the page order and its tie-break)."""
    keys = [(field, ASCENDING) for field in equal]
    return IndexModel([*keys, ("startedAt", DESCENDING), ("_id", DESCENDING)], name=name)


def _typed(db: AsyncDatabase[Doc], name: str, shape: type[D]) -> AsyncCollection[D]:
    """The collection, typed with its document shape (PyMongo decodes to dicts either way)."""
    del shape  # only its type matters
    return cast("AsyncCollection[D]", db[name])


async def aggregate_rows(
    collection: AsyncCollection[Any], pipeline: list[dict[str, Any]], **options: Any
) -> list[Doc]:
    """All rows of an aggregation on ``collection``: shaped by the pipeline (``$group``,
    ``$lookup`` …), not by the collection's documents, so the caller names what it reads."""
    cursor = await collection.aggregate(pipeline, **options)
    rows: list[Doc] = await cursor.to_list()
    return rows


async def _commit(session: AsyncClientSession) -> None:
    for _ in range(MAX_TRANSACTION_ATTEMPTS):
        try:
            await session.commit_transaction()
            return
        except PyMongoError as exc:
            if exc.has_error_label("UnknownTransactionCommitResult"):
                continue
            raise


async def _abort_quietly(session: AsyncClientSession) -> None:
    with contextlib.suppress(PyMongoError):
        await session.abort_transaction()


def _is_transient(exc: PyMongoError) -> bool:
    if exc.has_error_label("TransientTransactionError"):
        return True
    if isinstance(exc, OperationFailure) and exc.code == 112:  # WriteConflict
        return True
    return isinstance(exc, ConnectionFailure)
