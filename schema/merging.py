"""Root operations of merge sets: mergeSet, mergeContacts, unmergeContacts."""

from __future__ import annotations

import strawberry


@strawberry.type
class MergeQuery:
    pass


@strawberry.type
class MergeMutation:
    pass
