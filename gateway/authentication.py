"""The one place a bearer token becomes a :class:`Principal`: Starlette's authentication.

:class:`BearerTokens` is the ``AuthenticationBackend`` of the app's
``AuthenticationMiddleware``: every HTTP request (GraphQL GET and POST, the export) is
authenticated once, before its endpoint, into ``request.user``; an endpoint that needs a
caller asks :func:`principal_of`, which raises the ``UNAUTHENTICATED`` error the token earned
(missing, malformed, expired, …). Endpoints without a caller (``/healthz``, ``/metrics``,
GraphiQL's page) never ask. A WebSocket sends its token later, in ``connection_init``: the
GraphQL app hands that payload's ``Authorization`` to :meth:`BearerTokens.principal`, the same
parsing function.
"""

from __future__ import annotations

from starlette.authentication import (
    AuthCredentials,
    AuthenticationBackend,
    BaseUser,
    SimpleUser,
    UnauthenticatedUser,
)
from starlette.requests import HTTPConnection

from gateway.auth import principal_from_header
from resolvers.errors import Unauthenticated
from resolvers.principal import Principal


class Caller(SimpleUser):
    """A request whose bearer token is valid."""

    def __init__(self, principal: Principal) -> None:
        super().__init__(principal.sub)
        self.principal = principal


class Anonymous(UnauthenticatedUser):
    """A request without a valid bearer token, and why."""

    def __init__(self, error: Unauthenticated) -> None:
        self.error = error


class BearerTokens(AuthenticationBackend):
    """``Authorization: Bearer <JWT>`` (HS256) → :class:`Caller`, else :class:`Anonymous`."""

    def __init__(self, secret: str) -> None:
        self.secret = secret

    def principal(self, authorization: str | None) -> Principal:
        """The caller an ``Authorization`` value names; UNAUTHENTICATED otherwise."""
        return principal_from_header(self.secret, authorization)

    async def authenticate(self, conn: HTTPConnection) -> tuple[AuthCredentials, BaseUser] | None:
        if conn.scope["type"] != "http":
            return None  # a WebSocket authenticates in connection_init
        try:
            principal = self.principal(conn.headers.get("authorization"))
        except Unauthenticated as error:
            return AuthCredentials(), Anonymous(error)
        return AuthCredentials(sorted(principal.permissions)), Caller(principal)


def principal_of(conn: HTTPConnection) -> Principal:
    """The authenticated caller of a request; raises its UNAUTHENTICATED error otherwise."""
    user = conn.scope.get("user")
    if isinstance(user, Caller):
        return user.principal
    if isinstance(user, Anonymous):
        raise user.error
    raise Unauthenticated("missing bearer token")
