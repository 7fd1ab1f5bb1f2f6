"""The database handle the domain works on: collections, indexes, and the domain's settings."""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import random
import weakref
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar, cast

from pymongo.asynchronous.client_session import AsyncClientSession
from pymongo.asynchronous.collection import AsyncCollection
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import ConnectionFailure, OperationFailure, PyMongoError

from resolvers.documents import (
    ChangeDoc,
    ClaimDoc,
    ContactDoc,
    ConversationDoc,
    CountBucketDoc,
    ErasureReceiptDoc,
    MergeEventDoc,
    MergeSetDoc,
    NoteDoc,
    WebhookDoc,
)
from resolvers.errors import Conflict
from resolvers.indexes import INDEXES, STALE_INDEXES
from resolvers.web_documents import WebEventDoc, WebSessionDoc

# An untyped document: only for the database handle itself and for aggregation replies
# whose shape a pipeline builds (each caller names what it reads).
Doc = dict[str, Any]
T = TypeVar("T")
D = TypeVar("D", bound=Mapping[str, Any])

MAX_TRANSACTION_ATTEMPTS = 8
# A write conflict is retried for this long at least (after MAX_TRANSACTION_ATTEMPTS): under
# contention (a burst of interactions for one caller racing merges, on a loaded machine) eight
# quick attempts were not always enough, and an ingest pipeline should rarely see CONFLICT.
# Well inside the request's database deadline (SCV_DB_TIMEOUT_MS, 5 s by default).
TRANSACTION_RETRY_SECONDS = 2.5
# Transactions a gateway process has open at once; the others wait before they start. Every
# open transaction pins a snapshot in the database's storage engine: with 50 clients' writes
# all open at once, queued on the same collection locks, the snapshots grew old, the
# embedded server's engine kept failing to evict the pages they pinned, and its writes
# slowed until requests timed out (make load: p99 1.1-1.3 s, and some runs collapsed to
# 30-40 req/s with hundreds of SERVICE_UNAVAILABLE). Six a process: p99 0.98-1.01 s at
# 130-140 req/s with 1 or 2 workers, and reads no longer queue behind writes (journey p99
# 0.5-0.8 s -> 0.17-0.41 s); four gave a higher p99 (1.01-1.10 s).
OPEN_TRANSACTIONS = 6

# Run with the store and session after an aborted transaction attempt (resolvers.changes
# voids the feed positions the attempt reserved).
ABORT_HOOKS: list[Callable[[Store, AsyncClientSession], Awaitable[None]]] = []


@dataclass(frozen=True)
class DomainConfig:
    default_region: str = "US"
    retention_days: int = 60
    web_session_gap_minutes: int = 30  # SCV_WEB_SESSION_GAP_MINUTES: inactivity ending a visit
    change_retention_days: int = 7  # SCV_CHANGE_RETENTION_DAYS (resolvers/changes.py)
    # how long a transaction can live (plus clock skew between gateways): a feed position
    # reserved longer ago can no longer be filled by a commit
    change_settle_seconds: float = 75.0
    # False only in the benchmark's feed-off side (bench/feed.py): writes record no change
    change_feed: bool = True


class Store:
    """One database, its collections and the domain's configuration."""

    def __init__(
        self,
        db: AsyncDatabase[Doc],
        config: DomainConfig | None = None,
        *,
        streams: AsyncDatabase[Doc] | None = None,
    ) -> None:
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
        # proofs of erasure, without personal data (resolvers/erasure.py)
        self.erasure_receipts = _typed(db, "erasure_receipts", ErasureReceiptDoc)
        # web journeys (resolvers/web_events.py, resolvers/web_sessions.py)
        self.web_events = _typed(db, "web_events", WebEventDoc)
        self.web_sessions = _typed(db, "web_sessions", WebSessionDoc)
        # the change feed (resolvers/changes.py): changes, per-org position counters
        self.changes = _typed(db, "changes", ChangeDoc)
        self.change_counters = db["change_counters"]
        self.webhooks = _typed(db, "webhooks", WebhookDoc)
        self.leases = db["leases"]  # who runs a singleton loop (gateway/webhook_delivery.py)
        # the collections change streams watch, through ``streams`` when given (the same
        # database on a client of its own: a stream's getMore holds its connection while it
        # waits, gateway/database.py)
        watched = db if streams is None else streams
        self.changes_watched = _typed(watched, "changes", ChangeDoc)
        self.conversations_watched = _typed(watched, "conversations", ConversationDoc)

    async def ensure_indexes(self) -> None:
        """Create every index the queries rely on (:mod:`resolvers.indexes`) and drop the
        ones no query uses any more. Idempotent."""
        for name, models in INDEXES.items():
            await self.db[name].create_indexes(models)
        for name, stale in STALE_INDEXES.items():
            present = await self.db[name].index_information()
            for index_name in stale:
                if index_name in present:
                    await self.db[name].drop_index(index_name)

    async def in_transaction(self, work: Callable[[AsyncClientSession], Awaitable[T]]) -> T:
        """:meth:`_in_transaction`, once one of the process's OPEN_TRANSACTIONS places is
        free (a transaction started inside another one's work takes none)."""
        if _INSIDE.get():
            return await self._in_transaction(work)
        async with _transaction_places():
            token = _INSIDE.set(True)
            try:
                return await self._in_transaction(work)
            finally:
                _INSIDE.reset(token)

    async def _in_transaction(self, work: Callable[[AsyncClientSession], Awaitable[T]]) -> T:
        """Run ``work`` in one transaction, retrying it on transient errors.

        A write conflict is retried MAX_TRANSACTION_ATTEMPTS times and for at least
        TRANSACTION_RETRY_SECONDS, with jittered exponential backoff; one that outlives that
        becomes ``CONFLICT``. A database that stays unreachable raises its own error after
        MAX_TRANSACTION_ATTEMPTS (the gateway answers ``SERVICE_UNAVAILABLE``).
        """
        client = self.db.client
        give_up_at = asyncio.get_running_loop().time() + TRANSACTION_RETRY_SECONDS
        last: PyMongoError | None = None
        attempt = 0
        while True:
            async with client.start_session() as session:
                try:
                    await session.start_transaction()
                    result = await work(session)
                    await _commit(session)
                    return result
                except PyMongoError as exc:
                    await self._aborted(session)
                    if not _is_transient(exc):
                        raise
                    last = exc
                except BaseException:
                    await self._aborted(session)
                    raise
            attempt += 1
            if not _retry_again(attempt, last, give_up_at):
                break
            # jittered backoff, so racing transactions run one after the other
            await asyncio.sleep(_backoff_seconds(attempt))
        if isinstance(last, ConnectionFailure):  # unreachable, not a conflict: the outage's error
            raise last
        raise Conflict("the change conflicted with a concurrent change; try again") from last

    async def _aborted(self, session: AsyncClientSession) -> None:
        """Abort the attempt's transaction, if still open, and then run the abort hooks.
        (After a failed commit it is not: the server may have committed it.)"""
        if session.in_transaction:
            await _abort_quietly(session)
            for hook in ABORT_HOOKS:
                await hook(self, session)


_INSIDE: contextvars.ContextVar[bool] = contextvars.ContextVar("scv_in_transaction", default=False)
_PLACES: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Semaphore] = (
    weakref.WeakKeyDictionary()
)


def _transaction_places() -> asyncio.Semaphore:
    loop = asyncio.get_running_loop()
    places = _PLACES.get(loop)
    if places is None:
        places = _PLACES[loop] = asyncio.Semaphore(OPEN_TRANSACTIONS)
    return places


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


def _retry_again(attempt: int, last: PyMongoError | None, give_up_at: float) -> bool:
    """Another attempt after ``attempt`` failed ones: always up to MAX_TRANSACTION_ATTEMPTS;
    beyond, only for a conflict (not an outage) while the retry budget lasts."""
    if attempt < MAX_TRANSACTION_ATTEMPTS:
        return True
    if isinstance(last, ConnectionFailure):
        return False
    return asyncio.get_running_loop().time() < give_up_at


def _backoff_seconds(attempt: int) -> float:
    """5 ms doubling per attempt, capped at 100 ms, jittered ±50 %."""
    cap: float = min(0.005 * 2.0 ** (attempt - 1), 0.1)
    return cap * random.uniform(0.5, 1.5)


def _is_transient(exc: PyMongoError) -> bool:
    if exc.has_error_label("TransientTransactionError"):
        return True
    if isinstance(exc, OperationFailure) and exc.code == 112:  # WriteConflict
        return True
    return isinstance(exc, ConnectionFailure)
