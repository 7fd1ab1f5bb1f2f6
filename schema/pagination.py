"""Relay-style connections: one generic ``Connection[T]`` / ``Edge[T]`` with ``PageInfo``.

Every list that pages is a ``Connection`` of its node type; Strawberry names
``Connection[Contact]`` ``ContactConnection`` and ``Edge[Contact]`` ``ContactEdge``. A
connection only adapts a domain page (``resolvers.pagination.Page``): it holds no filter and
reads nothing itself; ``totalCount`` runs the page's own count, and only when selected.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Generic, TypeVar

import strawberry

from resolvers.pagination import Page, Total

T = TypeVar("T")
D = TypeVar("D")  # the stored document a node shows


@strawberry.type
class PageInfo:
    has_next_page: bool
    end_cursor: str | None
    has_previous_page: bool = strawberry.field(
        description="True when the page was asked for with `after`: edges came before it. "
        "Pages go forward only (first/after)."
    )
    start_cursor: str | None = strawberry.field(
        description="The cursor of the page's first edge; null for an empty page."
    )

    @classmethod
    def of(cls, cursors: list[str], *, has_next: bool, after_given: bool) -> PageInfo:
        """The page info of a forward page whose edges carry ``cursors``."""
        return cls(
            has_next_page=has_next,
            end_cursor=cursors[-1] if cursors else None,
            has_previous_page=after_given,
            start_cursor=cursors[0] if cursors else None,
        )


@strawberry.type
class Edge(Generic[T]):
    cursor: str
    node: T


@strawberry.type
class Connection(Generic[T]):
    edges: list[Edge[T]]
    page_info: PageInfo
    total: strawberry.Private[Total]

    @strawberry.field
    async def total_count(self) -> int:
        return await self.total()

    @classmethod
    def of(cls, page: Page[D], node: Callable[[D], T], *, after_given: bool) -> Connection[T]:
        """The connection of a domain page, each document shown as ``node(doc)``."""
        return Connection(
            edges=[
                Edge(cursor=cursor, node=node(doc))
                for doc, cursor in zip(page.docs, page.cursors, strict=True)
            ],
            page_info=PageInfo.of(page.cursors, has_next=page.has_next, after_given=after_given),
            total=page.total,
        )


@strawberry.type
class UncountedConnection(Generic[T]):
    """A connection whose list has no ``totalCount`` in the contract (the change feed, the
    timeline, erasure receipts): edges and page info only. Subclass it once per node type
    with the contract's name, e.g. ``class ChangeConnection(UncountedConnection[Change])``."""

    edges: list[Edge[T]]
    page_info: PageInfo
