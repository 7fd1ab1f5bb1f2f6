"""Automatic persisted queries, Apollo's protocol (what ``PersistedQueryLink`` speaks).

A request whose ``extensions.persistedQuery`` is ``{"version": 1, "sha256Hash": H}``:

* without a query: the query registered under ``H`` runs; an unknown ``H`` is answered with
  the error ``PERSISTED_QUERY_NOT_FOUND`` (HTTP 200, message ``PersistedQueryNotFound``, the
  text Apollo's link looks for), and the client sends the query with the hash next;
* with a query: ``H`` must be the SHA-256 of the query (else ``BAD_USER_INPUT``); the query is
  registered under ``H`` and runs.

A hash that is not 64 hexadecimal characters or a version other than 1 is ``BAD_USER_INPUT``
(HTTP 400). The store is an LRU bounded by the total length of the queries it holds, shared by
every org of this process: a hash only names a query text whoever can send the text knows.
"""

from __future__ import annotations

import hashlib
import re
from typing import Final

from cachetools import LRUCache

from gateway.graphql_request import GraphQLParams, RequestRefused, bad_request
from resolvers.errors import PersistedQueryNotFound

__all__ = ["DEFAULT_BUDGET", "NOT_FOUND_MESSAGE", "PersistedQueries"]

DEFAULT_BUDGET: Final = 8 * 1024 * 1024  # characters of query text held at most
ENTRY_OVERHEAD: Final = 128  # what an entry costs besides its text (so tiny ones are bounded)
NOT_FOUND_MESSAGE: Final = "PersistedQueryNotFound"
_SHA256_HEX = re.compile(r"[0-9a-fA-F]{64}")


def _size(query: str) -> int:
    return len(query) + ENTRY_OVERHEAD


class PersistedQueries:
    """The hash → query store of one gateway process and the protocol's rules."""

    def __init__(self, budget: int = DEFAULT_BUDGET) -> None:
        self.queries: LRUCache[str, str] = LRUCache(maxsize=budget, getsizeof=_size)

    def resolve(self, params: GraphQLParams) -> GraphQLParams:
        """``params`` with the query to run; raises :class:`RequestRefused` when there is none."""
        found = params.extensions.get("persistedQuery")
        if found is None:
            return params
        sha256 = _checked_hash(found)
        if params.query is None:
            query = self.queries.get(sha256)
            if query is None:
                raise RequestRefused(200, PersistedQueryNotFound(NOT_FOUND_MESSAGE))
            return params.with_query(query)
        if hashlib.sha256(params.query.encode("utf-8", "surrogatepass")).hexdigest() != sha256:
            raise bad_request("persistedQuery.sha256Hash is not the SHA-256 of the query")
        if _size(params.query) <= self.queries.maxsize:
            self.queries[sha256] = params.query
        return params


def _checked_hash(persisted: object) -> str:
    if not isinstance(persisted, dict):
        raise bad_request("extensions.persistedQuery must be an object")
    version = persisted.get("version")
    if version != 1 or isinstance(version, bool):
        raise bad_request("extensions.persistedQuery.version must be 1")
    sha256 = persisted.get("sha256Hash")
    if not isinstance(sha256, str) or not _SHA256_HEX.fullmatch(sha256):
        raise bad_request("extensions.persistedQuery.sha256Hash must be 64 hexadecimal characters")
    return sha256.lower()
