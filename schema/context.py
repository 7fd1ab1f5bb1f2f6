"""The per-request context: who is calling, the store, and a fresh set of DataLoaders."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from functools import partial
from typing import Any, TypeVar

from strawberry.dataloader import DataLoader
from strawberry.types import Info as _Info

from resolvers import journey_reads, journeys, loaders, merge_history
from resolvers.documents import ClaimDoc, ContactDoc, MergeEventDoc, MergeSetDoc, NoteDoc
from resolvers.principal import Permission, Principal
from resolvers.store import Store
from schema.limits import DEFAULT_LIMITS, QueryLimits
from schema.web_loaders import WebLoaders

MAX_BATCH = 500


class Loaders:
    """DataLoaders for one request: calls made in the same event-loop turn share a batch."""

    def __init__(self, store: Store, org: str) -> None:
        self.contact: DataLoader[str, ContactDoc | None] = DataLoader(
            partial(loaders.contacts_by_id, store, org), max_batch_size=MAX_BATCH
        )
        self.claims: DataLoader[str, list[ClaimDoc]] = DataLoader(
            partial(loaders.claims_by_contact, store, org), max_batch_size=MAX_BATCH
        )
        self.notes: DataLoader[tuple[str, ...], list[NoteDoc]] = DataLoader(
            partial(loaders.notes_by_members, store, org), max_batch_size=MAX_BATCH
        )
        self.merge_set: DataLoader[str, MergeSetDoc | None] = DataLoader(
            partial(loaders.merge_sets_by_id, store, org), max_batch_size=MAX_BATCH
        )
        self.merge_history: DataLoader[str, list[MergeEventDoc]] = DataLoader(
            partial(merge_history.history_by_contact, store, org), max_batch_size=MAX_BATCH
        )
        # Journeys and BI pulls: a contact with its canonical contact and merge set in one
        # command (primes ``contact`` and ``merge_set``), a page of conversations may link
        # to 1,000 contacts, so the batch holds a whole page.
        self.links: DataLoader[str, loaders.ContactLink | None] = DataLoader(
            partial(_load_links, self, store, org), max_batch_size=LINKS_MAX_BATCH
        )
        # the same without merge sets, for pages whose rows show nothing of a contact's set
        self.linked: DataLoader[str, loaders.LinkedContact | None] = DataLoader(
            partial(_load_linked, self, store, org), max_batch_size=LINKS_MAX_BATCH
        )
        self.conversation_page: DataLoader[journeys.PageRequest, journeys.ConversationPage] = (
            DataLoader(partial(journeys.conversation_pages, store, org), max_batch_size=MAX_BATCH)
        )
        # a journey's summary and pages: one set's summary and page in one read
        self.journey_reads: DataLoader[journey_reads.JourneyRead, journey_reads.JourneyAnswer] = (
            DataLoader(partial(journey_reads.journey_reads, store, org), max_batch_size=MAX_BATCH)
        )
        self.web = WebLoaders(store, org)  # web journeys: cookies, sessions, their events

    async def journey_summary(self, members: tuple[str, ...]) -> journeys.JourneySummary:
        summary = await self.journey_reads.load(journey_reads.SummaryKey(members))
        assert isinstance(summary, journeys.JourneySummary)
        return summary

    async def journey_page(self, request: journeys.PageRequest) -> journeys.ConversationPage:
        page = await self.journey_reads.load(request)
        assert not isinstance(page, journeys.JourneySummary)
        return page


LINKS_MAX_BATCH = 1000


async def _load_links(
    owner: Loaders, store: Store, org: str, ids: list[str]
) -> list[loaders.ContactLink | None]:
    links = await loaders.contact_links(store, org, ids)
    _prime_contacts(owner, links)
    for link in links:
        if link is not None and link.merge_set is not None:
            owner.merge_set.prime(link.merge_set["_id"], link.merge_set)
    return links


async def _load_linked(
    owner: Loaders, store: Store, org: str, ids: list[str]
) -> list[loaders.LinkedContact | None]:
    linked = await loaders.linked_contacts(store, org, ids)
    _prime_contacts(owner, linked)
    return linked


def _prime_contacts(owner: Loaders, links: Iterable[loaders.LinkedContact | None]) -> None:
    for link in links:
        if link is None:
            continue
        owner.contact.prime(link.contact["_id"], link.contact)
        if link.canonical is not None:
            owner.contact.prime(link.canonical["_id"], link.canonical)


@dataclass
class Context:
    principal: Principal
    store: Store
    loaders: Loaders
    extras: dict[str, Any] = field(default_factory=dict)
    connection_params: dict[str, Any] | None = None  # a websocket's connection_init payload
    limits: QueryLimits = DEFAULT_LIMITS  # read by schema.limits.QueryLimiter per request

    @classmethod
    def create(
        cls, principal: Principal, store: Store, limits: QueryLimits = DEFAULT_LIMITS
    ) -> Context:
        return cls(
            principal=principal, store=store, loaders=Loaders(store, principal.org), limits=limits
        )

    def authenticate(self, principal: Principal) -> None:
        """A websocket authenticates after its context exists (in connection_init)."""
        self.principal = principal
        self.loaders = Loaders(self.store, principal.org)

    @property
    def org(self) -> str:
        return self.principal.org

    def require(self, permission: Permission) -> None:
        self.principal.require(permission)


Info = _Info[Context, None]


K = TypeVar("K")
V = TypeVar("V")
R = TypeVar("R")


def resolve_cached(loader: DataLoader[K, V], key: K, convert: Callable[[V], R]) -> R | Awaitable[R]:
    """``convert`` of the loader's value for ``key``: at once when the loader already holds it
    (loaded or primed), else an awaitable. A sync resolver may return either to graphql-core;
    rows of a page whose relations were primed then resolve without a task per row."""
    future = loader.cache_map.get(key)
    done = future is not None and future.done() and not future.cancelled()
    if future is not None and done and future.exception() is None:
        return convert(future.result())
    return _convert_later(loader.load(key), convert)


async def _convert_later(value: Awaitable[V], convert: Callable[[V], R]) -> R:
    return convert(await value)
