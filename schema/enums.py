"""GraphQL enums: the domain's own enums, registered with Strawberry in place."""

from __future__ import annotations

import strawberry

from resolvers.contact_fields import ContactType
from resolvers.conversations import Channel, Direction
from resolvers.identifiers import IdentifierType

for _enum in (ContactType, IdentifierType, Channel, Direction):
    strawberry.enum(_enum)

__all__ = ["Channel", "ContactType", "Direction", "IdentifierType"]
