"""Root operations of journeys and BI pulls: journey, conversations."""

from __future__ import annotations

import strawberry


@strawberry.type
class JourneyQuery:
    pass
