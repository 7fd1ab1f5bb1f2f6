"""GraphQL enums, registered over the domain's own enums."""

from __future__ import annotations

import strawberry

from resolvers.contact_fields import ContactType as _ContactType
from resolvers.identifiers import IdentifierType as _IdentifierType

ContactType = strawberry.enum(_ContactType, name="ContactType")
IdentifierType = strawberry.enum(_IdentifierType, name="IdentifierType")
