"""Structured logs: one JSON object per line on stderr, personal data and tokens redacted.

* :class:`RedactingFilter` rewrites every record that reaches the handler: its message,
  its exception text and its ``fields`` lose anything that looks like an email address,
  a phone number (an E.164 or phone-like run of 7+ digits) or a JWT/bearer token.
* :class:`JsonFormatter` renders a record as one line of JSON (orjson), with the
  request id of the request being served, when there is one.
* :class:`RequestLogging` (ASGI middleware) gives each HTTP request an id (the caller's
  ``X-Request-Id`` when it is sane, else a new one, echoed back in the response header)
  and logs one line per request: method, path, status, duration, org, GraphQL operation
  name, cost and the error codes of the response; its optional ``observer`` (the metrics)
  is then told about the same request.
* :func:`configure_logging` installs all of it on the root logger (``scv serve``).
"""

from __future__ import annotations

import contextvars
import logging
import re
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, TextIO

import orjson
from starlette.datastructures import Headers, MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from resolvers.errors import DomainError

INTERNAL_ERROR = DomainError.code  # an unexpected failure

REQUEST_ID_HEADER = "x-request-id"
MAX_SNIFFED_BODY = 64 * 1024  # error bodies read back for their codes
_SANE_REQUEST_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:-]{0,127}")

request_log = logging.getLogger("scv.request")

# --- redaction -------------------------------------------------------------------------

# Every pattern may only start where its kind of run starts (the look-behinds), so each
# run is tried once and redaction stays linear in the length of the text.
_JWT = re.compile(r"\beyJ[A-Za-z0-9_-]*\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*")
_BEARER = re.compile(r"(?i)\b(bearer)\s+[^\s\"',;]+")
_LOCAL = r"[\w.!#$%&'*+/=?^`{|}~-]"
_EMAIL = re.compile(rf"(?<!{_LOCAL}){_LOCAL}+@[\w-]+(?:\.[\w-]+)+")
# 7+ digits, optionally with a leading + and the usual separators, not inside a word
# (so hex ids and hashes survive; dates and long numbers in free text may not).
_SEP = r"[\s().\-/]"
_PHONE = re.compile(
    rf"(?<![\w+])(?<!\d{_SEP})(?<!\d{_SEP}{_SEP})\+?\(?\d(?:{_SEP}{{0,2}}\d){{6,}}(?!\w)"
)

# The driver's duplicate-key errors quote the key's value (a cookie, a name token, an
# identifier key): "dup key: { key: "COOKIE:…" }" and, in the full error, "keyValue": {…}.
_DUP_KEY = re.compile(r"dup key: \{[^}]*\}")
_KEY_VALUE = re.compile(r"""(['"]keyValue['"]: )\{[^}]*\}""")

REDACTIONS: tuple[tuple[re.Pattern[str], str], ...] = (
    (_DUP_KEY, "dup key: [key]"),
    (_KEY_VALUE, r"\1[key]"),
    (_JWT, "[token]"),
    (_BEARER, r"\1 [token]"),
    (_EMAIL, "[email]"),
    (_PHONE, "[phone]"),
)


def redact(text: str) -> str:
    """``text`` without emails, phone numbers, tokens or the key values quoted by the
    driver's duplicate-key errors."""
    for pattern, replacement in REDACTIONS:
        text = pattern.sub(replacement, text)
    return text


def redact_value(value: Any) -> Any:
    """Strings redacted, containers walked, other values kept."""
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, dict):
        return {k: redact_value(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [redact_value(v) for v in value]
    return value


class RedactingFilter(logging.Filter):
    """Redacts message, arguments, exception and stack text and ``fields`` of a record."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a bad format string must not lose the record
            message = f"{record.msg!r} {record.args!r}"
        record.msg, record.args = redact(message), None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = redact(record.exc_text)
        if record.stack_info:
            record.stack_info = redact(record.stack_info)
        fields = getattr(record, "fields", None)
        if isinstance(fields, dict):
            record.fields = {
                k: v if k in _TRUSTED_FIELDS else redact_value(v) for k, v in fields.items()
            }
        return True


# Values the gateway makes itself (the request id was checked when it came in).
_TRUSTED_FIELDS = frozenset({"request_id", "status", "duration_ms", "cost"})


# --- the current request ---------------------------------------------------------------


@dataclass
class RequestInfo:
    """What the request log line says; filled in by the layers a request passes."""

    request_id: str
    method: str
    path: str
    org: str | None = None
    operation: str | None = None
    cost: int | None = None
    codes: list[str] = field(default_factory=list)
    status: int | None = None
    log_level: int | None = None  # set by a handler whose error status is a routine answer
    graphiql: bool = False  # a GET of /graphql answered with GraphiQL's page

    def add_codes(self, codes: list[str]) -> None:
        for code in codes:
            if code not in self.codes:
                self.codes.append(code)


_current: contextvars.ContextVar[RequestInfo | None] = contextvars.ContextVar(
    "scv_request", default=None
)


def current_request() -> RequestInfo | None:
    """The request being served by this task, if any."""
    return _current.get()


@contextmanager
def serving(info: RequestInfo) -> Iterator[RequestInfo]:
    token = _current.set(info)
    try:
        yield info
    finally:
        _current.reset(token)


def sane_request_id(value: str | None) -> str | None:
    """The caller's request id when it is short, plain and carries no personal data."""
    if value is None:
        return None
    value = value.strip()
    if not _SANE_REQUEST_ID.fullmatch(value) or redact(value) != value:
        return None
    return value


def new_request_id() -> str:
    return uuid.uuid4().hex


def error_codes(body: Any) -> list[str]:
    """``errors[].extensions.code`` of a GraphQL-shaped response body."""
    codes: list[str] = []
    errors = body.get("errors") if isinstance(body, dict) else None
    for error in errors if isinstance(errors, list) else ():
        extensions = error.get("extensions") if isinstance(error, dict) else None
        code = extensions.get("code") if isinstance(extensions, dict) else None
        if isinstance(code, str) and code not in codes:
            codes.append(code)
    return codes


# --- formatting ------------------------------------------------------------------------


class JsonFormatter(logging.Formatter):
    """One JSON object per record: ts, level, logger, message, request_id, fields, exc."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": redact(record.getMessage()),
        }
        info = current_request()
        if info is not None:
            entry["request_id"] = info.request_id
        fields = getattr(record, "fields", None)
        if isinstance(fields, dict):
            entry.update(
                {k: v if k in _TRUSTED_FIELDS else redact_value(v) for k, v in fields.items()}
            )
        if record.exc_info and not record.exc_text:
            record.exc_text = self.formatException(record.exc_info)
        if record.exc_text:
            entry["exc"] = redact(record.exc_text)
        if record.stack_info:
            entry["stack"] = redact(record.stack_info)
        return orjson.dumps(entry, default=str).decode()


def json_handler(stream: TextIO | None = None) -> logging.Handler:
    handler = logging.StreamHandler(stream if stream is not None else sys.stderr)
    handler.setFormatter(JsonFormatter())
    handler.addFilter(RedactingFilter())
    handler.set_name("scv-json")
    return handler


def configure_logging(level: int | str = logging.INFO, stream: TextIO | None = None) -> None:
    """JSON lines on stderr for every logger (uvicorn's included); idempotent."""
    root = logging.getLogger()
    for handler in list(root.handlers):
        if handler.get_name() == "scv-json":
            root.removeHandler(handler)
    root.addHandler(json_handler(stream))
    root.setLevel(level)
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        uvicorn_logger = logging.getLogger(name)
        uvicorn_logger.handlers.clear()
        uvicorn_logger.propagate = True


# --- the request middleware ------------------------------------------------------------


# Told about every finished HTTP request (final status and codes) and its duration in seconds.
RequestObserver = Callable[[RequestInfo, float], None]


class RequestLogging:
    """ASGI middleware: a request id for every HTTP request and one log line when it ends."""

    def __init__(self, app: ASGIApp, observer: RequestObserver | None = None) -> None:
        self.app = app
        self.observer = observer

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        info = RequestInfo(
            request_id=sane_request_id(headers.get(REQUEST_ID_HEADER)) or new_request_id(),
            method=scope["method"],
            path=scope["path"],
        )
        watch = _ResponseWatch(info, send)
        started = time.perf_counter()
        failure: BaseException | None = None
        with serving(info):
            try:
                await self.app(scope, receive, watch.send)
            except Exception as exc:
                failure = exc
                raise
            finally:
                self._finish(info, watch, time.perf_counter() - started, failure)

    def _finish(
        self,
        info: RequestInfo,
        watch: _ResponseWatch,
        elapsed_s: float,
        failure: BaseException | None,
    ) -> None:
        info.add_codes(watch.error_codes())
        _log_request(info, elapsed_s, failure)
        if self.observer is not None:
            try:
                self.observer(info, elapsed_s)
            except Exception:  # metrics must never fail a request
                request_log.exception("the request observer failed")


class _ResponseWatch:
    """Passes the response on, noting its status, adding the request id header, and keeping
    the body of a JSON error response (up to ``MAX_SNIFFED_BODY``) to read its codes."""

    def __init__(self, info: RequestInfo, send: Send) -> None:
        self.info = info
        self._send = send
        self.sniffed: list[bytes] | None = None

    async def send(self, message: Message) -> None:
        if message["type"] == "http.response.start":
            self.info.status = message["status"]
            response_headers = MutableHeaders(scope=message)
            response_headers[REQUEST_ID_HEADER] = self.info.request_id
            if self.info.status >= 400 and "json" in response_headers.get("content-type", ""):
                self.sniffed = []
        elif message["type"] == "http.response.body" and self.sniffed is not None:
            self.sniffed.append(message.get("body", b""))
            if sum(len(chunk) for chunk in self.sniffed) > MAX_SNIFFED_BODY:
                self.sniffed = None
        await self._send(message)

    def error_codes(self) -> list[str]:
        if not self.sniffed:
            return []
        with suppress(orjson.JSONDecodeError):
            return error_codes(orjson.loads(b"".join(self.sniffed)))
        return []


def _log_request(info: RequestInfo, elapsed_s: float, failure: BaseException | None) -> None:
    if info.status is not None:
        status = info.status
    else:  # no response: the app failed (500) or the client went away (499)
        status = info.status = 500 if failure is not None else 499
    if failure is not None and INTERNAL_ERROR not in info.codes:
        info.codes.append(INTERNAL_ERROR)
    fields = {
        "request_id": info.request_id,
        "method": info.method,
        "path": info.path,
        "status": status,
        "duration_ms": round(elapsed_s * 1000, 2),
        "org": info.org,
        "operation": info.operation,
        "cost": info.cost,
        "codes": info.codes,
    }
    level = logging.ERROR if status >= 500 else logging.INFO
    if info.log_level is not None and failure is None:
        level = info.log_level
    exc_info = (type(failure), failure, failure.__traceback__) if failure is not None else None
    request_log.log(
        level,
        "%s %s %s",
        info.method,
        info.path,
        status,
        extra={"fields": fields},
        exc_info=exc_info,
    )
