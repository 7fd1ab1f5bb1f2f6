"""GraphiQL in a real browser: the system Chromium, driven by Playwright, against a live gateway.

The journey test renders GraphiQL, opens the docs, types and runs a journey query and takes a
screenshot; with the npm assets installed it also proves the page makes no request off the
gateway. The CDN test checks the fallback page's Subresource Integrity, with Playwright playing
the CDN. The tests skip only when no Chromium is found and ``SCV_REQUIRE_BROWSER`` is unset (CI
sets it, so there a missing browser fails). They never download a browser (no ``playwright
install``). With ``SCV_SCREENSHOT=path.png`` the screenshot is also copied there (``make
screenshot`` writes ``docs/graphiql-journey.png`` that way).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from graphql import OperationDefinitionNode, parse
from playwright.async_api import (
    BrowserContext,
    Page,
    Playwright,
    Request,
    Route,
    async_playwright,
)

from gateway.app import create_app
from gateway.graphiql import ASSETS, DEFAULT_ASSETS_DIR, find_assets
from gateway.settings import Settings
from resolvers.store import Store
from tests.conftest import served

CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
TIMEOUT_MS = 60_000  # a cold Chromium on a busy two-core machine is slow; a hang still fails
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"

# GraphiQL 3's CodeMirror 5 editors (the variables editor is there too, hidden)
QUERY_EDITOR = "section[aria-label='Query Editor'] .CodeMirror"
RESPONSE_EDITOR = "section[aria-label='Result Window'] .CodeMirror"
HEADERS_EDITOR = "section[aria-label='Headers'] .graphiql-editor:not(.hidden) .CodeMirror"


def find_chromium() -> str | None:
    for candidate in ("/usr/bin/chromium", "chromium", "chromium-browser"):
        found = shutil.which(candidate)
        if found:
            return found
    return None


def require_chromium() -> str:
    """The Chromium binary; without one, skip, or fail when SCV_REQUIRE_BROWSER is set."""
    path = find_chromium()
    if path is None:
        if os.environ.get("SCV_REQUIRE_BROWSER"):
            pytest.fail(
                "SCV_REQUIRE_BROWSER is set but no Chromium was found (apt-get install chromium)"
            )
        pytest.skip(
            "no Chromium found (apt-get install chromium); SCV_REQUIRE_BROWSER=1 makes this fail"
        )
    return path


@pytest.fixture
def chromium() -> str:
    return require_chromium()


def test_a_missing_browser_skips_unless_required(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(shutil, "which", lambda name: None)
    monkeypatch.delenv("SCV_REQUIRE_BROWSER", raising=False)
    with pytest.raises(pytest.skip.Exception):
        require_chromium()
    monkeypatch.setenv("SCV_REQUIRE_BROWSER", "1")
    with pytest.raises(pytest.fail.Exception, match="SCV_REQUIRE_BROWSER"):
        require_chromium()


@dataclass
class Live:
    url: str  # http://127.0.0.1:PORT
    dev_token: str
    local_assets: bool  # GraphiQL's bundles come from the gateway, not the CDN


@asynccontextmanager
async def serving(settings: Settings, mongo_uri: str) -> AsyncIterator[Live]:
    """A real uvicorn on loopback serving the app in development mode (generated secret)."""
    app = create_app(settings, uri=mongo_uri, secret=None, ensure_indexes=False)
    runtime = app.state.runtime
    assert runtime.dev_token is not None
    local_assets = find_assets(settings.graphiql_assets) is not None
    async with served(app) as port:
        yield Live(f"http://127.0.0.1:{port}", runtime.dev_token, local_assets)


@pytest.fixture
async def live(mongo_uri: str, settings: Settings, store: Store) -> AsyncIterator[Live]:
    async with serving(settings, mongo_uri) as running:
        yield running


async def launch(pw: Playwright, chromium: str, profile: Path) -> BrowserContext:
    """Chromium with a fresh profile, headless, no GPU, no background traffic."""
    context = await pw.chromium.launch_persistent_context(
        str(profile),
        executable_path=chromium,
        headless=True,
        args=CHROMIUM_ARGS,
        viewport={"width": 1440, "height": 900},
        timeout=TIMEOUT_MS,
    )
    context.set_default_timeout(TIMEOUT_MS)
    return context


async def gql(live: Live, query: str, variables: dict[str, Any]) -> Any:
    async with httpx.AsyncClient(base_url=live.url, timeout=30) as http:
        response = await http.post(
            "/graphql",
            json={"query": query, "variables": variables},
            headers={"Authorization": f"Bearer {live.dev_token}"},
        )
    assert response.status_code == 200, response.text
    body = response.json()
    assert "errors" not in body, body["errors"]
    return body["data"]


async def seed(live: Live) -> tuple[str, str]:
    """A curated contact in org dev and a call from its phone; their ids."""
    created = await gql(
        live,
        "mutation($input: ContactInput!) { createContact(input: $input) { id } }",
        {"input": {"firstName": "Ada", "lastName": "Lovelace", "cellPhone": "+1 803-555-0142"}},
    )
    contact_id: str = created["createContact"]["id"]
    conversation_id = f"call-{uuid.uuid4().hex[:12]}"
    started = datetime.now(UTC) - timedelta(minutes=30)
    recorded = await gql(
        live,
        """mutation($input: InteractionInput!) {
             recordInteraction(input: $input) { conversation { id } contact { id } }
           }""",
        {
            "input": {
                "conversationId": conversation_id,
                "channel": "VOICE",
                "startedAt": started.isoformat(),
                "endedAt": (started + timedelta(minutes=7)).isoformat(),
                "identifiers": [{"type": "PHONE", "value": "+1 803-555-0142"}],
                "queue": "Billing",
            }
        },
    )
    assert recorded["recordInteraction"] == {
        "conversation": {"id": conversation_id},
        "contact": {"id": contact_id},
    }
    return contact_id, conversation_id


async def editor_text(page: Page, selector: str) -> str:
    """The text of the CodeMirror 5 editor under ``selector``."""
    text = await page.eval_on_selector(selector, "el => el.CodeMirror.getValue()")
    assert isinstance(text, str)
    return text


async def test_graphiql_runs_a_journey_query(chromium: str, live: Live, tmp_path: Path) -> None:
    contact_id, conversation_id = await seed(live)
    query = (
        f'query Journey {{ journey(contactId: "{contact_id}") {{ conversationCount channels '
        "conversations { edges { node { id channel direction queue } } } } }"
    )
    shot = tmp_path / "graphiql-journey.png"
    external: list[str] = []
    page_errors: list[str] = []

    async def block_external(route: Route, request: Request) -> None:
        external.append(request.url)
        await route.abort()

    async with async_playwright() as pw:
        context = await launch(pw, chromium, tmp_path / "profile")
        try:
            if live.local_assets:  # installed assets: prove the page needs no internet
                await context.route(lambda url: not url.startswith(live.url), block_external)
            page = context.pages[0] if context.pages else await context.new_page()
            page.on("pageerror", lambda error: page_errors.append(str(error)))
            await page.goto(f"{live.url}/graphql")

            # GraphiQL renders, with the development token in its headers editor.
            await page.wait_for_selector(QUERY_EDITOR, state="visible")
            await page.wait_for_selector(HEADERS_EDITOR, state="visible")
            headers = json.loads(await editor_text(page, HEADERS_EDITOR))
            assert headers == {"Authorization": f"Bearer {live.dev_token}"}

            # The docs explorer lists the root types; Query's fields include journey.
            await page.click("button[aria-label='Show Documentation Explorer']")
            docs = page.locator(".graphiql-doc-explorer")
            await docs.get_by_text("Query", exact=True).first.click()
            await docs.locator(".graphiql-doc-explorer-title", has_text="Query").wait_for()
            await docs.get_by_text("journey", exact=True).first.wait_for(state="visible")

            # A journey query, typed into the query editor and run.
            await page.click(QUERY_EDITOR)
            await page.keyboard.press("Control+A")
            await page.keyboard.press("Delete")
            await page.keyboard.insert_text(query)
            assert await editor_text(page, QUERY_EDITOR) == query
            await page.click("button[aria-label='Prettify query (Shift-Ctrl-P)']")
            await page.wait_for_function(
                "selector => document.querySelector(selector).CodeMirror.lineCount() > 5",
                arg=QUERY_EDITOR,
            )
            assert contact_id in await editor_text(page, QUERY_EDITOR)
            await page.click("button[aria-label='Execute query (Ctrl-Enter)']")
            await page.wait_for_function(
                "selector => {"
                "  const el = document.querySelector(selector);"
                "  return !!el && el.CodeMirror.getValue().trim().length > 0;"
                "}",
                arg=RESPONSE_EDITOR,
            )
            result_pane = page.locator("section[aria-label='Result Window']")
            await result_pane.get_by_text(conversation_id).wait_for(state="visible")
            await page.screenshot(path=str(shot))
            result = json.loads(await editor_text(page, RESPONSE_EDITOR))
        finally:
            await context.close()

    assert result["data"] == {
        "journey": {
            "conversationCount": 1,
            "channels": ["VOICE"],
            "conversations": {
                "edges": [
                    {
                        "node": {
                            "id": conversation_id,
                            "channel": "VOICE",
                            "direction": "INBOUND",
                            "queue": "Billing",
                        }
                    }
                ]
            },
        }
    }
    assert "errors" not in result
    assert page_errors == []
    assert external == []
    assert shot.stat().st_size > 10_000
    assert shot.read_bytes()[:8] == PNG_MAGIC
    target = os.environ.get("SCV_SCREENSHOT")
    if target:
        Path(target).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(shot, target)


README = Path(__file__).resolve().parents[2] / "README.md"
README_BLOCK = re.compile(r"^```graphql\n(.*?)^```", re.DOTALL | re.MULTILINE)


def pasted_documents() -> list[tuple[str, str | None]]:
    """Every README operation (each block with one operation) and an anonymous document,
    with the operation name GraphiQL must send for each."""
    found: list[tuple[str, str | None]] = []
    for block in README_BLOCK.findall(README.read_text(encoding="utf-8")):
        operations = [d for d in parse(block).definitions if isinstance(d, OperationDefinitionNode)]
        if len(operations) == 1 and operations[0].name is not None:
            found.append((block, operations[0].name.value))
    return [*found, ("{ __typename }", None)]


async def test_graphiql_sends_the_pasted_documents_operation_at_once(
    chromium: str, live: Live, tmp_path: Path
) -> None:
    """Paste a README query over the default one and press Ctrl-Enter at once: GraphiQL
    updates its operation name 100 ms after an edit, yet the request names the pasted
    document's operation (none for an anonymous one), never the default's SearchContacts."""
    documents = pasted_documents()
    assert len(documents) >= 10
    sent: list[tuple[str | None, str]] = []
    async with async_playwright() as pw:
        context = await launch(pw, chromium, tmp_path / "profile")
        try:
            await context.grant_permissions(["clipboard-read", "clipboard-write"], origin=live.url)
            page = context.pages[0] if context.pages else await context.new_page()
            await page.goto(f"{live.url}/graphql")
            await page.wait_for_selector(QUERY_EDITOR, state="visible")
            for document, _ in documents:
                await page.evaluate("text => navigator.clipboard.writeText(text)", document)
                await page.click(QUERY_EDITOR)
                await page.keyboard.press("Control+A")
                async with page.expect_response(
                    lambda r: (
                        r.request.method == "POST"
                        and "IntrospectionQuery" not in (r.request.post_data or "")
                    )
                ) as answered:
                    await page.keyboard.press("Control+V")
                    await page.keyboard.press("Control+Enter")
                response = await answered.value
                body = json.loads(response.request.post_data or "{}")
                assert body["query"] == document
                sent.append((body.get("operationName"), await response.text()))
        finally:
            await context.close()
    assert [name for name, _ in sent] == [name for _, name in documents]
    for _, answer in sent:
        assert "Unknown operation" not in answer, answer
        assert "operationName must name" not in answer, answer


@pytest.mark.parametrize("tampered", [False, True], ids=["pinned", "tampered"])
async def test_the_cdn_fallback_checks_what_the_cdn_serves(
    chromium: str, mongo_uri: str, settings: Settings, store: Store, tmp_path: Path, tampered: bool
) -> None:
    """Without installed assets the page loads the pinned files from the CDN; the browser runs
    them only when they are byte for byte the pinned ones (Subresource Integrity). The CDN is
    played by Playwright with the npm-installed files, so no internet is needed."""
    if find_assets() is None:
        pytest.skip("the npm-installed assets play the CDN here (make assets)")
    cdn_settings = settings.model_copy(update={"graphiql_assets": tmp_path / "not-installed"})
    by_url = {asset.cdn_url: asset for asset in ASSETS}
    served: list[str] = []
    page_errors: list[str] = []

    async def fake_cdn(route: Route, request: Request) -> None:
        asset = by_url.get(request.url)
        if asset is None:
            await route.abort()
            return
        served.append(request.url)
        body = (DEFAULT_ASSETS_DIR / asset.path).read_bytes()
        if tampered and asset.package == "graphiql" and asset.file.endswith(".js"):
            body += b"\n/* not the published file */"
        await route.fulfill(
            status=200,
            body=body,
            content_type=asset.media_type,
            headers={"Access-Control-Allow-Origin": "*"},
        )

    async with serving(cdn_settings, mongo_uri) as live, async_playwright() as pw:
        assert not live.local_assets
        context = await launch(pw, chromium, tmp_path / "profile")
        try:
            await context.route(lambda url: not url.startswith(live.url), fake_cdn)
            page = context.pages[0] if context.pages else await context.new_page()
            page.on("pageerror", lambda error: page_errors.append(str(error)))
            await page.goto(f"{live.url}/graphql", wait_until="load")
            if tampered:
                assert await page.evaluate("typeof window.GraphiQL") == "undefined"
                assert await page.text_content("#graphiql") == "Loading GraphiQL…"
            else:
                await page.wait_for_selector(QUERY_EDITOR, state="visible")
        finally:
            await context.close()

    assert sorted(served) == sorted(by_url)
    if tampered:
        assert any("GraphiQL is not defined" in error for error in page_errors), page_errors
    else:
        assert page_errors == []
