"""Who is calling: the tenant (org), the user or client (sub) and what they may do."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum

from resolvers.errors import Forbidden


class Permission(StrEnum):
    CONTACT_VIEW = "externalContacts:contact:view"
    CONTACT_ADD = "externalContacts:contact:add"
    CONTACT_EDIT = "externalContacts:contact:edit"
    CONTACT_DELETE = "externalContacts:contact:delete"
    IDENTITY_PROMOTE = "externalContacts:identity:promote"
    IDENTITY_MERGE = "externalContacts:identity:merge"
    IDENTITY_CONFIGURE = "externalContacts:identity:configure"
    CONVERSATION_ASSOCIATE = "externalContacts:conversation:associate"
    CONVERSATION_INGEST = "externalContacts:conversation:ingest"
    CONVERSATION_VIEW_ALL = "externalContacts:conversation:viewAll"
    SESSION_VIEW = "externalContacts:session:view"
    CONTACT_ERASE = "externalContacts:contact:erase"
    WEBHOOK_MANAGE = "externalContacts:webhook:manage"


def grants(granted: str, wanted: str) -> bool:
    """True when the granted permission pattern covers ``wanted`` (``*`` matches a segment)."""
    g_parts = granted.split(":")
    w_parts = wanted.split(":")
    if len(g_parts) != len(w_parts):
        return False
    return all(g == "*" or g == w for g, w in zip(g_parts, w_parts, strict=True))


@dataclass(frozen=True)
class Principal:
    org: str
    sub: str
    permissions: frozenset[str] = field(default_factory=frozenset)

    def can(self, permission: Permission | str) -> bool:
        wanted = str(permission)
        return any(grants(granted, wanted) for granted in self.permissions)

    def require(self, permission: Permission | str) -> None:
        if not self.can(permission):
            raise Forbidden(f"missing permission {permission}")
