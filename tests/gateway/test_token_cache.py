"""Verified tokens are remembered, and a remembered token still expires and starts on time."""

from __future__ import annotations

import time

import jwt
import pytest

from gateway import auth
from resolvers.errors import Unauthenticated

SECRET = "cache-secret-" + "c" * 32


@pytest.fixture(autouse=True)
def empty_cache() -> None:
    auth._verified.clear()


def count_decodes(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    calls: list[str] = []
    decode = jwt.decode

    def counted(token: str, *args: object, **kwargs: object) -> object:
        calls.append(token)
        return decode(token, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(jwt, "decode", counted)
    return calls


def test_a_token_is_checked_once(monkeypatch: pytest.MonkeyPatch) -> None:
    calls = count_decodes(monkeypatch)
    token = auth.mint_token(SECRET, org="acme", sub="agent", permissions=["contact:view"])
    first = auth.principal_from_token(SECRET, token)
    second = auth.principal_from_token(SECRET, token)
    assert first == second and first.org == "acme" and first.sub == "agent"
    assert calls == [token]


def test_a_remembered_token_is_only_valid_for_its_secret() -> None:
    token = auth.mint_token(SECRET, org="acme", sub="agent")
    auth.principal_from_token(SECRET, token)
    with pytest.raises(Unauthenticated, match="invalid token"):
        auth.principal_from_token("another-secret-" + "d" * 32, token)


def test_a_remembered_token_still_expires(monkeypatch: pytest.MonkeyPatch) -> None:
    token = auth.mint_token(SECRET, org="acme", sub="agent", ttl_s=60)
    auth.principal_from_token(SECRET, token)
    issued = time.time()
    monkeypatch.setattr(time, "time", lambda: issued + 60 + auth.LEEWAY_S - 5)
    assert auth.principal_from_token(SECRET, token).org == "acme"  # within the leeway
    monkeypatch.setattr(time, "time", lambda: issued + 60 + auth.LEEWAY_S + 5)
    with pytest.raises(Unauthenticated, match="token expired"):
        auth.principal_from_token(SECRET, token)


def test_a_remembered_token_is_not_valid_before_its_start(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    token = auth.mint_token(SECRET, org="acme", sub="agent")
    auth.principal_from_token(SECRET, token)
    issued = time.time()
    monkeypatch.setattr(time, "time", lambda: issued - auth.LEEWAY_S - 10)
    with pytest.raises(Unauthenticated, match="not valid yet"):
        auth.principal_from_token(SECRET, token)


def test_refused_tokens_are_not_remembered() -> None:
    expired = jwt.encode(
        {"sub": "a", "org": "acme", "exp": int(time.time()) - 3600}, SECRET, algorithm="HS256"
    )
    for _ in range(2):
        with pytest.raises(Unauthenticated, match="token expired"):
            auth.principal_from_token(SECRET, expired)
    assert auth._verified == {}


def test_the_cache_is_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(auth, "VERIFIED_MAX", 3)
    tokens = [auth.mint_token(SECRET, org="acme", sub=f"agent{n}") for n in range(5)]
    for token in tokens:
        auth.principal_from_token(SECRET, token)
    assert [t for _, t in auth._verified] == tokens[2:]  # the oldest went first
