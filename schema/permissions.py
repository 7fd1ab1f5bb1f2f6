"""Permissions declared on fields: one Strawberry permission class per domain permission.

A field that always needs a permission says so where it is declared,
``@strawberry.field(permission_classes=[CanViewContacts])`` (saleor's ``Meta.permissions``,
Strawberry's ``BasePermission``). The check runs before the resolver, reads only the token's
permissions (no database work), and a caller without the permission gets what
``Principal.require`` gives: the field resolves to null (a non-null field nulls its nearest
nullable parent) with ``FORBIDDEN`` and ``missing permission <permission>``; the rest of the
response is returned.

A subscription declares ``extensions=[stream_permissions(…)]`` instead: its denial is the
stream's first result (a ``next`` message with ``FORBIDDEN``), not a refused operation.

A check that depends on the request (the selection, data already fetched) stays in the
resolver that makes it, and the field declares it with ``metadata=checked_in_code(…)``, so
the authorization matrix reads every permission from the schema.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, Mapping
from typing import Any, ClassVar

from strawberry.permission import BasePermission, PermissionExtension
from strawberry.types import Info

from resolvers.errors import Forbidden
from resolvers.principal import Permission

CHECKED_IN_CODE = "checked_in_code"


class Needs(BasePermission):
    """Grants the field to callers whose token grants ``permission``."""

    permission: ClassVar[Permission]

    def __init_subclass__(cls, permission: Permission, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        cls.permission = permission
        cls.message = f"missing permission {permission}"

    def has_permission(self, source: Any, info: Info[Any, Any], **kwargs: Any) -> bool:
        return bool(info.context.principal.can(self.permission))

    def on_unauthorized(self) -> None:
        raise Forbidden(self.message or "")

    @property
    def schema_directive(self) -> object:
        return None  # the SDL shows no permission directives (Strawberry would add them)


class CanViewContacts(Needs, permission=Permission.CONTACT_VIEW): ...


class CanAddContacts(Needs, permission=Permission.CONTACT_ADD): ...


class CanEditContacts(Needs, permission=Permission.CONTACT_EDIT): ...


class CanDeleteContacts(Needs, permission=Permission.CONTACT_DELETE): ...


class CanPromoteIdentities(Needs, permission=Permission.IDENTITY_PROMOTE): ...


class CanMergeIdentities(Needs, permission=Permission.IDENTITY_MERGE): ...


class CanConfigureIdentity(Needs, permission=Permission.IDENTITY_CONFIGURE): ...


class CanAssociateConversations(Needs, permission=Permission.CONVERSATION_ASSOCIATE): ...


class CanIngestConversations(Needs, permission=Permission.CONVERSATION_INGEST): ...


class CanViewAllConversations(Needs, permission=Permission.CONVERSATION_VIEW_ALL): ...


class CanViewSessions(Needs, permission=Permission.SESSION_VIEW): ...


class CanEraseContacts(Needs, permission=Permission.CONTACT_ERASE): ...


class CanManageWebhooks(Needs, permission=Permission.WEBHOOK_MANAGE): ...


def checked_in_code(*permissions: Permission) -> Mapping[str, tuple[Permission, ...]]:
    """Field metadata: the resolver checks these itself, when the request makes them needed."""
    return {CHECKED_IN_CODE: permissions}


class StreamPermissions(PermissionExtension):
    """Permission classes of a subscription: denied, the stream yields the error first."""

    def _on_unauthorized(self, permission: BasePermission) -> Any:
        return _denied(permission)


async def _denied(permission: BasePermission) -> AsyncGenerator[Any, None]:
    permission.on_unauthorized()  # raises
    yield None  # pragma: no cover - never reached; makes this an async generator


def stream_permissions(*classes: type[Needs]) -> StreamPermissions:
    return StreamPermissions([cls() for cls in classes], use_directives=False)
