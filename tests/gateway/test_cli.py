"""The ``scv`` command line, run in-process against the session's server."""

from __future__ import annotations

import asyncio
import json
import os
import re
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from pymongo import AsyncMongoClient
from typer.testing import CliRunner, Result

from gateway.auth import principal_from_token
from gateway.cli import app
from gateway.embedded import EmbeddedServer, free_port
from resolvers import importer
from resolvers.principal import Principal
from resolvers.store import Doc, Store
from tests.conftest import Api, refused_sockets_collected

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
    """After saying that it waits (10 s) for the directory's server to exit."""
    data_dir = tmp_path / "shared"
    with EmbeddedServer(data_dir):
        result = _serve({"SCV_PORT": str(free_port()), "SCV_DATA_DIR": str(data_dir)})
    waiting, _, rest = result.stderr.partition("\n")
    assert waiting.startswith("waiting up to 10s for the previous embedded database of")
    line = _one_line_error(subprocess.CompletedProcess(result.args, result.returncode, "", rest))
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
    to_stdout = await asyncio.to_thread(
        runner.invoke, app, ["export", "--org", "demo", "--channels", "VOICE,EMAIL"]
    )
    assert to_stdout.exit_code == 0, to_stdout.output
    piped = [json.loads(line) for line in to_stdout.stdout.splitlines()]
    wanted = [line for line in lines if line["channel"] in ("VOICE", "EMAIL")]
    assert sorted(p["id"] for p in piped) == sorted(w["id"] for w in wanted) != []
    assert f"{len(piped)} conversations exported" in to_stdout.stderr
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
        for _ in range(300):  # stop it once it serves (not half-way through its start-up)
            try:
                if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.1)
        else:
            raise AssertionError("scv serve never answered /healthz")
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


def _import(path: Path, org: str = "acme") -> Result:
    return CliRunner().invoke(app, ["import", str(path), "--org", org])


async def test_import_matches_rows_by_external_id_then_by_email(
    cli_env: str, client: AsyncMongoClient[Doc], tmp_path: Path
) -> None:
    source = tmp_path / "people.csv"
    source.write_text(
        "firstName,lastName,workEmail,externalIds\n"
        "Ana,Lima,ana@example.com,\n"
        "Ben,Ode,ben@example.com,crm:7\n"
    )
    first = await asyncio.to_thread(_import, source)
    assert "created 2, updated 0, unchanged 0, errors 0" in first.output, first.output
    # a later export of the CRM: Ana now has an external id (found by email), Ben a new email
    # (found by external id)
    source.write_text(
        "firstName,lastName,workEmail,externalIds\n"
        "Ana,Lima,ANA@example.com,crm:8\n"
        "Ben,Ode,ben.ode@example.com,crm:7\n"
    )
    second = await asyncio.to_thread(_import, source)
    assert "created 0, updated 2, unchanged 0, errors 0" in second.output, second.output
    contacts = client[cli_env]["contacts"]
    assert await contacts.count_documents({"org": "acme"}) == 2
    ana = await contacts.find_one({"org": "acme", "firstName": "Ana"})
    ben = await contacts.find_one({"org": "acme", "firstName": "Ben"})
    assert ana is not None and ana["externalIds"] == [{"source": "crm", "value": "8"}]
    assert ben is not None and ben["workEmail"] == "ben.ode@example.com"
    third = await asyncio.to_thread(_import, source)
    assert "created 0, updated 0, unchanged 2, errors 0" in third.output


async def test_import_streams_in_batches_and_reports_line_numbers(
    cli_env: str,
    client: AsyncMongoClient[Doc],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr("resolvers.importer.BATCH_ROWS", 3)
    batches: list[int] = []
    real_batch = importer.import_batch

    async def counting(store: Store, principal: Principal, rows: Any, report: Any) -> None:
        batches.append(len(rows))
        await real_batch(store, principal, rows, report)

    monkeypatch.setattr("resolvers.importer.import_batch", counting)
    source = tmp_path / "many.csv"
    rows = [f"P{n},Person,p{n}@example.com,\n" for n in range(7)]
    rows[4] = 'Bad,"Multi\nLine",not-an-email,\n'  # a quoted newline: the row spans 2 lines
    rows.append("Same,Twice,twice@example.com,\n")
    rows.append("Same,Twice,twice@example.com,\n")  # the same row again: unchanged
    source.write_text("firstName,lastName,workEmail,surveyOptOut\n" + "".join(rows))
    result = await asyncio.to_thread(_import, source)
    assert result.exit_code == 1, result.output
    assert "created 7, updated 0, unchanged 1, errors 1" in result.output
    assert batches == [3, 3, 3]
    # the bad row starts on line 6 (header, then P0-P3) and spans two lines
    assert re.search(r"│\s*6\s*│\s*workEmail: not a valid email", result.output), result.output
    assert await client[cli_env]["contacts"].count_documents({"org": "acme"}) == 7


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("", "is empty"),
        ("firstName,lastName,favouriteColour\nA,B,red\n", "unknown column(s) 'favouriteColour'"),
        (b"firstName,lastName\n\xff\xfe,x\n", "cannot read"),
    ],
)
def test_import_of_an_unusable_file_is_a_one_line_error_and_writes_nothing(
    cli_env: str, tmp_path: Path, content: str | bytes, message: str
) -> None:
    source = tmp_path / "bad.csv"
    if isinstance(content, bytes):
        source.write_bytes(content)
    else:
        source.write_text(content)
    result = _import(source)
    assert result.exit_code == 2
    assert message in result.output
    assert "Traceback" not in result.output
    assert len(result.output.strip().splitlines()) == 1, result.output
    missing = _import(tmp_path / "nowhere.csv")
    assert missing.exit_code == 2 and "cannot read" in missing.output


def test_data_commands_against_an_unreachable_database_are_one_line_errors(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    port = free_port()
    monkeypatch.setenv(
        "MONGODB_URI",
        f"mongodb://127.0.0.1:{port}/?directConnection=true&serverSelectionTimeoutMS=300",
    )
    monkeypatch.setenv("SCV_DB_TIMEOUT_MS", "500")
    source = tmp_path / "one.csv"
    source.write_text("firstName,lastName\nA,B\n")
    with refused_sockets_collected():  # each result is dropped once read
        outcomes = [_exit_and_output(args) for args in (["import", str(source)], ["seed"])]
        outcomes += [_exit_and_output(["export"]), _exit_and_output(["check"])]
    for code, output in outcomes:
        assert code == 2, output
        assert "the database did not answer" in output
        assert "Traceback" not in output
        assert len(output.strip().splitlines()) == 1, output


def _exit_and_output(args: list[str]) -> tuple[int, str]:
    result = CliRunner().invoke(app, args)
    return result.exit_code, result.output


async def test_data_commands_share_the_embedded_server_that_serve_runs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`make run` holds the data directory's lock; the CLI finds its server instead of
    starting a second one on the locked directory."""
    data_dir = tmp_path / "data"
    monkeypatch.delenv("MONGODB_URI", raising=False)
    monkeypatch.setenv("SCV_DATA_DIR", str(data_dir))
    monkeypatch.setenv("SCV_DB_NAME", "shared")
    source = tmp_path / "one.csv"
    source.write_text("firstName,lastName,cellPhone\nAlexis,Smith,+18031230000\n")
    with EmbeddedServer(data_dir) as running:  # what `scv serve` starts
        result = await asyncio.to_thread(_import, source, "dev")
        assert result.exit_code == 0, result.output
        mongo: AsyncMongoClient[Doc] = AsyncMongoClient(running.uri)
        try:
            assert await mongo["shared"]["contacts"].count_documents({"org": "dev"}) == 1
        finally:
            await mongo.close()
        checked = await asyncio.to_thread(CliRunner().invoke, app, ["check"])
        assert checked.exit_code == 0, checked.output


async def test_seed_tells_the_seed_documents_stories(
    cli_env: str, api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    result = await asyncio.to_thread(
        CliRunner().invoke,
        app,
        ["seed", "--org", "acme", "--contacts", "10", "--merge-sets", "0", "--conversations", "0"],
    )
    assert result.exit_code == 0, result.output
    assert "6 stories" in result.output
    data = await api.gql(
        """{
          alexisCall: conversation(id: "story-alexis-call") { contact { firstName } }
          shared: reverseLookup(value: "+18031230000") { firstName }
          visitor: identifier(type: COOKIE, value: "gc-visitor") { contact { type } }
          maria: identifier(type: COOKIE, value: "gc-maria") { contact { firstName } }
          whatsapp: identifier(type: WHATSAPP, value: "+18035550142") { contact { whatsAppId } }
          notAPhone: identifier(type: PHONE, value: "+18035550142") { value }
          campaign: conversation(id: "story-campaign-1") { channel contact { firstName } }
          sam: searchContacts(query: "Sam Lee") { edges { node { id mergeSet { size } } } }
        }"""
    )
    assert data["alexisCall"]["contact"]["firstName"] == "Alexis"
    assert [c["firstName"] for c in data["shared"]] == ["Alexis", "David"]
    assert data["visitor"]["contact"]["type"] == "EPHEMERAL"
    assert data["maria"]["contact"]["firstName"] == "Maria"
    assert data["whatsapp"]["contact"]["whatsAppId"] == "+18035550142"
    assert data["notAPhone"] is None
    assert data["campaign"] == {"channel": "CAMPAIGN", "contact": {"firstName": "Alexis"}}
    (sam,) = data["sam"]["edges"]
    assert sam["node"]["mergeSet"]["size"] == 4  # Sam, two auto-created, the new head
    journey = await api.gql(
        "query($id: ID!) { journey(contactId: $id) { channels conversationCount } }",
        {"id": sam["node"]["id"]},
    )
    assert journey["journey"]["conversationCount"] == 4
    assert set(journey["journey"]["channels"]) == {"EMAIL", "SMS", "VOICE"}
    again = await asyncio.to_thread(
        CliRunner().invoke, app, ["seed", "--org", "acme", "--contacts", "10"]
    )
    assert again.exit_code == 2 and "already holds" in again.output
