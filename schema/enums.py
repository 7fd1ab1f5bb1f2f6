"""GraphQL enums, registered over the domain's own enums."""

from __future__ import annotations

import strawberry

from resolvers.contact_fields import ContactType as _ContactType
from resolvers.conversations import Channel as _Channel
from resolvers.conversations import Direction as _Direction
from resolvers.identifiers import IdentifierType as _IdentifierType

ContactType = strawberry.enum(_ContactType, name="ContactType")
IdentifierType = strawberry.enum(_IdentifierType, name="IdentifierType")
Channel = strawberry.enum(_Channel, name="Channel")
Direction = strawberry.enum(_Direction, name="Direction")
