"""Bearer tokens: HS256 JWTs carrying ``sub``, ``org``, ``exp`` and ``permissions``."""

from __future__ import annotations

import secrets
import time
from collections.abc import Iterable

import jwt

from resolvers.errors import Unauthenticated
from resolvers.principal import Permission, Principal

ALGORITHM = "HS256"
LEEWAY_S = 30
MAX_TOKEN_CHARS = 8192
MAX_PERMISSIONS = 200
ALL_PERMISSIONS = tuple(str(p) for p in Permission)


def generate_secret() -> str:
    return secrets.token_urlsafe(48)


def mint_token(
    secret: str,
    *,
    org: str,
    sub: str,
    permissions: Iterable[str] = ALL_PERMISSIONS,
    ttl_s: int = 12 * 3600,
) -> str:
    issued = int(time.time())
    claims = {
        "sub": sub,
        "org": org,
        "permissions": list(permissions),
        "iat": issued,
        "nbf": issued,
        "exp": issued + ttl_s,
    }
    return jwt.encode(claims, secret, algorithm=ALGORITHM)


def principal_from_header(secret: str, authorization: str | None) -> Principal:
    """The caller named by an ``Authorization: Bearer <JWT>`` header; UNAUTHENTICATED otherwise."""
    if not authorization:
        raise Unauthenticated("missing bearer token")
    scheme, _, token = authorization.strip().partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthenticated("the Authorization header must be 'Bearer <JWT>'")
    return principal_from_token(secret, token.strip())


def principal_from_token(secret: str, token: str) -> Principal:
    if len(token) > MAX_TOKEN_CHARS:
        raise Unauthenticated("token too long")
    try:
        claims = jwt.decode(
            token,
            secret,
            algorithms=[ALGORITHM],
            leeway=LEEWAY_S,
            options={"require": ["exp", "sub", "org"]},
        )
    except jwt.ExpiredSignatureError:
        raise Unauthenticated("token expired") from None
    except jwt.ImmatureSignatureError:
        raise Unauthenticated("token not valid yet") from None
    except jwt.InvalidTokenError:
        raise Unauthenticated("invalid token") from None
    org, sub, permissions = claims.get("org"), claims.get("sub"), claims.get("permissions", [])
    if not isinstance(org, str) or not org or len(org) > 200:
        raise Unauthenticated("token has no valid org")
    if not isinstance(sub, str) or not sub or len(sub) > 200:
        raise Unauthenticated("token has no valid sub")
    if not isinstance(permissions, list) or len(permissions) > MAX_PERMISSIONS:
        raise Unauthenticated("token permissions must be a list of strings")
    if not all(isinstance(p, str) for p in permissions):
        raise Unauthenticated("token permissions must be a list of strings")
    return Principal(org=org, sub=sub, permissions=frozenset(permissions))
