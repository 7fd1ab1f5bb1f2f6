"""The per-request DataLoaders of web journeys: each batch is one database command."""

from __future__ import annotations

from functools import partial

from strawberry.dataloader import DataLoader

from resolvers import web_journeys, web_sessions
from resolvers.store import Store
from resolvers.web_documents import WebSessionDoc

MAX_BATCH = 500


class WebLoaders:
    """Cookies of merge sets, their session pages and counts, session events, claimants."""

    def __init__(self, store: Store, org: str) -> None:
        self.cookies: DataLoader[tuple[str, ...], tuple[str, ...]] = DataLoader(
            partial(web_sessions.cookies_of_sets, store, org), max_batch_size=MAX_BATCH
        )
        self.sessions: DataLoader[web_sessions.SessionRequest, list[WebSessionDoc]] = DataLoader(
            partial(web_sessions.session_rows, store, org), max_batch_size=MAX_BATCH
        )
        self.session_count: DataLoader[tuple[str, ...], int] = DataLoader(
            partial(web_sessions.session_counts, store, org), max_batch_size=MAX_BATCH
        )
        self.events: DataLoader[web_journeys.EventRequest, web_journeys.WebEventPage] = DataLoader(
            partial(web_journeys.event_pages, store, org), max_batch_size=MAX_BATCH
        )
        self.claimant: DataLoader[str, str | None] = DataLoader(
            partial(web_journeys.claimants, store, org), max_batch_size=MAX_BATCH
        )
