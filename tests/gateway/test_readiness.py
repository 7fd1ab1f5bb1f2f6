"""/readyz answers within its own short deadline whatever the database does, logs a change of
state once at WARNING (not every failed probe at ERROR), and closing a client that was
pointed at a dead database leaves no socket for the garbage collector."""

from __future__ import annotations

import logging
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from gateway.app import create_app
from gateway.embedded import EmbeddedServer, free_port
from gateway.readiness import READY_TIMEOUT_MS
from gateway.settings import Settings
from tests.conftest import SECRET


@pytest.fixture
def hung_database() -> Iterator[str]:
    """A port that accepts connections and never answers a byte (a wedged database)."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(64)  # the kernel completes handshakes; nobody ever reads
        yield f"mongodb://127.0.0.1:{listener.getsockname()[1]}/?directConnection=true"


async def get_readyz(uri: str, settings: Settings) -> httpx.Response:
    app = create_app(settings, uri=uri, secret=SECRET, ensure_indexes=False)
    try:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://gw") as http:
            return await http.get("/readyz")
    finally:
        await app.state.runtime.close(collect=True)


async def test_readyz_on_a_database_that_never_answers_uses_its_own_deadline(
    hung_database: str, settings: Settings
) -> None:
    slow = settings.model_copy(update={"db_timeout_ms": 30_000})  # GraphQL's deadline: 30 s
    response = await get_readyz(hung_database, slow)
    assert response.status_code == 503
    assert response.json() == {
        "status": "unavailable",
        "reason": "database unreachable: ServerSelectionTimeoutError"
        f" (no answer within {READY_TIMEOUT_MS} ms)",
    }
    assert READY_TIMEOUT_MS <= 1000  # the contract: answered within 1 s


async def test_readyz_on_a_refused_database_is_503(settings: Settings) -> None:
    response = await get_readyz(f"mongodb://127.0.0.1:{free_port()}/", settings)
    assert response.status_code == 503
    assert response.json()["reason"] == (
        "database unreachable: ServerSelectionTimeoutError (Connection refused)"
    )


def records(caplog: pytest.LogCaptureFixture, name: str) -> list[tuple[int, str]]:
    return [(r.levelno, r.getMessage()) for r in caplog.records if r.name == name]


async def test_an_outage_is_logged_once_at_warning_and_the_recovery_once(
    tmp_path: Path, settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    port = free_port()
    server = EmbeddedServer(tmp_path / "db", port=port).start()
    app = create_app(settings, uri=server.uri, secret=SECRET, ensure_indexes=False)
    transport = httpx.ASGITransport(app=app)
    try:
        async with httpx.AsyncClient(transport=transport, base_url="http://gw") as http:
            assert [(await http.get("/readyz")).status_code for _ in range(2)] == [200, 200]
            server.stop()
            assert [(await http.get("/readyz")).status_code for _ in range(3)] == [503] * 3
            server = EmbeddedServer(tmp_path / "db", port=port).start()
            assert [(await http.get("/readyz")).status_code for _ in range(2)] == [200, 200]
    finally:
        await app.state.runtime.close(collect=True)
        server.stop()
    (down_level, down), up = records(caplog, "scv.readiness")  # two changes, two lines
    assert down_level == logging.WARNING
    assert down.startswith("not ready: database unreachable: "), down
    assert up == (logging.INFO, "ready again: the database answers")
    requests = records(caplog, "scv.request")
    assert [level for level, _ in requests] == [logging.INFO] * 7, requests
    assert [message for _, message in requests].count("GET /readyz 503") == 3
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR], caplog.text


# In a fresh interpreter: in the test session other tests' clients leave garbage of their own.
CLOSES = """
import asyncio, gc, sys, warnings
import httpx
from gateway.app import create_app
from gateway.database import close_client
from gateway.settings import Settings

async def main(uri):
    settings = Settings(SCV_DB_NAME="leak", SCV_JWT_SECRET="s" * 40)
    for _ in range(10):  # the cancelled attempt is a race: about every other close loses one
        app = create_app(settings, uri=uri, secret="s" * 40, ensure_indexes=False)
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://gw") as http:
            assert (await http.get("/readyz")).status_code == 503
        await app.state.runtime.close(collect=True)

asyncio.run(main(sys.argv[1]))
with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always", ResourceWarning)
    gc.collect()
print(sum(1 for w in caught if w.category is ResourceWarning))
"""


def test_closing_a_client_of_a_dead_database_leaves_no_socket_behind() -> None:
    """PyMongo leaves the socket of a connection attempt cancelled by ``close()`` to the
    garbage collector; ``close_client`` closes it, so no later collection finds one."""
    uri = f"mongodb://127.0.0.1:{free_port()}/"
    run = subprocess.run(
        [sys.executable, "-c", CLOSES, uri], capture_output=True, text=True, timeout=120
    )
    assert run.returncode == 0, run.stderr
    # Without close_client about every other close leaves a socket (5 of 10 measured). With
    # it, one of the ten closes sometimes still does (3 of 12 runs of this script): a
    # connection attempt the close cancels whose socket is still referenced when
    # close_client collects; the closing note of issue 19 records it as left open.
    assert int(run.stdout.strip()) <= 1, run.stdout
