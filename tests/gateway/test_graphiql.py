"""The self-hosted GraphiQL page: npm-installed assets (or the CDN), pre-filled headers, safe
embedding, and nothing of node_modules served but the four bundles."""

from __future__ import annotations

import base64
import hashlib
import io
import json
import logging
import re
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest

from gateway.app import create_app
from gateway.graphiql import (
    ASSETS,
    CDN_BASE,
    DEFAULT_ASSETS_DIR,
    PINNED,
    STATIC_URL_PREFIX,
    find_assets,
    graphiql_html,
)
from gateway.logs import json_handler
from gateway.settings import Settings

TOKEN = "abc.def"
REPO = Path(__file__).resolve().parents[2]
NOWHERE = "mongodb://127.0.0.1:9/?serverSelectionTimeoutMS=100"  # never contacted here
FIX_HINT = "make assets"

_SCRIPT_SRC = re.compile(r"<script\b[^>]*\bsrc=\"([^\"]*)\"", re.IGNORECASE)
_LINK_HREF = re.compile(r"<link\b[^>]*\bhref=\"([^\"]*)\"", re.IGNORECASE)
_STYLESHEET_HREF = re.compile(
    r"<link\b(?=[^>]*\brel=\"stylesheet\")[^>]*\bhref=\"([^\"]*)\"", re.IGNORECASE
)
_ASSET_TAG = re.compile(r"<(?:script|link)\b[^>]*\b(?:src|href)=\"([^\"]*)\"[^>]*>", re.IGNORECASE)
_CONFIG = re.compile(
    r"<script id=\"graphiql-config\" type=\"application/json\">(.*?)</script>", re.DOTALL
)

Gateway = Callable[..., AbstractAsyncContextManager[tuple[httpx.AsyncClient, list[dict[str, Any]]]]]


def _installed() -> bool:
    return all((DEFAULT_ASSETS_DIR / asset.path).is_file() for asset in ASSETS)


needs_npm_assets = pytest.mark.skipif(
    not _installed(), reason=f"GraphiQL assets not installed in {DEFAULT_ASSETS_DIR} (make assets)"
)


@pytest.fixture
def fake_node_modules(tmp_path: Path) -> Path:
    """A node_modules look-alike: the four bundles plus files that must never be served."""
    root = tmp_path / "node_modules"
    for asset in ASSETS:
        path = root / asset.path
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(f"/* {asset.path} */\n" + "x" * 6000)
    (root / "graphiql" / "package.json").write_text('{"name": "graphiql"}')
    (root / "react" / "index.js").write_text("module.exports = 1;")
    (root / "graphiql" / "graphiql.min.js.map").write_text("{}")
    (tmp_path / "secret.txt").write_text("do not serve")
    return root


@pytest.fixture
def gateway() -> Gateway:
    """``gateway(assets_dir, secret=None)``: the real app (development mode unless a secret is
    given) over ASGI, and the JSON log lines of logger scv.gateway written while creating it."""

    @asynccontextmanager
    async def serve(
        assets: Path, secret: str | None = None
    ) -> AsyncIterator[tuple[httpx.AsyncClient, list[dict[str, Any]]]]:
        stream = io.StringIO()
        handler = json_handler(stream)
        logger = logging.getLogger("scv.gateway")
        logger.addHandler(handler)
        try:
            app = create_app(
                Settings(SCV_GRAPHIQL_ASSETS=assets),
                uri=NOWHERE,
                secret=secret,
                ensure_indexes=False,
            )
        finally:
            logger.removeHandler(handler)
        lines = [orjson.loads(line) for line in stream.getvalue().splitlines()]
        transport = httpx.ASGITransport(app=app)
        try:
            async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
                yield http, lines
        finally:
            await app.state.runtime.close()

    return serve


async def _page(http: httpx.AsyncClient) -> str:
    response = await http.get("/graphql", headers={"Accept": "text/html"})
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    return response.text


def _config(html: str) -> dict[str, object]:
    match = _CONFIG.search(html)
    assert match is not None, "no graphiql-config block in the page"
    config = json.loads(match.group(1))
    assert isinstance(config, dict)
    return config


def _asset_refs(html: str) -> list[str]:
    """src/href of every <script>/<link> that loads a file, in document order."""
    return [ref for ref in _ASSET_TAG.findall(html) if not ref.startswith("data:")]


# --- the pins -------------------------------------------------------------------------------


def test_pins_match_web_package_json_and_lock() -> None:
    package = json.loads((REPO / "web" / "package.json").read_text())
    assert package["private"] is True
    assert package["dependencies"] == PINNED  # exact versions, no ranges
    lock = json.loads((REPO / "web" / "package-lock.json").read_text())
    for name, version in PINNED.items():
        assert lock["packages"][f"node_modules/{name}"]["version"] == version
    assert PINNED["graphiql"].startswith("3.")  # 4+ has no UMD build


def test_node_modules_is_git_ignored() -> None:
    ignored = (REPO / ".gitignore").read_text().splitlines()
    assert "web/node_modules/" in ignored
    assert not (REPO / "gateway" / "static").exists()


@needs_npm_assets
def test_installed_files_are_the_pinned_versions_with_their_integrity() -> None:
    # The CDN fallback's integrity attributes must match the very files npm installs.
    for name, version in PINNED.items():
        meta = json.loads((DEFAULT_ASSETS_DIR / name / "package.json").read_text())
        assert meta["version"] == version, f"{name}: run make assets"
    for asset in ASSETS:
        digest = hashlib.sha384((DEFAULT_ASSETS_DIR / asset.path).read_bytes()).digest()
        assert asset.integrity == "sha384-" + base64.b64encode(digest).decode(), asset.path


# --- installed: everything from the gateway ------------------------------------------------


async def test_installed_page_references_no_remote_urls(
    gateway: Gateway, fake_node_modules: Path
) -> None:
    async with gateway(fake_node_modules) as (http, lines):
        page = await _page(http)
    assert not [line for line in lines if "GraphiQL" in line["message"]]
    refs = _asset_refs(page)
    assert refs == [f"{STATIC_URL_PREFIX}/{asset.path}" for asset in ASSETS]
    assert "http://" not in page
    assert "https://" not in page
    assert "integrity=" not in page


async def test_installed_assets_are_served_with_their_content_type(
    gateway: Gateway, fake_node_modules: Path
) -> None:
    async with gateway(fake_node_modules) as (http, _):
        page = await _page(http)
        scripts = _SCRIPT_SRC.findall(page)
        stylesheets = _STYLESHEET_HREF.findall(page)
        assert len(scripts) == 3  # react, react-dom, graphiql
        assert len(stylesheets) == 1
        for url in scripts + stylesheets:
            response = await http.get(url)
            assert response.status_code == 200, url
            name = url.removeprefix(f"{STATIC_URL_PREFIX}/")
            assert response.content == (fake_node_modules / name).read_bytes()
            kind = "text/css" if url in stylesheets else "text/javascript"
            assert response.headers["content-type"].split(";")[0] == kind, url
            head = await http.head(url)
            assert head.status_code == 200
            assert head.content == b""


@pytest.mark.parametrize(
    "path",
    [
        "",
        "graphiql",
        "graphiql/",
        "graphiql/package.json",
        "graphiql/graphiql.min.js.map",
        "react/index.js",
        "react/umd/react.development.js",
        "graphiql.min.js",  # the old flat layout
        "%2e%2e/secret.txt",
        "graphiql/%2e%2e/%2e%2e/secret.txt",
        "react/umd/%2e%2e/%2e%2e/graphiql/graphiql.min.js",
        "..%2fsecret.txt",
        "GRAPHIQL/graphiql.min.js",
    ],
)
async def test_nothing_else_of_node_modules_is_served(
    gateway: Gateway, fake_node_modules: Path, path: str
) -> None:
    async with gateway(fake_node_modules) as (http, _):
        response = await http.get(f"{STATIC_URL_PREFIX}/{path}")
        assert response.status_code == 404, path
        assert b"do not serve" not in response.content
        assert b"exports" not in response.content


async def test_assets_are_read_only(gateway: Gateway, fake_node_modules: Path) -> None:
    async with gateway(fake_node_modules) as (http, _):
        response = await http.post(f"{STATIC_URL_PREFIX}/graphiql/graphiql.min.js")
        assert response.status_code == 405


@needs_npm_assets
async def test_the_npm_bundles_are_served(gateway: Gateway) -> None:
    async with gateway(DEFAULT_ASSETS_DIR) as (http, lines):
        assert lines == []
        for url in _asset_refs(await _page(http)):
            response = await http.get(url)
            assert response.status_code == 200, url
            assert len(response.content) > 5_000, url
        response = await http.get(f"{STATIC_URL_PREFIX}/graphiql/package.json")
        assert response.status_code == 404


# --- not installed: the pinned files from the CDN, and one warning --------------------------


async def test_missing_assets_load_from_the_cdn_with_integrity(
    gateway: Gateway, tmp_path: Path
) -> None:
    async with gateway(tmp_path / "empty") as (http, _):
        page = await _page(http)
        assert _asset_refs(page) == [
            f"{CDN_BASE}/{asset.package}@{PINNED[asset.package]}/{asset.file}" for asset in ASSETS
        ]
        assert _asset_refs(page)[-1] == "https://unpkg.com/graphiql@3.9.0/graphiql.min.js"
        for asset in ASSETS:
            assert f'integrity="{asset.integrity}" crossorigin="anonymous"' in page
        assert STATIC_URL_PREFIX not in page
        for asset in ASSETS:
            response = await http.get(f"{STATIC_URL_PREFIX}/{asset.path}")
            assert response.status_code == 404


async def test_missing_assets_log_one_clear_warning(gateway: Gateway, tmp_path: Path) -> None:
    async with gateway(tmp_path / "empty") as (http, lines):
        await _page(http)
        await _page(http)
    (line,) = lines  # one JSON line at start-up, none per page view
    assert line["level"] == "warning"
    assert line["logger"] == "scv.gateway"
    message = line["message"]
    assert "GraphiQL assets are not installed" in message
    assert str(tmp_path / "empty") in message
    assert CDN_BASE in message
    assert "internet" in message
    assert "`make assets` (needs npm)" in message
    assert "\n" not in message


def test_find_assets_needs_all_four_files(fake_node_modules: Path) -> None:
    assert find_assets(fake_node_modules) == fake_node_modules.resolve()
    (fake_node_modules / "react-dom" / "umd" / "react-dom.production.min.js").unlink()
    assert find_assets(fake_node_modules) is None


# --- the page -------------------------------------------------------------------------------


@pytest.mark.parametrize("installed", [True, False])
async def test_react_loads_before_graphiql(
    gateway: Gateway, fake_node_modules: Path, tmp_path: Path, installed: bool
) -> None:
    async with gateway(fake_node_modules if installed else tmp_path / "empty") as (http, _):
        page = await _page(http)
    names = [url.rsplit("/", 1)[-1] for url in _SCRIPT_SRC.findall(page)]
    assert names.index("react.production.min.js") < names.index("graphiql.min.js")
    assert names.index("react-dom.production.min.js") < names.index("graphiql.min.js")
    assert len(_LINK_HREF.findall(page)) == 2  # the data: favicon and the stylesheet


async def test_development_token_is_in_the_headers_editor(
    gateway: Gateway, fake_node_modules: Path
) -> None:
    async with gateway(fake_node_modules) as (http, _):
        page = await _page(http)
        config = _config(page)
        headers = config["headers"]
        assert isinstance(headers, str)
        token = json.loads(headers)["Authorization"].removeprefix("Bearer ")
        assert token.count(".") == 2
        # the pre-filled token works
        response = await http.post(
            "/graphql",
            json={"query": "{ __typename }"},
            headers={"Authorization": f"Bearer {token}"},
        )
        assert response.status_code == 200
        assert response.json()["data"] == {"__typename": "Query"}
    assert config["endpoint"] == "/graphql"
    assert "searchContacts" in str(config["defaultQuery"])
    assert "shouldPersistHeaders: false" in page
    assert 'defaultEditorToolsVisibility = "headers"' in page


async def test_with_a_configured_secret_nothing_is_prefilled(
    gateway: Gateway, fake_node_modules: Path
) -> None:
    async with gateway(fake_node_modules, secret="s" * 40) as (http, _):
        page = await _page(http)
    assert _config(page)["headers"] is None
    assert "Bearer" not in page


def test_token_is_embedded_for_the_headers_editor() -> None:
    page = graphiql_html(headers={"Authorization": f"Bearer {TOKEN}"}, local_assets=True)
    headers = _config(page)["headers"]
    assert isinstance(headers, str)
    assert json.loads(headers) == {"Authorization": f"Bearer {TOKEN}"}
    # The headers-editor JSON is itself a JSON string inside the config block.
    assert json.dumps(json.dumps({"Authorization": f"Bearer {TOKEN}"}, indent=2)) in page


def test_without_headers_nothing_is_prefilled() -> None:
    html = graphiql_html(endpoint="/api/graphql", local_assets=False)
    config = _config(html)
    assert config["headers"] is None
    assert config["endpoint"] == "/api/graphql"
    assert "Bearer" not in html


@pytest.mark.parametrize("local_assets", [True, False])
def test_script_breaking_header_value_is_escaped(local_assets: bool) -> None:
    nasty = "x</script><script>alert(1)</script>&<!-- \u2028\u2029"
    html = graphiql_html(headers={"X-Test": nasty}, local_assets=local_assets)
    assert "alert(1)" in html  # the text is there, but only in escaped form
    assert "<script>alert(1)" not in html
    assert "</script><script>" not in html
    assert "<!--" not in html
    assert "\u2028" not in html
    assert "\u2029" not in html
    # The config block still decodes back to exactly the original value.
    config = _config(html)
    headers = config["headers"]
    assert isinstance(headers, str)
    assert json.loads(headers) == {"X-Test": nasty}


def test_endpoint_is_escaped_too() -> None:
    html = graphiql_html(endpoint="/graphql?</script>", local_assets=True)
    assert "/graphql?</script>" not in html
    assert _config(html)["endpoint"] == "/graphql?</script>"
