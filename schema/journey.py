"""Journeys: every conversation of a merge set, newest first."""

from __future__ import annotations

import strawberry

from resolvers.store import Doc
from schema.context import Info


@strawberry.type
class Journey:
    contact_ids: list[strawberry.ID]


async def journey_of(info: Info, contact: Doc) -> Journey | None:
    """Placeholder until journeys land (issue 5)."""
    return None
