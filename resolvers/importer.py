"""Importing curated contacts from CSV rows; re-importing the same rows changes nothing.

Columns are the ContactInput field names; ``externalIds`` is ``source:value;source:value``,
the address columns are ``address.line1`` … ``address.countryCode``, ``surveyOptOut`` is
true/false. A row is recognised again by a fingerprint of its normalised fields, or, when it
has external ids, by the curated contact that lists one of them (then updated in place).
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import orjson

from resolvers import claims
from resolvers.contact_fields import ADDRESS_FIELDS, STRING_FIELDS, ContactType, clean_input
from resolvers.contacts import create_contact, update_contact
from resolvers.errors import BadUserInput, DomainError
from resolvers.identifiers import IdentifierType, key
from resolvers.principal import Principal
from resolvers.store import Store

MAX_ROWS = 1_000_000
TRUE = {"true", "yes", "1", "y"}
FALSE = {"false", "no", "0", "n", ""}


@dataclass
class ImportReport:
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    errors: list[tuple[int, str]] = field(default_factory=list)


def row_to_patch(row: Mapping[str, str | None]) -> dict[str, Any]:
    patch: dict[str, Any] = {}
    address: dict[str, Any] = {}
    for column, raw in row.items():
        if column is None:
            raise BadUserInput("the row has more cells than the header")
        name = column.strip()
        value = (raw or "").strip()
        if name in STRING_FIELDS:
            patch[name] = value or None
        elif name == "externalIds":
            ids = []
            for part in filter(None, (p.strip() for p in value.split(";"))):
                source, sep, ident = part.partition(":")
                if not sep:
                    raise BadUserInput(f"external id {part!r} is not source:value")
                ids.append({"source": source, "value": ident})
            patch["externalIds"] = ids
        elif name.startswith("address.") and name[8:] in ADDRESS_FIELDS:
            address[name[8:]] = value or None
        elif name == "surveyOptOut":
            if value.lower() not in TRUE | FALSE:
                raise BadUserInput(f"surveyOptOut must be true or false, not {value!r}")
            patch["surveyOptOut"] = value.lower() in TRUE
        elif name:
            raise BadUserInput(f"unknown column {name!r}")
    if any(v is not None for v in address.values()):
        patch["address"] = address
    return patch


def fingerprint(fields: Mapping[str, Any]) -> str:
    return hashlib.sha256(orjson.dumps(fields, option=orjson.OPT_SORT_KEYS)).hexdigest()


async def import_row(store: Store, principal: Principal, row: Mapping[str, str | None]) -> str:
    """Import one row; returns "created", "updated" or "unchanged"."""
    patch = row_to_patch(row)
    fields = clean_input(patch, store.config.default_region)
    if not fields.get("firstName") or not fields.get("lastName"):
        raise BadUserInput("firstName and lastName are required")
    print_ = fingerprint(fields)
    org = principal.org

    def curated(doc: dict[str, Any]) -> bool:
        return doc["type"] == ContactType.CURATED and claims.is_live(doc)

    same = await store.contacts.find({"org": org, "importKey": print_}).to_list()
    if any(curated(d) for d in same):
        return "unchanged"
    external_keys = [
        key(IdentifierType.EXTERNAL_ID, f"{e['source']}:{e['value']}")
        for e in fields.get("externalIds") or []
    ]
    existing = None
    if external_keys:
        listers = await store.contacts.find({"org": org, "keys": {"$in": external_keys}}).to_list()
        candidates = [d for d in listers if curated(d)]
        existing = min(candidates, key=claims.rank) if candidates else None
    if existing is not None:
        await update_contact(store, principal, existing["_id"], patch)
        await store.contacts.update_one({"_id": existing["_id"]}, {"$set": {"importKey": print_}})
        return "updated"
    doc = await create_contact(store, principal, patch)
    await store.contacts.update_one({"_id": doc["_id"]}, {"$set": {"importKey": print_}})
    return "created"


async def import_rows(
    store: Store,
    principal: Principal,
    rows: Sequence[Mapping[str, str | None]],
    progress: Any = None,
) -> ImportReport:
    report = ImportReport()
    if len(rows) > MAX_ROWS:
        raise BadUserInput(f"at most {MAX_ROWS} rows per import")
    for line, row in enumerate(rows, start=2):
        try:
            outcome = await import_row(store, principal, row)
        except DomainError as exc:
            report.errors.append((line, exc.message))
        else:
            setattr(report, outcome, getattr(report, outcome) + 1)
        if progress is not None:
            progress(1)
    return report
