"""CORS from SCV_CORS_ORIGINS and the per-caller rate limit (CONTRACT.md sections 10, 11)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
import pytest
import websockets

from gateway.app import create_app
from gateway.metrics import KNOWN_CODES
from gateway.settings import Settings
from resolvers.errors import DOMAIN_CODES
from resolvers.store import Store
from tests.conftest import SECRET, Api, codes, served

APP = "https://app.example.com"
QUERY = '{ searchContacts(query: "a") { totalCount } }'


@asynccontextmanager
async def api_with(mongo_uri: str, settings: Settings, **update: Any) -> AsyncIterator[Api]:
    app = create_app(
        settings.model_copy(update=update), uri=mongo_uri, secret=SECRET, ensure_indexes=False
    )
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
        yield Api(http)
    await app.state.runtime.close()


def preflight(origin: str) -> dict[str, str]:
    return {
        "Origin": origin,
        "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "authorization, content-type",
    }


def cors_headers(response: httpx.Response) -> set[str]:
    return {name for name in response.headers if name.lower().startswith("access-control-")}


async def test_an_allowed_origin_passes_preflight_and_reads_the_answer(
    mongo_uri: str, settings: Settings, store: Store
) -> None:
    origins = f" {APP} , http://localhost:5173/ ,"
    async with api_with(mongo_uri, settings, cors_origins=origins) as api:
        for origin in (APP, "http://localhost:5173"):
            allowed = await api.http.options("/graphql", headers=preflight(origin))
            assert allowed.status_code == 200
            assert allowed.headers["access-control-allow-origin"] == origin
            assert "POST" in allowed.headers["access-control-allow-methods"]
            assert "authorization" in allowed.headers["access-control-allow-headers"].lower()
        answer = await api.http.post(
            "/graphql",
            json={"query": QUERY},
            headers={"Origin": APP, "Authorization": f"Bearer {api.token()}"},
        )
        assert answer.status_code == 200
        assert answer.headers["access-control-allow-origin"] == APP
        assert "retry-after" in answer.headers["access-control-expose-headers"].lower()
        # refusals are readable by the page too
        refused = await api.http.post("/graphql", json={"query": QUERY}, headers={"Origin": APP})
        assert refused.status_code == 401
        assert refused.headers["access-control-allow-origin"] == APP


async def test_a_disallowed_origin_gets_no_cors_headers_and_no_error_page(
    mongo_uri: str, settings: Settings, store: Store
) -> None:
    async with api_with(mongo_uri, settings, cors_origins=APP) as api:
        evil = "https://evil.example.com"
        refused = await api.http.options("/graphql", headers=preflight(evil))
        assert refused.status_code == 204
        assert refused.content == b""
        assert cors_headers(refused) == set()
        answer = await api.http.post(
            "/graphql",
            json={"query": QUERY},
            headers={"Origin": evil, "Authorization": f"Bearer {api.token()}"},
        )
        assert answer.status_code == 200
        assert cors_headers(answer) == set()


async def test_without_cors_origins_no_response_has_cors_headers(api: Api) -> None:
    answer = await api.http.post(
        "/graphql",
        json={"query": QUERY},
        headers={"Origin": APP, "Authorization": f"Bearer {api.token()}"},
    )
    assert answer.status_code == 200
    assert cors_headers(answer) == set()
    preflighted = await api.http.options("/graphql", headers=preflight(APP))
    assert cors_headers(preflighted) == set()


async def test_over_the_rate_limit_is_429_with_retry_after_per_subject_and_org(
    mongo_uri: str, settings: Settings, store: Store
) -> None:
    async with api_with(mongo_uri, settings, rate_limit_per_minute=3) as api:
        for _ in range(3):
            assert (await api.post(QUERY)).status_code == 200
        limited = await api.post(QUERY)
        assert limited.status_code == 429
        # until a request would pass: the rest of this minute, then the part of the next one
        # during which this full minute still weighs too much (60 s x 1/3): at most 80 s
        assert 1 <= int(limited.headers["retry-after"]) <= 80
        assert codes(limited.json()["errors"]) == ["RATE_LIMITED"]
        # GET and the export count against the same caller
        assert (
            await api.http.get(
                "/graphql",
                params={"query": QUERY},
                headers={"Authorization": f"Bearer {api.token()}"},
            )
        ).status_code == 429
        export = await api.http.get(
            "/export/conversations.ndjson", headers={"Authorization": f"Bearer {api.token()}"}
        )
        assert export.status_code == 429
        # another subject of the org, and the same subject in another org, have their own
        assert (await api.post(QUERY, sub="agent-2")).status_code == 200
        assert (await api.post(QUERY, org="globex")).status_code == 200


def test_the_error_vocabulary_has_the_new_codes() -> None:
    assert {"RATE_LIMITED", "PERSISTED_QUERY_NOT_FOUND"} <= DOMAIN_CODES
    assert {"RATE_LIMITED", "PERSISTED_QUERY_NOT_FOUND"} <= KNOWN_CODES


async def test_an_allowed_origin_may_open_the_websocket_others_may_not(
    mongo_uri: str, settings: Settings, store: Store
) -> None:
    app = create_app(
        settings.model_copy(update={"cors_origins": APP}),
        uri=mongo_uri,
        secret=SECRET,
        ensure_indexes=False,
    )
    protocol = [websockets.Subprotocol("graphql-transport-ws")]
    async with served(app) as port:
        url = f"ws://127.0.0.1:{port}/graphql"
        async with websockets.connect(
            url, subprotocols=protocol, origin=websockets.Origin(APP)
        ) as ws:
            assert ws.subprotocol == "graphql-transport-ws"
        with pytest.raises(websockets.InvalidStatus) as refused:
            await websockets.connect(
                url, subprotocols=protocol, origin=websockets.Origin("https://evil.example.com")
            )
        assert refused.value.response.status_code == 403


def test_cors_origins_are_checked_and_normalised() -> None:
    settings = Settings(SCV_CORS_ORIGINS="https://App.Example.com:443/, http://localhost:5173")
    assert settings.cors_origin_list == ["http://localhost:5173", "https://app.example.com"]
    assert Settings(SCV_CORS_ORIGINS=" , ").cors_origin_list == []
    with pytest.raises(ValueError, match="origin"):
        Settings(SCV_CORS_ORIGINS="app.example.com")
    with pytest.raises(ValueError, match="origin"):
        Settings(SCV_CORS_ORIGINS="https://app.example.com/path")
