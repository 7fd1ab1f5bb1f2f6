"""The ``scv`` command line, run in-process against the session's server."""

from __future__ import annotations

import asyncio
import codecs
import json
import os
import re
import socket
import subprocess
import sys
import time
import warnings
from pathlib import Path
from typing import Any

import httpx
import jwt
import pytest
from pymongo import AsyncMongoClient
from typer.testing import CliRunner, Result

from gateway.auth import TOKEN_TTL_S, principal_from_token
from gateway.cli import app
from gateway.embedded import EmbeddedServer, free_port
from gateway.project import project_root
from gateway.settings import Settings
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


async def test_import_then_pairs_finds_near_duplicate_rows(
    cli_env: str, client: AsyncMongoClient[Doc], tmp_path: Path
) -> None:
    source = tmp_path / "twins.csv"
    source.write_text(
        "firstName,lastName,cellPhone,workPhone\n"
        "Jonathan,Smith,+1 803-555-1234,\n"
        "Jonathon,Smith,,803 555 1234\n"
    )
    runner = CliRunner()
    imported = await asyncio.to_thread(runner.invoke, app, ["import", str(source), "--org", "acme"])
    assert imported.exit_code == 0, imported.output
    assert "org acme: 1 probable duplicate pairs" in imported.output
    pairs = client[cli_env]["match_pairs"]
    [pair] = await pairs.find({"org": "acme"}).to_list()
    assert pair["score"] >= 0.9
    await pairs.delete_many({})
    rebuilt = await asyncio.to_thread(runner.invoke, app, ["pairs", "--org", "acme"])
    assert rebuilt.exit_code == 0, rebuilt.output
    assert await pairs.find({"org": "acme"}).to_list() == [pair]


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
    assert "type Mutation {" in result.stdout
    assert "recordInteraction(" in result.stdout
    assert "input: InteractionInput!\n  ): Resolution!" in result.stdout  # described argument


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
    assert again.exit_code == 0 and "already holds the seeded data set" in again.output
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
    started = [line["startedAt"] for line in lines]  # the seed stores them in random order
    assert started == sorted(started, reverse=True)  # newest first
    to_stdout = await asyncio.to_thread(
        runner.invoke, app, ["export", "--org", "demo", "--channels", "VOICE,EMAIL"]
    )
    assert to_stdout.exit_code == 0, to_stdout.output
    piped = [json.loads(line) for line in to_stdout.stdout.splitlines()]
    wanted = [line for line in lines if line["channel"] in ("VOICE", "EMAIL")]
    assert [p["id"] for p in piped] == [w["id"] for w in wanted] != []  # the same order
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


def _import(path: Path, org: str = "acme", *options: str) -> Result:
    return CliRunner().invoke(app, ["import", str(path), "--org", org, *options])


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
    rows[4] = "Bad,Row,not-an-email,\n"
    rows.append("Same,Twice,twice@example.com,\n")
    rows.append("Same,Twice,twice@example.com,\n")  # the same row again: unchanged
    source.write_text("firstName,lastName,workEmail,surveyOptOut\n" + "".join(rows))
    result = await asyncio.to_thread(_import, source)
    assert result.exit_code == 1, result.output
    assert "created 7, updated 0, unchanged 1, errors 1" in result.output
    assert batches == [3, 3, 3]
    # the bad row is on line 6 (header, then P0-P3); its error shows the bad value
    assert "  line 6: workEmail: not a valid email address: 'not-an-email'\n" in result.output
    assert await client[cli_env]["contacts"].count_documents({"org": "acme"}) == 7


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("", "is empty"),
        ("firstName,lastName,favouriteColour\nA,B,red\n", "unknown column(s) 'favouriteColour'"),
        ("firstName,lastName,favouriteColour\n", "the accepted columns are firstName, middleName"),
        ("lastName,workEmail\nB,b@example.com\n", "no firstName column"),
        ('firstName,"lastName\nA,B\n', "the header row has an unterminated quote"),
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
    assert "7 stories" in result.output
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
    assert (
        f"6. Sam Lee merged with the contacts his email and phone created (contact {sam['node']['id']})"
        in result.output
    )
    priya = await api.gql(
        """{ identifier(type: EMAIL, value: "priya.patel@example.com") { contact { journey {
             webSessionCount
             timeline { edges { node { __typename ... on WebSession { landingUrl } } } } } } } }"""
    )
    journey = priya["identifier"]["contact"]["journey"]
    assert journey["webSessionCount"] == 5  # both devices, before and after the form fills
    kinds = [e["node"]["__typename"] for e in journey["timeline"]["edges"]]
    assert kinds == ["Conversation", *["WebSession"] * 5]


def _story_lines(output: str) -> list[str]:
    return [line for line in output.splitlines() if re.match(r"\d\. |   \{ ", line)]


async def test_seed_runs_again_printing_the_stories_and_resets_on_request(
    cli_env: str, client: AsyncMongoClient[Doc]
) -> None:
    small = ["--org", "acme", "--contacts", "10", "--merge-sets", "1", "--conversations", "20"]
    runner = CliRunner()
    first = await asyncio.to_thread(runner.invoke, app, ["seed", *small])
    assert first.exit_code == 0, first.output
    contacts = client[cli_env]["contacts"]
    stored = await contacts.count_documents({"org": "acme"})
    told = _story_lines(first.output)
    assert len(told) == 14  # seven stories, each a title with its contact id and a query

    again = await asyncio.to_thread(runner.invoke, app, ["seed", "--stories", *small])
    assert again.exit_code == 0, again.output
    assert "already holds the seeded data set; nothing written" in again.output
    assert _story_lines(again.output) == told  # the same stories, the same ids
    assert await contacts.count_documents({"org": "acme"}) == stored

    reset = await asyncio.to_thread(runner.invoke, app, ["seed", "--reset", *small])
    assert reset.exit_code == 0, reset.output
    assert f"org acme: {stored + await _others(client, cli_env)} documents deleted" in reset.output
    assert await contacts.count_documents({"org": "acme"}) == stored
    assert len(_story_lines(reset.output)) == 14 and _story_lines(reset.output) != told


async def _others(client: AsyncMongoClient[Doc], db: str) -> int:
    """Documents of org acme outside the contacts collection."""
    names = ("identifiers", "conversations", "merge_sets", "notes", "web_events", "web_sessions")
    return sum([await client[db][n].count_documents({"org": "acme"}) for n in names])


# --- the real `scv`, from anywhere inside the project ---------------------------------------


def _scv(args: list[str], cwd: Path, **env: str) -> subprocess.CompletedProcess[str]:
    """The installed `scv` as a user runs it: no MONGODB_URI, no secret, default data dir."""
    full = {
        k: v
        for k, v in os.environ.items()
        if k not in ("MONGODB_URI", "SCV_JWT_SECRET", "SCV_DATA_DIR")
    }
    full.update(env)
    scv = Path(sys.executable).with_name("scv")
    return subprocess.run(
        [str(scv), *args], cwd=cwd, env=full, capture_output=True, text=True, timeout=120
    )


def _project(tmp_path: Path) -> tuple[Path, Path]:
    """A checkout of this project (its pyproject.toml) and a directory deep inside it."""
    root = tmp_path / "checkout"
    (root / "docs" / "deep").mkdir(parents=True)
    (root / "pyproject.toml").write_text('[project]\nname = "scv-gateway"\nversion = "0"\n')
    return root, root / "docs" / "deep"


def test_data_commands_never_create_a_database_silently(tmp_path: Path) -> None:
    root, inside = _project(tmp_path)
    source = inside / "one.csv"
    source.write_text("firstName,lastName\nA,B\n")
    for args in (["import", str(source)], ["export"], ["check"], ["seed"], ["token"]):
        result = _scv(args, inside, SCV_DB_NAME="firsthour")
        line = _one_line_error(result)
        assert "SCV_JWT_SECRET" in line if args == ["token"] else "MONGODB_URI" in line, line
        if args != ["token"]:
            assert "SCV_DATA_DIR to an existing data directory" in line
            assert str(root / ".scv-data") in line  # the project's, not the working directory's
    assert sorted(p.name for p in root.iterdir()) == ["docs", "pyproject.toml"]
    assert sorted(p.name for p in inside.iterdir()) == ["one.csv"]


def _wait_healthy(port: int, gateway: subprocess.Popen[str]) -> None:
    for _ in range(600):
        assert gateway.poll() is None, gateway.stderr.read() if gateway.stderr else ""
        try:
            if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            time.sleep(0.1)
    raise AssertionError("scv serve never answered /healthz")


def test_the_cli_uses_the_running_development_server_from_anywhere_in_the_project(
    tmp_path: Path,
) -> None:
    """`make run` in the project root; the data commands and `scv token` from a directory
    deep inside it find its embedded server and its development secret."""
    root, inside = _project(tmp_path)
    port = free_port()
    env = {k: v for k, v in os.environ.items() if k not in ("MONGODB_URI", "SCV_DATA_DIR")}
    env.pop("SCV_JWT_SECRET", None)
    env.update({"SCV_PORT": str(port), "SCV_DB_NAME": "firsthour"})
    scv = Path(sys.executable).with_name("scv")
    gateway = subprocess.Popen(
        [str(scv), "serve"],
        cwd=root,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert gateway.stdout is not None
        dev_token = gateway.stdout.readline().strip()  # the banner's token is stdout's first line
        _wait_healthy(port, gateway)
        secret_file = root / ".scv-data.secret"
        assert secret_file.stat().st_mode & 0o777 == 0o600
        secret = secret_file.read_text().strip()
        claims = jwt.decode(dev_token, secret, algorithms=["HS256"])
        assert claims["org"] == "dev" and claims["exp"] - claims["iat"] == TOKEN_TTL_S

        source = inside / "people.csv"
        source.write_text("firstName,lastName,cellPhone\nAlexis,Firsthour,+1 803-123-0000\n")
        imported = _scv(["import", str(source), "--org", "acme"], inside, SCV_DB_NAME="firsthour")
        assert imported.returncode == 0, imported.stderr
        assert "created 1" in imported.stderr
        assert f"database: embedded at {root / '.scv-data'} (the running server" in imported.stderr
        minted = _scv(["token", "--org", "acme"], inside)
        assert minted.returncode == 0, minted.stderr
        found = httpx.post(
            f"http://127.0.0.1:{port}/graphql",
            json={"query": '{ searchContacts(query: "Firsthour") { totalCount } }'},
            headers={"Authorization": f"Bearer {minted.stdout.strip()}"},
            timeout=30,
        )
        assert found.json()["data"] == {"searchContacts": {"totalCount": 1}}, found.text
        exported = _scv(["export", "--org", "acme"], inside, SCV_DB_NAME="firsthour")
        assert exported.returncode == 0 and "(the running server" in exported.stderr
    finally:
        gateway.terminate()
        _, stderr = gateway.communicate(timeout=30)
    assert f"valid for {TOKEN_TTL_S // 3600} hours" in stderr
    assert not (inside / ".scv-data").exists() and not (inside / ".scv-data.log").exists()
    # the server stopped: its data directory exists, so the data commands start it themselves
    checked = _scv(["check"], inside, SCV_DB_NAME="firsthour")
    assert checked.returncode == 0, checked.stderr
    assert f"database: embedded at {root / '.scv-data'} (db firsthour)" in checked.stderr
    # the development secret outlives the restart: the minted token still verifies
    assert principal_from_token(secret, minted.stdout.strip()).org == "acme"


def test_a_short_secret_is_one_warning_line(tmp_path: Path) -> None:
    minted = _scv(["token", "--org", "acme"], tmp_path, SCV_JWT_SECRET="short")
    assert minted.returncode == 0, minted.stderr
    lines = [line for line in minted.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, minted.stderr
    assert "SCV_JWT_SECRET is 5 bytes; it should be at least 32 bytes" in lines[0]
    with warnings.catch_warnings():  # PyJWT's own warning, which the CLI kept quiet
        warnings.simplefilter("ignore")
        assert principal_from_token("short", minted.stdout.strip()).org == "acme"


async def _people(client: AsyncMongoClient[Doc], db: str) -> dict[str, Doc]:
    found = client[db]["contacts"].find({"org": "acme"})
    return {doc["firstName"]: doc async for doc in found}


async def test_an_unterminated_quote_is_that_rows_error_and_swallows_no_other_row(
    cli_env: str, client: AsyncMongoClient[Doc], tmp_path: Path
) -> None:
    source = tmp_path / "broken.csv"
    source.write_text(
        "firstName,lastName,workEmail,externalIds\n"
        'Ana,"Diaz,ana@example.com,t:unterm\n'
        "Ben,Ortiz,ben@example.com,t:ben\n"
        "Cy,Extra,cy@example.com,t:cy,surplus\n"
        "Dee,Bad,dee@example.com,no-colon\n"
        "Eve,Lane,eve@example.com,t:eve\n"
    )
    result = await asyncio.to_thread(_import, source)
    assert result.exit_code == 1, result.output
    assert "created 2, updated 0, unchanged 0, errors 3" in result.output, result.output
    for expected in (
        """line 2: unterminated quote: '"Diaz,ana@example.com,t:unterm'""",
        "line 4: the row has 5 cells, the header 4: 'Cy,Extra,cy@example.com,t:cy,surplus'",
        "line 5: external id 'no-colon' is not source:value",
    ):
        assert f"  {expected}\n" in result.output, result.output
    people = await _people(client, cli_env)
    assert sorted(people) == ["Ben", "Eve"]  # nothing of a bad row is written
    assert people["Ben"]["lastName"] == "Ortiz"
    identifiers = client[cli_env]["identifiers"]
    assert await identifiers.count_documents({"key": {"$regex": "ana@|cy@|dee@"}}) == 0
    again = await asyncio.to_thread(_import, source)
    assert "created 0, updated 0, unchanged 2, errors 3" in again.output


@pytest.mark.parametrize(
    ("content", "described"),
    [
        (
            "firstName;lastName;workEmail\nJosé;Müller;jose@example.com\n".encode("cp1252"),
            "cp1252, semicolon-separated",
        ),
        (
            "firstName,lastName,workEmail\nJosé,Müller “Jo”,jose@example.com\n".encode("cp1252"),
            "cp1252, comma-separated",
        ),
        (
            codecs.BOM_UTF8
            + "firstName\tlastName\tworkEmail\nJosé\tMüller\tjose@example.com\r\n".encode(),
            "utf-8, tab-separated",
        ),
        (
            "firstName,lastName,workEmail\r\nJosé,Müller,jose@example.com\r\n".encode(),
            "utf-8, comma-separated",
        ),
        (
            "firstName;lastName;workEmail\nJosé;Müller\x81;jose@example.com\n".encode("latin-1"),
            "latin-1, semicolon-separated",
        ),
        (
            "firstName\tlastName\tworkEmail\nJosé\tMüller\tjose@example.com\n".encode("utf-16"),
            "utf-16, tab-separated",
        ),
    ],
)
async def test_import_detects_the_encoding_and_the_delimiter(
    cli_env: str, client: AsyncMongoClient[Doc], tmp_path: Path, content: bytes, described: str
) -> None:
    source = tmp_path / "crm.csv"
    source.write_bytes(content)
    result = await asyncio.to_thread(_import, source)
    assert result.exit_code == 0, result.output
    assert f"reading crm.csv: {described}" in result.output
    assert "created 1, updated 0, unchanged 0, errors 0" in result.output
    jose = (await _people(client, cli_env))["José"]
    assert jose["lastName"].startswith("Müller") and jose["workEmail"] == "jose@example.com"


async def test_import_options_force_the_encoding_and_the_delimiter(
    cli_env: str, client: AsyncMongoClient[Doc], tmp_path: Path
) -> None:
    source = tmp_path / "forced.csv"
    source.write_bytes("firstName|lastName\nZoë|Ng\n".encode("latin-1"))
    forced = await asyncio.to_thread(
        _import, source, "acme", "--encoding", "latin-1", "--delimiter", "|"
    )
    assert forced.exit_code == 0, forced.output
    assert "reading forced.csv: iso8859-1, pipe-separated" in forced.output
    assert "Zoë" in await _people(client, cli_env)
    for options, message in (
        (["--encoding", "utf-8"], "is not utf-8: byte b'\\xeb' cannot be decoded"),
        (["--encoding", "klingon"], "unknown encoding 'klingon'"),
        (["--delimiter", "::"], "--delimiter must be one of"),
        (["--delimiter", ","], "unknown column(s) 'firstName|lastName'"),
    ):
        result = await asyncio.to_thread(_import, source, "acme", *options)
        assert result.exit_code == 2, result.output
        assert message in result.output, result.output
        assert len(result.output.strip().splitlines()) == 1, result.output


async def test_import_of_a_crm_export_with_extra_columns(
    cli_env: str, client: AsyncMongoClient[Doc], tmp_path: Path
) -> None:
    source = tmp_path / "export.csv"
    source.write_text(
        "Contact ID,firstName,lastName,Lead Source,workEmail\n0031,Ana,Lima,Web,ana@example.com\n"
    )
    refused = await asyncio.to_thread(_import, source)
    assert refused.exit_code == 2
    assert "unknown column(s) 'Contact ID', 'Lead Source'" in refused.output
    assert "the accepted columns are firstName, middleName, lastName" in refused.output
    assert "address.countryCode, surveyOptOut (or --ignore-unknown-columns)" in refused.output
    result = await asyncio.to_thread(_import, source, "acme", "--ignore-unknown-columns")
    assert result.exit_code == 0, result.output
    assert "ignoring unknown column(s) 'Contact ID', 'Lead Source'" in result.output
    assert "created 1, updated 0, unchanged 0, errors 0" in result.output
    ana = (await _people(client, cli_env))["Ana"]
    assert ana["workEmail"] == "ana@example.com" and "Lead Source" not in ana
    again = await asyncio.to_thread(_import, source, "acme", "--ignore-unknown-columns")
    assert "created 0, updated 0, unchanged 1, errors 0" in again.output


def test_help_names_every_argument_plainly() -> None:
    for command in ("import", "export", "seed", "check", "token", "serve"):
        result = CliRunner().invoke(app, [command, "--help"], env={"COLUMNS": "120"})
        assert result.exit_code == 0, result.output
        for noise in ("{path}", "<list[str]>", "{", "[str]"):
            assert noise not in result.output, (command, noise, result.output)
    shown = CliRunner().invoke(app, ["import", "--help"], env={"COLUMNS": "120"}).output
    for option in ("CONTACTS.CSV", "--encoding", "--delimiter", "--ignore-unknown-columns"):
        assert option in shown


def test_outside_the_checkout_the_data_directory_is_the_installed_checkouts(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`make run` installs the package editable: from any directory outside the checkout a
    relative SCV_DATA_DIR still means the checkout's."""
    checkout = Path(__file__).resolve().parents[2]
    assert project_root(tmp_path) == checkout
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("SCV_DATA_DIR", ".scv-data")
    assert Settings().data_dir == checkout / ".scv-data"
    assert Settings().dev_secret_file == checkout / ".scv-data.secret"
    monkeypatch.setenv("SCV_DATA_DIR", str(tmp_path / "elsewhere"))
    assert Settings().data_dir == tmp_path / "elsewhere"  # an absolute path stays as it is
