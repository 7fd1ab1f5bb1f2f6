"""Bearer tokens: HS256 JWTs carrying ``sub``, ``org``, ``exp`` and ``permissions``."""

from __future__ import annotations

import contextlib
import os
import secrets
import time
import warnings
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jwt

from resolvers.errors import Unauthenticated
from resolvers.principal import Permission, Principal

ALGORITHM = "HS256"
LEEWAY_S = 30
MAX_TOKEN_CHARS = 8192
MAX_PERMISSIONS = 200
ALL_PERMISSIONS = tuple(str(p) for p in Permission)
MIN_SECRET_BYTES = 32  # HS256: a key shorter than its 32-byte digest is guessable
TOKEN_TTL_S = 12 * 3600  # `scv token`'s default and the development token's lifetime

# PyJWT warns about a short key on every encode and decode, with a file path; the gateway
# says it once, in one line, instead (secret_length_warning).
warnings.filterwarnings("ignore", category=jwt.InsecureKeyLengthWarning)


def generate_secret() -> str:
    return secrets.token_urlsafe(48)


def secret_length_warning(secret: str) -> str | None:
    """One line when ``secret`` is too short for HS256, else None."""
    size = len(secret.encode())
    if size >= MIN_SECRET_BYTES:
        return None
    return (
        f"SCV_JWT_SECRET is {size} bytes; it should be at least {MIN_SECRET_BYTES} bytes "
        "(e.g. python -c 'import secrets; print(secrets.token_urlsafe(48))')"
    )


def development_secret(path: Path) -> str:
    """Development mode's secret: the one kept in ``path``, else a new one written there.

    The file is owner-only (0600) and survives restarts, so `scv token` mints tokens the
    running development server accepts, for any org, and tokens outlive a restart.
    """
    existing = read_development_secret(path)
    if existing is not None:
        return existing
    secret = generate_secret()
    path.parent.mkdir(parents=True, exist_ok=True)
    staging = path.with_name(f"{path.name}.{os.getpid()}.tmp")
    descriptor = os.open(staging, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w") as handle:
        handle.write(secret + "\n")
    os.replace(staging, path)  # atomic: a concurrent reader sees the old file or the new one
    return secret


def read_development_secret(path: Path) -> str | None:
    """The secret a development server generated in ``path``, if there is a usable one."""
    try:
        text = path.read_text().strip()
    except (OSError, UnicodeDecodeError):
        return None
    if len(text.encode()) < MIN_SECRET_BYTES:
        return None
    with contextlib.suppress(OSError):
        path.chmod(0o600)  # owner-only, even when someone loosened it
    return text


def mint_token(
    secret: str,
    *,
    org: str,
    sub: str,
    permissions: Iterable[str] = ALL_PERMISSIONS,
    ttl_s: int = TOKEN_TTL_S,
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


@dataclass(frozen=True, slots=True)
class _Verified:
    """A token whose signature and claims were checked, and the times it is valid between
    (the leeway included, as PyJWT applies it)."""

    principal: Principal
    valid_from: float
    valid_until: float


# Verified tokens by (secret, token): a client sends the same token with every request, and
# checking it (HS256 and the claims) costs ~0.5 ms a request. Bounded; the oldest go first.
VERIFIED_MAX = 1024
_verified: dict[tuple[str, str], _Verified] = {}


def principal_from_token(secret: str, token: str) -> Principal:
    if len(token) > MAX_TOKEN_CHARS:
        raise Unauthenticated("token too long")
    cached = _verified.get((secret, token))
    if cached is None:
        return _verify(secret, token)
    moment = time.time()
    if moment >= cached.valid_until:
        raise Unauthenticated("token expired")
    if moment < cached.valid_from:
        raise Unauthenticated("token not valid yet")
    return cached.principal


def _remember(secret: str, token: str, claims: dict[str, Any], principal: Principal) -> None:
    """Keeps a verified token with its validity window: ``exp`` (required) plus the leeway,
    from ``nbf`` and ``iat`` (when present) minus the leeway."""
    starts = [float(claims[name]) for name in ("nbf", "iat") if name in claims]
    entry = _Verified(
        principal=principal,
        valid_from=max(starts, default=float("-inf")) - LEEWAY_S,
        valid_until=float(claims["exp"]) + LEEWAY_S,
    )
    while len(_verified) >= VERIFIED_MAX:
        del _verified[next(iter(_verified))]
    _verified[(secret, token)] = entry


def _verify(secret: str, token: str) -> Principal:
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
    principal = Principal(org=org, sub=sub, permissions=frozenset(permissions))
    _remember(secret, token, claims, principal)
    return principal
