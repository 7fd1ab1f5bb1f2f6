"""The database stops while the gateway runs: readiness and errors, then recovery."""

from __future__ import annotations

import time
from pathlib import Path

import httpx

from gateway.app import create_app
from gateway.embedded import EmbeddedServer, free_port
from gateway.settings import Settings
from tests.conftest import SECRET, Api

CREATE = 'mutation { createContact(input: {firstName: "Per", lastName: "Sist", cellPhone: "+18035551234"}) { id } }'
READ = '{ searchContacts(query: "per") { edges { node { id cellPhone } } } }'


async def test_outage_gives_503_and_service_unavailable_then_recovers(tmp_path: Path) -> None:
    data_dir = tmp_path / "db"
    port = free_port()
    server = EmbeddedServer(data_dir, port=port).start()
    settings = Settings(SCV_DB_NAME="outage", SCV_JWT_SECRET=SECRET, SCV_DB_TIMEOUT_MS=1000)
    app = create_app(settings, uri=server.uri, secret=SECRET)
    await app.state.runtime.store.ensure_indexes()
    transport = httpx.ASGITransport(app=app)
    try:
        async with httpx.AsyncClient(transport=transport, base_url="http://gw") as http:
            api = Api(http)
            created = await api.gql(CREATE)
            contact_id = created["createContact"]["id"]
            assert (await http.get("/readyz")).status_code == 200

            server.stop()
            not_ready = await http.get("/readyz")
            assert not_ready.status_code == 503
            body = not_ready.json()
            assert body["status"] == "unavailable"
            # one line saying why, without the database's address
            assert body["reason"].startswith("database unreachable: "), body
            assert "\n" not in body["reason"] and str(port) not in body["reason"]
            assert (await http.get("/healthz")).status_code == 200
            started = time.monotonic()
            response = await api.post(READ)
            elapsed = time.monotonic() - started
            assert response.status_code == 200
            assert [e["extensions"]["code"] for e in response.json()["errors"]] == [
                "SERVICE_UNAVAILABLE"
            ]
            assert elapsed < 5, elapsed  # bounded by SCV_DB_TIMEOUT_MS, not hanging

            server = EmbeddedServer(data_dir, port=port).start()
            ready = await http.get("/readyz")
            assert (ready.status_code, ready.json()["status"]) == (200, "ready")
            data = await api.gql(READ)
            assert data["searchContacts"]["edges"] == [
                {"node": {"id": contact_id, "cellPhone": "+18035551234"}}
            ]
    finally:
        await app.state.runtime.close()
        server.stop()
