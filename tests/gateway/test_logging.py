"""Structured logs: one JSON object per line, a request id, and no personal data or tokens."""

from __future__ import annotations

import io
import logging
import re
import time
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import orjson
import pytest

from gateway.logs import (
    RedactingFilter,
    configure_logging,
    redact,
    sane_request_id,
)
from resolvers import directory
from tests.conftest import Api, codes, json_logs

Lines = Callable[[], list[dict[str, Any]]]

EMAIL = "ada.lovelace@example.com"
PHONE = "+18031230000"


@pytest.fixture
def log_lines() -> Iterator[Lines]:
    """Everything the JSON handler writes while the test runs, one parsed object per line."""
    with json_logs() as stream:

        def lines() -> list[dict[str, Any]]:
            text = stream.getvalue()
            assert text.endswith("\n")
            parsed = [orjson.loads(line) for line in text.splitlines()]
            assert all(isinstance(entry, dict) for entry in parsed)
            return parsed

        yield lines


def requests(lines: Lines) -> list[dict[str, Any]]:
    return [entry for entry in lines() if entry["logger"] == "scv.request"]


async def post(
    api: Api,
    query: str,
    *,
    operation: str | None = None,
    headers: dict[str, str] | None = None,
    token: str | None = None,
    **token_claims: Any,
) -> httpx.Response:
    body: dict[str, Any] = {"query": query, "variables": {}}
    if operation is not None:
        body["operationName"] = operation
    auth = token if token is not None else api.token(**token_claims)
    return await api.http.post(
        "/graphql", json=body, headers={"Authorization": f"Bearer {auth}", **(headers or {})}
    )


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (f"mail {EMAIL} now", "mail [email] now"),
        ("ADA+scv@Mail.Example.co.uk,", "[email],"),
        (f"phone {PHONE}.", "phone [phone]."),
        ("call +1 803-123-0000 or (803) 123-0000", "call [phone] or [phone]"),
        ("tel:0044 20 7946 0958;", "tel:[phone];"),
        ("national 8031230000", "national [phone]"),
        ("Authorization: Bearer abc.def-ghi", "Authorization: Bearer [token]"),
        ("jwt eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ4In0.c2lnbmF0dXJl end", "jwt [token] end"),
        # ids, counts and codes are kept
        (
            "contact 6b0331234567ad82b3292ac1 not found",
            "contact 6b0331234567ad82b3292ac1 not found",
        ),
        ("3 of 25 in 12.5 ms, status 200", "3 of 25 in 12.5 ms, status 200"),
        ("QUERY_TOO_COMPLEX at searchContacts", "QUERY_TOO_COMPLEX at searchContacts"),
    ],
)
def test_redact(text: str, expected: str) -> None:
    assert redact(text) == expected
    assert redact(expected) == expected


@pytest.mark.parametrize(
    "text",
    ["1" * 100_000 + "a", "1-" * 50_000 + "x", "a." * 50_000 + "@b", "eyJ" + "a" * 100_000],
    ids=["digits", "separated-digits", "dotted-local-part", "jwt-prefix"],
)
def test_redaction_stays_linear_on_hostile_text(text: str) -> None:
    started = time.perf_counter()
    redact(text)
    assert time.perf_counter() - started < 1.0


def test_request_ids_from_callers_must_be_sane() -> None:
    assert sane_request_id("req-42.a:b_c") == "req-42.a:b_c"
    for bad in ("", "has space", "x" * 129, f"id-{PHONE}", EMAIL, "<script>", "-lead"):
        assert sane_request_id(bad) is None
    assert sane_request_id(None) is None


def test_records_are_json_lines_with_everything_redacted(log_lines: Lines) -> None:
    log = logging.getLogger("scv.test")
    try:
        raise RuntimeError(f"driver said: duplicate key {EMAIL} / {PHONE}")
    except RuntimeError:
        log.exception("could not save %s", EMAIL, extra={"fields": {"who": [PHONE], "n": 3}})
    log.info("plain")
    first, second = log_lines()
    assert first["level"] == "error"
    assert first["logger"] == "scv.test"
    assert first["message"] == "could not save [email]"
    assert first["who"] == ["[phone]"]
    assert first["n"] == 3
    assert "RuntimeError: driver said: duplicate key [email] / [phone]" in first["exc"]
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}\+00:00", first["ts"])
    assert second == {**second, "level": "info", "message": "plain"}
    assert "request_id" not in second  # not inside a request


def test_the_filter_redacts_for_any_handler() -> None:
    record = logging.LogRecord("x", logging.INFO, __file__, 1, "to %s", (EMAIL,), None)
    assert RedactingFilter().filter(record)
    assert record.getMessage() == "to [email]"


def test_configure_logging_installs_one_json_handler() -> None:
    root = logging.getLogger()
    before, level = list(root.handlers), root.level
    stream = io.StringIO()
    try:
        configure_logging(stream=stream)
        configure_logging(stream=stream)  # idempotent
        added = [h for h in root.handlers if h not in before]
        assert len(added) == 1
        logging.getLogger("uvicorn.error").warning("listening on %s", "127.0.0.1:8000")
        entry = orjson.loads(stream.getvalue())
        assert entry["logger"] == "uvicorn.error"
        assert entry["message"] == "listening on 127.0.0.1:8000"
    finally:
        for handler in root.handlers[:]:
            if handler not in before:
                root.removeHandler(handler)
        root.setLevel(level)


async def test_each_request_is_logged_once_with_its_details(api: Api, log_lines: Lines) -> None:
    response = await post(
        api,
        'query Lookup { searchContacts(query: "a", first: 5) { totalCount } }',
        operation="Lookup",
        headers={"X-Request-Id": "req-42"},
    )
    assert response.status_code == 200
    assert response.headers["x-request-id"] == "req-42"
    [entry] = requests(log_lines)
    assert entry["request_id"] == "req-42"
    assert entry["level"] == "info"
    assert entry["method"] == "POST"
    assert entry["path"] == "/graphql"
    assert entry["status"] == 200
    assert entry["org"] == "acme"
    assert entry["operation"] == "Lookup"
    assert entry["cost"] == 2
    assert entry["codes"] == []
    assert isinstance(entry["duration_ms"], float)
    assert 0 <= entry["duration_ms"] < 60_000


async def test_the_request_log_carries_error_codes_and_the_executed_operation(
    api: Api, log_lines: Lines
) -> None:
    # no operationName: the document's only operation is the one that ran
    forbidden = await post(api, 'query Who { contact(id: "x") { id } }', permissions=[])
    assert codes(forbidden.json()["errors"]) == ["FORBIDDEN"]
    unauthenticated = await post(api, "{ __typename }", token="not-a-jwt")
    assert unauthenticated.status_code == 401
    too_big = await api.http.post("/graphql", content=b" " * (1024 * 1024 + 1))
    assert too_big.status_code == 413
    bad_json = await post(api, "{ contact(id: ")
    assert bad_json.status_code == 200
    first, second, third, fourth = requests(log_lines)
    assert (first["status"], first["org"], first["operation"], first["codes"]) == (
        200,
        "acme",
        "Who",
        ["FORBIDDEN"],
    )
    assert (second["status"], second["org"], second["codes"]) == (401, None, ["UNAUTHENTICATED"])
    assert (third["status"], third["codes"]) == (413, ["QUERY_TOO_COMPLEX"])
    assert (fourth["operation"], fourth["codes"], fourth["cost"]) == (
        None,
        ["GRAPHQL_PARSE_FAILED"],
        None,
    )
    ids = {entry["request_id"] for entry in (first, second, third, fourth)}
    assert len(ids) == 4
    assert all(re.fullmatch(r"[0-9a-f]{32}", i) for i in ids)
    assert unauthenticated.headers["x-request-id"] == second["request_id"]
    assert too_big.headers["x-request-id"] == third["request_id"]


async def test_an_insane_request_id_is_replaced(api: Api, log_lines: Lines) -> None:
    response = await post(api, "{ __typename }", headers={"X-Request-Id": f"call {PHONE}"})
    generated = response.headers["x-request-id"]
    assert re.fullmatch(r"[0-9a-f]{32}", generated)
    [entry] = requests(log_lines)
    assert entry["request_id"] == generated


async def test_personal_data_and_tokens_never_reach_the_logs(
    api: Api, log_lines: Lines, monkeypatch: pytest.MonkeyPatch
) -> None:
    token = api.token()
    created = await post(
        api,
        f'mutation {{ createContact(input: {{firstName: "Ada", lastName: "Lovelace",'
        f' workEmail: "{EMAIL}", cellPhone: "{PHONE}"}}) {{ id workEmail }} }}',
        token=token,
    )
    assert created.json()["data"]["createContact"]["workEmail"] == EMAIL
    invalid = await post(
        api,
        'mutation { createContact(input: {firstName: "A", lastName: "B",'
        ' workEmail: "ada@@example.com", homePhone: "+1 803 555 0199"}) { id } }',
        token=token,
    )
    assert codes(invalid.json()["errors"]) == ["BAD_USER_INPUT"]

    async def leaky(*args: Any, **kwargs: Any) -> None:
        raise RuntimeError(f"lookup of {PHONE} for {EMAIL} failed, token {token}")

    monkeypatch.setattr(directory, "reverse_lookup", leaky)
    failed = await post(
        api,
        f'{{ reverseLookup(value: "{PHONE}") {{ id }} }}',
        token=token,
        headers={"X-Request-Id": "r-1"},
    )
    assert codes(failed.json()["errors"]) == ["INTERNAL_SERVER_ERROR"]

    entries = log_lines()
    text = orjson.dumps(entries).decode()
    for secret in (EMAIL, PHONE, "8031230000", "803 555 0199", "ada@@example.com", token):
        assert secret not in text
    for part in token.split("."):
        assert part not in text
    # the unexpected error is logged by schema/errors.py, redacted, with the request's id
    [unexpected] = [e for e in entries if e["logger"] == "scv.errors"]
    assert unexpected["level"] == "error"
    assert unexpected["request_id"] == "r-1"
    assert "lookup of [phone] for [email] failed, token [token]" in unexpected["exc"]
    assert [e["codes"] for e in requests(lambda: entries)] == [
        [],
        ["BAD_USER_INPUT"],
        ["INTERNAL_SERVER_ERROR"],
    ]
