"""One HTTP boundary: one authentication backend, one status table, codes from the domain."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from starlette.requests import HTTPConnection

from gateway.auth import mint_token
from gateway.authentication import Anonymous, BearerTokens, Caller, principal_of
from gateway.http_errors import HTTP_STATUS, RequestRefused, http_status
from resolvers.errors import (
    DOMAIN_CODES,
    PARSE_FAILED,
    VALIDATION_FAILED,
    BadUserInput,
    DomainError,
    Forbidden,
    PersistedQueryNotFound,
    QueryTooComplex,
    RateLimited,
    Unauthenticated,
)
from tests.conftest import SECRET

ROOT = Path(__file__).resolve().parents[2]


def _connection(headers: dict[str, str], kind: str = "http") -> HTTPConnection:
    raw = [(k.lower().encode(), v.encode()) for k, v in headers.items()]
    return HTTPConnection({"type": kind, "headers": raw, "path": "/graphql"})


async def _authenticate(backend: BearerTokens, conn: HTTPConnection) -> None:
    found = await backend.authenticate(conn)
    if found is not None:
        conn.scope["auth"], conn.scope["user"] = found


async def test_the_backend_turns_a_bearer_token_into_the_callers_principal() -> None:
    backend = BearerTokens(SECRET)
    token = mint_token(SECRET, org="acme", sub="agent-7", permissions=["a:b:c"])
    conn = _connection({"Authorization": f"Bearer {token}"})
    await _authenticate(backend, conn)
    assert isinstance(conn.scope["user"], Caller)
    assert conn.scope["auth"].scopes == ["a:b:c"]
    principal = principal_of(conn)
    assert (principal.org, principal.sub, principal.permissions) == (
        "acme",
        "agent-7",
        frozenset({"a:b:c"}),
    )
    # the WebSocket's connection_init goes through the same parsing function
    assert backend.principal(f"Bearer {token}") == principal


@pytest.mark.parametrize(
    ("headers", "message"),
    [
        ({}, "missing bearer token"),
        ({"Authorization": "Basic abc"}, "the Authorization header must be 'Bearer <JWT>'"),
        ({"Authorization": "Bearer not-a-jwt"}, "invalid token"),
    ],
)
async def test_without_a_valid_token_the_request_carries_why(
    headers: dict[str, str], message: str
) -> None:
    conn = _connection(headers)
    await _authenticate(BearerTokens(SECRET), conn)
    assert isinstance(conn.scope["user"], Anonymous)
    assert not conn.scope["user"].is_authenticated
    with pytest.raises(Unauthenticated, match=re.escape(message)):
        principal_of(conn)


async def test_a_websocket_is_not_authenticated_by_its_handshake() -> None:
    token = mint_token(SECRET, org="acme", sub="agent-7")
    conn = _connection({"Authorization": f"Bearer {token}"}, kind="websocket")
    assert await BearerTokens(SECRET).authenticate(conn) is None


def test_the_status_table_maps_domain_errors_to_http_statuses() -> None:
    assert http_status(Unauthenticated("x")) == 401
    assert http_status(Forbidden("x")) == 403
    assert http_status(BadUserInput("x")) == 400
    assert http_status(QueryTooComplex("x")) == 413
    assert http_status(RateLimited("x")) == 429
    assert http_status(PersistedQueryNotFound("x")) == 200
    assert http_status(DomainError("x")) == 500
    assert all(issubclass(kind, DomainError) for kind in HTTP_STATUS)
    refused = RequestRefused(RateLimited("slow down"), headers={"Retry-After": "3"})
    assert (refused.status, refused.code, refused.headers) == (
        429,
        "RATE_LIMITED",
        {"Retry-After": "3"},
    )
    assert RequestRefused(BadUserInput("use POST"), status=405).status == 405


def test_gateway_and_schema_name_no_error_code_as_a_string() -> None:
    """Codes come from resolvers/errors.py: a literal elsewhere could drift from the domain."""
    codes = DOMAIN_CODES | {PARSE_FAILED, VALIDATION_FAILED}
    alternatives = "|".join(sorted(codes))
    literal = re.compile(rf"""["']({alternatives})["']""")
    found = [
        f"{path.relative_to(ROOT)}:{n}: {line.strip()}"
        for package in ("gateway", "schema")
        for path in sorted((ROOT / package).glob("*.py"))
        for n, line in enumerate(path.read_text().splitlines(), 1)
        if literal.search(line)
    ]
    assert found == [], found
