"""Importing curated contacts from CSV rows; re-importing the same rows changes nothing.

Columns are the ContactInput field names; ``externalIds`` is ``source:value;source:value``,
the address columns are ``address.line1`` … ``address.countryCode``, ``surveyOptOut`` is
true/false. Rows stream in batches: one query per batch recognises the rows already imported
as they are (a fingerprint of their normalised fields); every other row updates the curated
contact that lists one of its external ids, else one that lists one of its emails, else it
creates a contact. A bad row is reported with its line number and the rest still import.
"""

from __future__ import annotations

import hashlib
import itertools
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import orjson

from resolvers import claims, liveness
from resolvers.contact_fields import (
    ADDRESS_FIELDS,
    EMAIL_FIELDS,
    STRING_FIELDS,
    ContactType,
    clean_input,
)
from resolvers.contacts import create_contact, update_contact
from resolvers.documents import ContactDoc, ContactFields
from resolvers.errors import BadUserInput, DomainError
from resolvers.identifiers import IdentifierType, key
from resolvers.principal import Principal
from resolvers.store import Store

MAX_ROWS = 1_000_000
BATCH_ROWS = 500
MAX_REPORTED_ERRORS = 1000
COLUMNS = (*STRING_FIELDS, "externalIds", *(f"address.{f}" for f in ADDRESS_FIELDS), "surveyOptOut")
KNOWN_COLUMNS = frozenset(COLUMNS)
SHOWN_CHARS = 80  # of a bad value in an error message
TRUE = {"true", "yes", "1", "y"}
FALSE = {"false", "no", "0", "n", ""}


@dataclass(frozen=True)
class BadRow:
    """A line that is not a row (an unterminated quote, the wrong number of cells)."""

    message: str


# (line number in the file, cells by column or why the line is not a row)
Row = tuple[int, Mapping[str, str | None] | BadRow]


def shown(value: object) -> str:
    """A bad value as an error message shows it: quoted, on one line, at most SHOWN_CHARS."""
    text = repr(value)
    return text if len(text) <= SHOWN_CHARS else text[: SHOWN_CHARS - 1] + "…"


@dataclass
class ImportReport:
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    failed: int = 0
    errors: list[tuple[int, str]] = field(default_factory=list)  # the first 1000: (line, why)

    def fail(self, line: int, message: str) -> None:
        self.failed += 1
        if len(self.errors) < MAX_REPORTED_ERRORS:
            self.errors.append((line, message))


def row_to_patch(row: Mapping[str, str | None]) -> dict[str, Any]:
    """A CSV row as a ContactInput patch: one column per field, ``address.*`` columns for
    the address, ``externalIds`` as ``source:value;…``."""
    patch: dict[str, Any] = {}
    address: dict[str, Any] = {}
    for column, raw in row.items():
        name = column.strip()
        value = (raw or "").strip()
        if name.startswith("address.") and name[8:] in ADDRESS_FIELDS:
            address[name[8:]] = value or None
        elif name:
            patch[name] = _column_value(name, value)
    if any(v is not None for v in address.values()):
        patch["address"] = address
    return patch


def _column_value(name: str, value: str) -> Any:
    if name in STRING_FIELDS:
        return value or None
    if name == "externalIds":
        return _external_ids(value)
    if name == "surveyOptOut":
        if value.lower() not in TRUE | FALSE:
            raise BadUserInput(f"surveyOptOut must be true or false, not {shown(value)}")
        return value.lower() in TRUE
    raise BadUserInput(f"unknown column {shown(name)}")


def _external_ids(value: str) -> list[dict[str, str]]:
    ids = []
    for part in filter(None, (p.strip() for p in value.split(";"))):
        source, sep, ident = part.partition(":")
        if not sep:
            raise BadUserInput(f"external id {shown(part)} is not source:value")
        ids.append({"source": source, "value": ident})
    return ids


def _as_entered(value: Any) -> Any:
    """A patch value the way the row had it (address and external ids are not strings)."""
    if isinstance(value, dict):
        return {k: v for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return ";".join(f"{e['source']}:{e['value']}" for e in value)
    return value


def fingerprint(fields: Mapping[str, Any]) -> str:
    return hashlib.sha256(orjson.dumps(fields, option=orjson.OPT_SORT_KEYS)).hexdigest()


@dataclass
class _Parsed:
    line: int
    patch: dict[str, Any]
    fields: ContactFields
    fingerprint: str


def _parse(line: int, row: Mapping[str, str | None], region: str) -> _Parsed:
    patch = row_to_patch(row)
    fields: ContactFields = {}
    for name, value in patch.items():  # field by field: an error shows the value it is about
        try:
            fields.update(clean_input({name: value}, region))
        except BadUserInput as exc:
            raise BadUserInput(f"{exc.message}: {shown(_as_entered(value))}") from None
    if not fields.get("firstName") or not fields.get("lastName"):
        raise BadUserInput("firstName and lastName are required")
    return _Parsed(line, patch, fields, fingerprint(fields))


def _curated(doc: ContactDoc) -> bool:
    return bool(doc["type"] == ContactType.CURATED and liveness.is_live(doc))


async def _oldest_listing(store: Store, org: str, keys: list[str]) -> ContactDoc | None:
    if not keys:
        return None
    listers = await store.contacts.find({"org": org, "keys": {"$in": keys}}).to_list()
    candidates = [d for d in listers if _curated(d)]
    return min(candidates, key=claims.rank) if candidates else None


async def _match(store: Store, org: str, fields: ContactFields) -> ContactDoc | None:
    """The curated contact a row is about: by external id first, then by email."""
    external = [
        key(IdentifierType.EXTERNAL_ID, f"{e['source']}:{e['value']}")
        for e in fields.get("externalIds") or []
    ]
    emails = [key(IdentifierType.EMAIL, fields[f]) for f in EMAIL_FIELDS if fields.get(f)]
    return await _oldest_listing(store, org, external) or await _oldest_listing(store, org, emails)


async def _apply(store: Store, principal: Principal, row: _Parsed) -> str:
    existing = await _match(store, principal.org, row.fields)
    if existing is not None:
        doc = await update_contact(store, principal, existing["_id"], row.patch)
        outcome = "updated"
    else:
        doc = await create_contact(store, principal, row.patch)
        outcome = "created"
    await store.contacts.update_one({"_id": doc["_id"]}, {"$set": {"importKey": row.fingerprint}})
    return outcome


async def _imported_already(store: Store, org: str, prints: list[str]) -> set[str]:
    """Fingerprints of live curated contacts imported from exactly such a row."""
    found = store.contacts.find(
        {"org": org, "importKey": {"$in": prints}},
        {"importKey": 1, "type": 1, "expiresAt": 1},
    )
    return {doc["importKey"] async for doc in found if _curated(doc)}


async def import_batch(
    store: Store, principal: Principal, rows: list[Row], report: ImportReport
) -> None:
    """Import one batch of rows, adding each outcome to ``report``."""
    parsed: list[_Parsed] = []
    for line, row in rows:
        if isinstance(row, BadRow):
            report.fail(line, row.message)
            continue
        try:
            parsed.append(_parse(line, row, store.config.default_region))
        except DomainError as exc:
            report.fail(line, exc.message)
    done = await _imported_already(store, principal.org, [p.fingerprint for p in parsed])
    for item in parsed:
        if item.fingerprint in done:
            report.unchanged += 1
            continue
        try:
            outcome = await _apply(store, principal, item)
        except DomainError as exc:
            report.fail(item.line, exc.message)
            continue
        done.add(item.fingerprint)  # the same row twice in one file
        setattr(report, outcome, getattr(report, outcome) + 1)


async def import_rows(
    store: Store,
    principal: Principal,
    rows: Iterable[Row],
    progress: Callable[[int], None] | None = None,
) -> ImportReport:
    """Stream ``rows`` in batches of BATCH_ROWS; at most MAX_ROWS rows are read."""
    report = ImportReport()
    for batch in _batches(rows, report):
        await import_batch(store, principal, batch, report)
        if progress is not None:
            progress(len(batch))
    return report


def _batches(rows: Iterable[Row], report: ImportReport) -> Iterator[list[Row]]:
    iterator = iter(rows)
    read = 0
    while batch := list(itertools.islice(iterator, BATCH_ROWS)):
        if read + len(batch) > MAX_ROWS:
            allowed = batch[: MAX_ROWS - read]
            if allowed:
                yield allowed
            report.fail(batch[len(allowed)][0], f"at most {MAX_ROWS} rows per import; stopped here")
            return
        read += len(batch)
        yield batch
