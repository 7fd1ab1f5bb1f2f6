"""The per-request context: who is calling, the store, and a fresh set of DataLoaders."""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import partial
from typing import Any

from strawberry.dataloader import DataLoader
from strawberry.types import Info as _Info

from resolvers import loaders
from resolvers.principal import Permission, Principal
from resolvers.store import Doc, Store

MAX_BATCH = 500


class Loaders:
    """DataLoaders for one request: calls made in the same event-loop turn share a batch."""

    def __init__(self, store: Store, org: str) -> None:
        self.contact: DataLoader[str, Doc | None] = DataLoader(
            partial(loaders.contacts_by_id, store, org), max_batch_size=MAX_BATCH
        )
        self.claims: DataLoader[str, list[Doc]] = DataLoader(
            partial(loaders.claims_by_contact, store, org), max_batch_size=MAX_BATCH
        )
        self.notes: DataLoader[tuple[str, ...], list[Doc]] = DataLoader(
            partial(loaders.notes_by_members, store, org), max_batch_size=MAX_BATCH
        )
        self.merge_set: DataLoader[str, Doc | None] = DataLoader(
            partial(loaders.merge_sets_by_id, store, org), max_batch_size=MAX_BATCH
        )


@dataclass
class Context:
    principal: Principal
    store: Store
    loaders: Loaders
    extras: dict[str, Any] = field(default_factory=dict)
    connection_params: dict[str, Any] | None = None  # a websocket's connection_init payload

    @classmethod
    def create(cls, principal: Principal, store: Store) -> Context:
        return cls(principal=principal, store=store, loaders=Loaders(store, principal.org))

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
