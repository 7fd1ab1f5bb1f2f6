"""The self-hosted GraphiQL page: offline assets, pre-filled headers, safe embedding."""

from __future__ import annotations

import json
import re
import warnings
from collections.abc import Iterator

import pytest
from starlette.applications import Starlette
from starlette.exceptions import StarletteDeprecationWarning
from starlette.requests import Request
from starlette.responses import HTMLResponse
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from gateway.graphiql import STATIC_DIR, STATIC_URL_PREFIX, graphiql_html

with warnings.catch_warnings():
    # Starlette 1.x prefers httpx2 and warns when its TestClient falls back to httpx, which
    # pytest's filterwarnings=error would turn into a collection error.
    warnings.filterwarnings(
        "ignore",
        message=r"Using `httpx` with `starlette\.testclient` is deprecated",
        category=StarletteDeprecationWarning,
    )
    from starlette.testclient import TestClient

TOKEN = "abc.def"

_SCRIPT_SRC = re.compile(r"<script\b[^>]*\bsrc=\"([^\"]*)\"", re.IGNORECASE)
_LINK_HREF = re.compile(r"<link\b[^>]*\bhref=\"([^\"]*)\"", re.IGNORECASE)
_STYLESHEET_HREF = re.compile(
    r"<link\b(?=[^>]*\brel=\"stylesheet\")[^>]*\bhref=\"([^\"]*)\"", re.IGNORECASE
)
_CONFIG = re.compile(
    r"<script id=\"graphiql-config\" type=\"application/json\">(.*?)</script>", re.DOTALL
)


def _page(request: Request) -> HTMLResponse:
    return HTMLResponse(graphiql_html(headers={"Authorization": f"Bearer {TOKEN}"}))


@pytest.fixture(scope="module")
def client() -> Iterator[TestClient]:
    app = Starlette(
        routes=[
            Route("/", _page),
            Mount(STATIC_URL_PREFIX, app=StaticFiles(directory=STATIC_DIR), name="graphiql"),
        ]
    )
    with TestClient(app) as test_client:
        yield test_client


@pytest.fixture(scope="module")
def page(client: TestClient) -> str:
    response = client.get("/")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    text: str = response.text
    return text


def _config(html: str) -> dict[str, object]:
    match = _CONFIG.search(html)
    assert match is not None, "no graphiql-config block in the page"
    config = json.loads(match.group(1))
    assert isinstance(config, dict)
    return config


def test_static_dir_holds_the_bundles() -> None:
    assert STATIC_DIR.is_dir()
    for name in ("graphiql.min.js", "graphiql.min.css", "README.md"):
        assert (STATIC_DIR / name).is_file(), name


def test_page_references_no_remote_urls(page: str) -> None:
    refs = _SCRIPT_SRC.findall(page) + _LINK_HREF.findall(page)
    assert refs
    for ref in refs:
        assert not ref.lower().startswith(("http://", "https://", "//")), ref
    assert "http://" not in page
    assert "https://" not in page


def test_every_asset_is_served(page: str, client: TestClient) -> None:
    scripts = _SCRIPT_SRC.findall(page)
    stylesheets = _STYLESHEET_HREF.findall(page)
    assert len(scripts) >= 3  # react, react-dom, graphiql
    assert len(stylesheets) >= 1
    for url in scripts + stylesheets:
        assert url.startswith(f"{STATIC_URL_PREFIX}/"), url
        response = client.get(url)
        assert response.status_code == 200, url
        assert len(response.content) > 5_000, url
    assert any(url.endswith("graphiql.min.js") for url in scripts)
    assert any(url.endswith("graphiql.min.css") for url in stylesheets)


def test_react_loads_before_graphiql(page: str) -> None:
    names = [url.rsplit("/", 1)[-1] for url in _SCRIPT_SRC.findall(page)]
    assert names.index("react.production.min.js") < names.index("graphiql.min.js")
    assert names.index("react-dom.production.min.js") < names.index("graphiql.min.js")


def test_token_is_embedded_for_the_headers_editor(page: str) -> None:
    config = _config(page)
    headers = config["headers"]
    assert isinstance(headers, str)
    assert json.loads(headers) == {"Authorization": f"Bearer {TOKEN}"}
    assert config["endpoint"] == "/graphql"
    assert "searchContacts" in str(config["defaultQuery"])
    # The headers-editor JSON is itself a JSON string inside the config block.
    assert json.dumps(json.dumps({"Authorization": f"Bearer {TOKEN}"}, indent=2)) in page
    assert "shouldPersistHeaders: false" in page
    assert 'defaultEditorToolsVisibility = "headers"' in page


def test_without_headers_nothing_is_prefilled() -> None:
    html = graphiql_html(endpoint="/api/graphql")
    config = _config(html)
    assert config["headers"] is None
    assert config["endpoint"] == "/api/graphql"
    assert "Bearer" not in html


def test_script_breaking_header_value_is_escaped() -> None:
    nasty = "x</script><script>alert(1)</script>&<!-- \u2028\u2029"
    html = graphiql_html(headers={"X-Test": nasty})
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
    html = graphiql_html(endpoint="/graphql?</script>")
    assert "/graphql?</script>" not in html
    assert _config(html)["endpoint"] == "/graphql?</script>"
