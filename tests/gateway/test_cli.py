"""The ``scv`` command line, run in-process against the session's server."""

from __future__ import annotations

import asyncio
import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from pymongo import AsyncMongoClient
from typer.testing import CliRunner

from gateway.auth import principal_from_token
from gateway.cli import app
from gateway.embedded import EmbeddedServer, free_port
from resolvers.store import Doc

CSV = """firstName,lastName,cellPhone,personalEmail,externalIds,address.city,surveyOptOut
Alexis,Smith,+1 803-123-0000,alexis@example.com,crm:42,Columbia,false
David,Jones,803 123 0000,,,,true
,NoFirstName,,,,,
Eve,Bad,,not-an-email,,,
"""


@pytest.fixture
def cli_env(mongo_uri: str, db_name: str, monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv("MONGODB_URI", mongo_uri)
    monkeypatch.setenv("SCV_DB_NAME", db_name)
    monkeypatch.setenv("SCV_JWT_SECRET", "cli-secret-" + "y" * 32)
    return db_name


async def test_import_creates_contacts_reports_bad_rows_and_is_idempotent(
    cli_env: str, client: AsyncMongoClient[Doc], tmp_path: Path
) -> None:
    source = tmp_path / "contacts.csv"
    source.write_text(CSV)
    runner = CliRunner()
    first = await asyncio.to_thread(runner.invoke, app, ["import", str(source), "--org", "acme"])
    assert first.exit_code == 1, first.output
    assert "created 2, updated 0, unchanged 0, errors 2" in first.output
    assert "firstName and lastName are required" in first.output
    contacts = client[cli_env]["contacts"]
    assert await contacts.count_documents({"org": "acme", "type": "CURATED"}) == 2
    alexis = await contacts.find_one({"firstName": "Alexis"})
    assert alexis is not None
    assert alexis["externalIds"] == [{"source": "crm", "value": "42"}]
    assert alexis["address"]["city"] == "Columbia"
    claim = await client[cli_env]["identifiers"].find_one({"key": "PHONE:+18031230000"})
    assert claim is not None and claim["contactId"] == alexis["_id"]

    again = await asyncio.to_thread(runner.invoke, app, ["import", str(source), "--org", "acme"])
    assert "created 0, updated 0, unchanged 2, errors 2" in again.output
    assert await contacts.count_documents({"org": "acme"}) == 2

    source.write_text(CSV.replace("Columbia", "Charleston"))
    changed = await asyncio.to_thread(runner.invoke, app, ["import", str(source), "--org", "acme"])
    assert "created 0, updated 1, unchanged 1, errors 2" in changed.output
    alexis = await contacts.find_one({"firstName": "Alexis"})
    assert alexis is not None and alexis["address"]["city"] == "Charleston"


def test_token_command_mints_a_token_for_the_secret(cli_env: str) -> None:
    result = CliRunner().invoke(
        app, ["token", "--org", "acme", "--sub", "bi-tool", "-p", "externalContacts:*:*"]
    )
    assert result.exit_code == 0, result.output
    principal = principal_from_token("cli-secret-" + "y" * 32, result.stdout.strip())
    assert principal.org == "acme" and principal.sub == "bi-tool"
    assert principal.can("externalContacts:contact:view")


def test_schema_command_prints_the_sdl() -> None:
    result = CliRunner().invoke(app, ["schema"])
    assert result.exit_code == 0
    assert "recordInteraction(input: InteractionInput!): Resolution!" in result.stdout


def _serve(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    full = {k: v for k, v in os.environ.items() if k != "MONGODB_URI"}
    full.update(env)
    scv = Path(sys.executable).with_name("scv")
    return subprocess.run(
        [str(scv), "serve"], env=full, capture_output=True, text=True, timeout=60, check=False
    )


def _one_line_error(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr + result.stdout
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    return lines[0]


def test_serve_on_a_busy_port_is_a_one_line_error(tmp_path: Path) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        line = _one_line_error(_serve({"SCV_PORT": str(port), "SCV_DATA_DIR": str(tmp_path / "d")}))
    assert f"cannot listen on 127.0.0.1:{port}" in line


def test_serve_on_a_data_dir_in_use_is_a_one_line_error(tmp_path: Path) -> None:
    data_dir = tmp_path / "shared"
    with EmbeddedServer(data_dir):
        line = _one_line_error(
            _serve({"SCV_PORT": str(free_port()), "SCV_DATA_DIR": str(data_dir)})
        )
    assert "already in use" in line and str(data_dir) in line


async def test_check_reports_violations_and_exits_1(
    cli_env: str, client: AsyncMongoClient[Doc]
) -> None:
    runner = CliRunner()
    clean = await asyncio.to_thread(runner.invoke, app, ["check"])
    assert clean.exit_code == 0, clean.output
    assert "0 invariant violation(s)" in clean.output
    await client[cli_env]["identifiers"].insert_one(
        {
            "org": "acme",
            "key": "PHONE:+18030000000",
            "type": "PHONE",
            "value": "+18030000000",
            "contactId": "nobody",
            "via": "field",
            "claimedAt": None,
            "expiresAt": None,
        }
    )
    dirty = await asyncio.to_thread(runner.invoke, app, ["check", "--org", "acme"])
    assert dirty.exit_code == 1
    assert "1 invariant violation(s)" in dirty.output
    assert "PHONE:+18030000000" in dirty.output


async def test_seed_then_export_writes_every_conversation_once(
    cli_env: str, client: AsyncMongoClient[Doc], tmp_path: Path
) -> None:
    runner = CliRunner()
    seeded = await asyncio.to_thread(
        runner.invoke,
        app,
        [
            "seed",
            "--org",
            "demo",
            "--contacts",
            "60",
            "--merge-sets",
            "3",
            "--conversations",
            "300",
        ],
    )
    assert seeded.exit_code == 0, seeded.output
    assert "300 conversations" in seeded.output
    again = await asyncio.to_thread(
        runner.invoke, app, ["seed", "--org", "demo", "--contacts", "60"]
    )
    assert again.exit_code == 2 and "already holds" in again.output
    target = tmp_path / "out.ndjson"
    exported = await asyncio.to_thread(
        runner.invoke, app, ["export", "--org", "demo", "-o", str(target)]
    )
    assert exported.exit_code == 0, exported.output
    lines = [json.loads(line) for line in target.read_text().splitlines()]
    stored = await client[cli_env]["conversations"].count_documents({"org": "demo"})
    assert len(lines) == stored > 0
    assert len({line["id"] for line in lines}) == len(lines)
    assert {"id", "channel", "startedAt", "individualId", "mergeSetIds"} <= set(lines[0])
    bad = await asyncio.to_thread(runner.invoke, app, ["export", "--since", "yesterday"])
    assert bad.exit_code == 2 and "ISO-8601" in bad.output


def test_serve_stops_its_embedded_database_when_it_stops(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    port = free_port()
    full = {k: v for k, v in os.environ.items() if k != "MONGODB_URI"}
    full.update({"SCV_PORT": str(port), "SCV_DATA_DIR": str(data_dir)})
    scv = Path(sys.executable).with_name("scv")
    gateway = subprocess.Popen(
        [str(scv), "serve"], env=full, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    try:
        uri_file = data_dir.with_name("data.uri")
        for _ in range(300):
            if uri_file.exists():
                break
            time.sleep(0.1)
        host_port = uri_file.read_text().removeprefix("mongodb://").split("/")[0]
        db_port = int(host_port.rsplit(":", 1)[1])
        with socket.create_connection(("127.0.0.1", db_port), timeout=2):
            pass  # the embedded database answers while the gateway runs
    finally:
        gateway.terminate()
        out, _ = gateway.communicate(timeout=30)
    for _ in range(100):
        try:
            with socket.create_connection(("127.0.0.1", db_port), timeout=0.2):
                time.sleep(0.1)
        except OSError:
            break
    else:
        raise AssertionError("the embedded database outlived the gateway")
    assert b"eyJ" in out  # the development token was printed
