"""MatchReason: one piece of evidence that two contacts are one person (suggestions, clusters
and the MERGE events of merges made from them)."""

from __future__ import annotations

from collections.abc import Mapping
from enum import StrEnum
from typing import Any

import strawberry

from resolvers import matching


@strawberry.enum
class MatchReasonKind(StrEnum):
    SHARED_IDENTIFIER = matching.SHARED_IDENTIFIER
    SIMILAR_NAME = matching.SIMILAR_NAME
    SAME_ADDRESS = matching.SAME_ADDRESS


@strawberry.type
class MatchReason:
    kind: MatchReasonKind
    field: str | None
    value: str | None

    @classmethod
    def of(cls, reason: matching.Reason) -> MatchReason:
        return cls(kind=MatchReasonKind(reason.kind), field=reason.field, value=reason.value)

    @classmethod
    def from_doc(cls, doc: Mapping[str, Any]) -> MatchReason:
        return cls(
            kind=MatchReasonKind(doc["kind"]), field=doc.get("field"), value=doc.get("value")
        )
