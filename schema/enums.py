"""GraphQL enums: the domain's own enums, registered with Strawberry in place."""

from __future__ import annotations

import strawberry

from resolvers.changes import ChangeKind
from resolvers.contact_fields import ContactType
from resolvers.conversations import Channel, Direction
from resolvers.identifiers import IdentifierType

for _enum in (ContactType, IdentifierType, Channel, Direction, ChangeKind):
    strawberry.enum(_enum)

__all__ = ["ChangeKind", "Channel", "ContactType", "Direction", "IdentifierType"]
