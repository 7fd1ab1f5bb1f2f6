"""``GET /export/conversations.ndjson``: every matching conversation as one JSON line.

The BI pull without GraphQL execution: documents stream straight from one cursor and are
written with orjson, in chunks of whole lines. Each chunk resolves the canonical contact and
merge set of the contacts it links to with one batched lookup (contacts already seen are
remembered, up to a bound). Reading, resolving and writing run one chunk apart, so at most a
handful of chunks (``CHUNK`` documents each, some 40 MB in all) are held at any time, however
many lines are written.

A line has the ``Conversation`` fields under their GraphQL names, plus ``individualId`` (the
canonical contact of the linked contact, null when unlinked or the contact is gone) and
``mergeSetIds`` (every contact id of that merge set; just the contact when never merged).
Lines come newest first (``startedAt``, then id, descending), read in consecutive time
windows (``resolvers.org_windows``): each query is an index range of one window, read once
and ordered here, never a sort of the whole org, in memory or on the server. The first
window is sized for ``FIRST_LINES`` rows, so the first line waits for a small read.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from datetime import datetime
from typing import Any, TypeVar

import orjson
from pymongo.errors import PyMongoError
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse

from gateway.authentication import principal_of
from gateway.http_errors import RequestRefused, domain_error_response, refusal_response
from resolvers import journeys, loaders, tasks
from resolvers.documents import ConversationDoc
from resolvers.errors import BadUserInput, DomainError, ServiceUnavailable
from resolvers.org_windows import org_windows
from resolvers.principal import Permission, Principal
from resolvers.store import Store
from schema.errors import UNAVAILABLE_MESSAGE
from schema.scalars import parse_datetime, serialize_datetime

log = logging.getLogger("scv.export")

CHUNK = 2500
FIRST_LINES = 50  # the first window is sized for this many lines, and written in pieces
FIRST_PIECE = 25  # this size, then of FIRST_LINES: the first line waits for a small lookup
MAX_REMEMBERED = 100_000
MEDIA_TYPE = "application/x-ndjson"

Resolved = tuple[str | None, list[str]]  # individualId, mergeSetIds
Batch = list[ConversationDoc]
Ready = tuple[Batch, dict[str, Resolved]]
T = TypeVar("T")


async def ndjson_lines(
    store: Store,
    org: str,
    since: datetime | None = None,
    until: datetime | None = None,
    channels: Iterable[str] | None = None,
    *,
    chunk: int = CHUNK,
) -> AsyncIterator[bytes]:
    """Chunks of NDJSON (whole lines, each ending with a newline), up to ``chunk`` lines each.

    Bad input (``until`` before ``since``, an unknown channel) raises ``BadUserInput``
    before anything is read. Three stages run side by side, one chunk apart, so the
    database and the gateway work at the same time: the cursor is read ahead, the next
    chunk's contacts are resolved, and the current chunk is written.
    """
    filter = journeys.conversation_filter(since, until, channels)
    # A ping under the ordinary timeout first: an unavailable database fails fast.
    await store.db.command("ping")
    batches: asyncio.Queue[Batch | BaseException | None] = asyncio.Queue(1)
    ready: asyncio.Queue[Ready | BaseException | None] = asyncio.Queue(1)
    first_ready = asyncio.Event()  # the read-ahead waits for the first lines (one database)
    stages = [
        asyncio.create_task(_read(store, org, filter, chunk, batches, first_ready)),
        asyncio.create_task(_resolve_all(store, org, batches, ready, first_ready)),
    ]
    try:
        async for item in drain(ready):
            yield _render(*item)
    finally:
        await _stop(stages)


async def drain(queue: asyncio.Queue[T | BaseException | None]) -> AsyncIterator[T]:
    """The items a stage puts into ``queue`` until its None; the error it hands on, raised."""
    while True:
        item = await queue.get()
        if item is None:
            return
        if isinstance(item, BaseException):
            raise item
        yield item


async def read_ahead(source: AsyncIterator[T]) -> AsyncIterator[T]:
    """``source``'s items, the next one read while the consumer handles the current one."""
    queue: asyncio.Queue[T | BaseException | None] = asyncio.Queue(1)
    reader = asyncio.create_task(pump(source, queue))
    try:
        async for item in drain(queue):
            yield item
    finally:
        await _stop([reader])


async def _stop(stages: list[asyncio.Task[None]]) -> None:
    """The stages cancelled and ended (the caller's own cancellation kept)."""
    for stage in stages:
        stage.cancel()
    await tasks.ended(stages)


async def _read(
    store: Store,
    org: str,
    filter: journeys.ConversationFilter,
    chunk: int,
    out: asyncio.Queue[Batch | BaseException | None],
    first_ready: asyncio.Event,
) -> None:
    """Windows of the org, newest first, then None (or the error that stopped them). After
    the first (small) window, the next is read once the first lines are resolved: the
    database serves one command at a time, and the first line should not wait for a
    read-ahead of 2,500 rows."""
    windows = org_windows(store, org, filter, chunk, first=FIRST_LINES)
    await pump(_after_first_lines(windows, first_ready), out)


async def _after_first_lines(
    windows: AsyncIterator[Batch], first_ready: asyncio.Event
) -> AsyncIterator[Batch]:
    """``windows``, each next one read only once the first lines are out."""
    async for batch in windows:
        yield batch
        await first_ready.wait()


async def pump(source: AsyncIterator[T], out: asyncio.Queue[T | BaseException | None]) -> None:
    """Every item of ``source`` into ``out`` (read ahead of the consumer), then None (or the
    error that stopped it, handed on to the consumer, which raises it)."""
    try:
        async for item in source:
            await out.put(item)
        await out.put(None)
    except Exception as exc:
        await out.put(exc)


async def _resolve_all(
    store: Store,
    org: str,
    batches: asyncio.Queue[Batch | BaseException | None],
    out: asyncio.Queue[Ready | BaseException | None],
    first_ready: asyncio.Event,
) -> None:
    """Each batch with the canonical id and merge set of every contact it links to: one
    batched lookup per batch for the contacts no earlier batch linked to (remembered up to
    a bound), never one per line. The first batch goes on in pieces (``_pieces``), so its
    first line waits for the lookup of a few dozen contacts, not of hundreds (the lookup of
    250 lines' contacts took 19 ms on the benchmark's data set)."""
    remembered: dict[str, Resolved] = {}
    first = True
    while True:
        batch = await batches.get()
        if batch is None or isinstance(batch, BaseException):
            await out.put(batch)
            return
        pieces = _pieces(batch) if first else [batch]
        first = False
        for piece in pieces:
            try:
                await _remember_heads(store, org, piece, remembered)
            except Exception as exc:
                await out.put(exc)
                return
            linked = set(journeys.linked_ids(piece))
            await out.put((piece, {i: remembered[i] for i in linked}))
            first_ready.set()


def _pieces(batch: Batch) -> list[Batch]:
    """The first batch in pieces: ``FIRST_PIECE`` lines, then ``FIRST_LINES`` at a time."""
    pieces = [batch[:FIRST_PIECE]]
    for start in range(FIRST_PIECE, len(batch), FIRST_LINES):
        pieces.append(batch[start : start + FIRST_LINES])
    return pieces


async def _remember_heads(
    store: Store, org: str, batch: Batch, remembered: dict[str, Resolved]
) -> None:
    """Looks up the contacts of ``batch`` not remembered yet (one batched lookup)."""
    linked = set(journeys.linked_ids(batch))
    missing = [i for i in linked if i not in remembered]
    if not missing:
        return
    if len(remembered) + len(missing) > MAX_REMEMBERED:
        remembered.clear()
    heads = await loaders.merge_heads(store, org, missing)
    for contact_id, head in zip(missing, heads, strict=True):
        remembered[contact_id] = head if head is not None else (None, [])


def _render(docs: Batch, resolved: dict[str, Resolved]) -> bytes:
    lines: list[bytes] = []
    for doc in docs:
        linked = doc.get("externalContactId")
        individual, members = resolved.get(linked, (None, [])) if linked else (None, [])
        lines.append(orjson.dumps(_line(doc, individual, members)))
    lines.append(b"")
    return b"\n".join(lines)


def _line(doc: ConversationDoc, individual: str | None, members: list[str]) -> dict[str, Any]:
    ended = doc.get("endedAt")
    return {
        "id": doc["cid"],
        "channel": doc.get("channel"),
        "direction": doc.get("direction"),
        "startedAt": serialize_datetime(doc["startedAt"]),
        "endedAt": serialize_datetime(ended) if ended is not None else None,
        "durationSeconds": doc.get("durationSeconds"),
        "queue": doc.get("queue"),
        "agent": doc.get("agent"),
        "wrapUpCode": doc.get("wrapUpCode"),
        "status": doc.get("status"),
        "notes": doc.get("notes"),
        "identifiers": [
            {"type": i["type"], "value": i["value"]} for i in doc.get("identifiers") or []
        ],
        "externalContactId": doc.get("externalContactId"),
        "individualId": individual,
        "mergeSetIds": members,
    }


def _params(request: Request) -> tuple[datetime | None, datetime | None, list[str] | None]:
    """``since``/``until`` ISO-8601 with offset, ``channels`` comma-separated or repeated;
    an empty value counts as absent. BAD_USER_INPUT otherwise."""
    params = request.query_params
    unknown = set(params) - {"since", "until", "channels"}
    if unknown:
        raise BadUserInput(f"unknown query parameter {sorted(unknown)[0]!r}")
    times: list[datetime | None] = []
    for name in ("since", "until"):
        values = [v for v in params.getlist(name) if v.strip()]
        if len(values) > 1:
            raise BadUserInput(f"{name} given more than once")
        times.append(parse_datetime(values[0].strip()) if values else None)
    channels: list[str] | None = None
    raw = [c.strip().upper() for v in params.getlist("channels") for c in v.split(",")]
    if any(raw):
        channels = [c for c in raw if c]
    return times[0], times[1], channels


async def export_conversations(request: Request) -> Response:
    def lines(store: Store, principal: Principal) -> AsyncIterator[bytes]:
        since, until, channels = _params(request)
        return ndjson_lines(store, principal.org, since, until, channels)

    return await stream_lines(request, Permission.CONVERSATION_VIEW_ALL, lines)


async def stream_lines(
    request: Request,
    permission: Permission,
    lines_of: Callable[[Store, Principal], AsyncIterator[bytes]],
) -> Response:
    """An NDJSON export: the token, the rate limit and ``permission`` checked, then the first
    chunk read before the response starts (bad input and an unavailable database are still
    a JSON error), the rest streamed."""
    runtime = request.app.state.runtime
    try:
        principal = principal_of(request)  # AuthenticationMiddleware read the token
        runtime.rate_limiter.check(principal)
        principal.require(permission)
        lines = lines_of(runtime.store, principal)
        first = await anext(lines, b"")
    except RequestRefused as refused:
        return refusal_response(refused)
    except DomainError as exc:
        return domain_error_response(exc)
    except PyMongoError as exc:
        log.warning("export failed before streaming: %s", type(exc).__name__)
        return domain_error_response(ServiceUnavailable(UNAVAILABLE_MESSAGE))
    return StreamingResponse(_chain(first, lines), media_type=MEDIA_TYPE)


async def _chain(first: bytes, rest: AsyncIterator[bytes]) -> AsyncIterator[bytes]:
    if first:
        yield first
    async for chunk in rest:
        yield chunk


async def guarded_export(
    request: Request, what: str, prepare: Callable[[Principal], Awaitable[Response]]
) -> Response:
    """An export endpoint that is not NDJSON (the person export): the caller authenticated
    and rate-limited, then ``prepare`` checks permissions and reads what must be known
    before the first byte. A refusal, or an unavailable database, before streaming answers
    JSON with its status."""
    runtime = request.app.state.runtime
    try:
        principal = principal_of(request)
        runtime.rate_limiter.check(principal)
        return await prepare(principal)
    except RequestRefused as refused:
        return refusal_response(refused)
    except DomainError as exc:
        return domain_error_response(exc)
    except PyMongoError as exc:
        log.warning("%s failed before streaming: %s", what, type(exc).__name__)
        return domain_error_response(ServiceUnavailable(UNAVAILABLE_MESSAGE))
