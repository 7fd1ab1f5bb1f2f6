"""Contact fields: validation of input, and the identifier keys and name tokens a contact lists."""

from __future__ import annotations

import re
from collections.abc import Mapping
from enum import StrEnum
from typing import Any, cast

from resolvers.documents import AddressDoc, ContactFields, ExternalIdDoc
from resolvers.errors import BadUserInput
from resolvers.identifiers import (
    MAX_STRING,
    IdentifierType,
    key,
    normalize_email,
    normalize_phone,
    normalize_value,
    phone_field_value,
)


class ContactType(StrEnum):
    CURATED = "CURATED"
    IDENTIFIED = "IDENTIFIED"
    EPHEMERAL = "EPHEMERAL"


NAME_FIELDS = ("firstName", "middleName", "lastName", "title")
PHONE_FIELDS = ("cellPhone", "workPhone", "homePhone", "otherPhone")
EMAIL_FIELDS = ("personalEmail", "workEmail", "otherEmail")
SOCIAL_FIELDS: dict[str, IdentifierType] = {
    "whatsAppId": IdentifierType.WHATSAPP,
    "facebookId": IdentifierType.FACEBOOK,
    "twitterId": IdentifierType.TWITTER,
    "lineId": IdentifierType.LINE,
    "instagramId": IdentifierType.INSTAGRAM,
}
STRING_FIELDS = (*NAME_FIELDS, *PHONE_FIELDS, *EMAIL_FIELDS, *SOCIAL_FIELDS)
ADDRESS_FIELDS = ("line1", "line2", "city", "state", "postalCode", "countryCode")
ALL_FIELDS = (*STRING_FIELDS, "externalIds", "address", "surveyOptOut")
PII_FIELDS = (*PHONE_FIELDS, *EMAIL_FIELDS, *SOCIAL_FIELDS)
MAX_EXTERNAL_IDS = 10

_TOKEN_SPLIT = re.compile(r"[\s\-'\u2019.,]+")


def _text(field: str, value: Any, limit: int = MAX_STRING) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise BadUserInput(f"{field} must be a string")
    if len(value) > limit:
        raise BadUserInput(f"{field} is longer than {limit} characters")
    if "\x00" in value:
        raise BadUserInput(f"{field} contains a NUL character")
    text = value.strip()
    return text or None


def clean_input(patch: Mapping[str, Any], region: str) -> ContactFields:
    """Validate and normalise a (partial) ContactInput. Keys absent stay absent; None clears."""
    clean: ContactFields = {}
    for field, value in patch.items():
        if field not in ALL_FIELDS:
            raise BadUserInput(f"unknown contact field {field}")
        clean[field] = _clean_field(field, value, region)
    return clean


def _clean_field(field: str, value: Any, region: str) -> Any:
    if field in STRING_FIELDS:
        text = _text(field, value)
        return None if text is None else _normalised(field, text, region)
    if field == "externalIds":
        return _external_ids(value)
    if field == "address":
        return _address(value)
    return bool(value)  # surveyOptOut


def _normalised(field: str, text: str, region: str) -> str | None:
    """A phone, email or social field's value in its normal form; a name as given."""
    if field in PHONE_FIELDS:
        return phone_field_value(text, region)
    if field in EMAIL_FIELDS:
        try:
            return normalize_email(text)
        except BadUserInput as exc:
            raise BadUserInput(f"{field}: {exc.message}") from None
    if field in SOCIAL_FIELDS:
        return normalize_value(SOCIAL_FIELDS[field], text, region)
    return text


def _external_ids(value: Any) -> list[ExternalIdDoc]:
    if value is None:
        return []
    if len(value) > MAX_EXTERNAL_IDS:
        raise BadUserInput(f"at most {MAX_EXTERNAL_IDS} external ids")
    seen: set[tuple[str, str]] = set()
    result: list[ExternalIdDoc] = []
    for item in value:
        source = _text("externalIds.source", item.get("source"))
        ident = _text("externalIds.value", item.get("value"))
        if source is None or ident is None:
            raise BadUserInput("an external id needs a source and a value")
        if ":" in source:
            raise BadUserInput("an external id source may not contain ':'")
        if (source, ident) not in seen:
            seen.add((source, ident))
            result.append({"source": source, "value": ident})
    return result


def _address(value: Any) -> AddressDoc | None:
    if value is None:
        return None
    address = {field: _text(f"address.{field}", value.get(field)) for field in ADDRESS_FIELDS}
    return cast(AddressDoc, address) if any(v is not None for v in address.values()) else None


def contact_keys(doc: Mapping[str, Any], region: str) -> list[str]:
    """The normalised ``TYPE:value`` identifier keys the contact's fields list, in field order."""
    keys: list[str] = []
    for field in PHONE_FIELDS:
        value = doc.get(field)
        phone = normalize_phone(value, region) if value else None
        if phone:
            keys.append(key(IdentifierType.PHONE, phone))
    for field in EMAIL_FIELDS:
        if doc.get(field):
            keys.append(key(IdentifierType.EMAIL, doc[field]))
    for field, kind in SOCIAL_FIELDS.items():
        if doc.get(field):
            keys.append(key(kind, doc[field]))
    for ext in doc.get("externalIds") or []:
        keys.append(key(IdentifierType.EXTERNAL_ID, f"{ext['source']}:{ext['value']}"))
    return list(dict.fromkeys(keys))


def name_tokens(doc: Mapping[str, Any]) -> list[str]:
    tokens: list[str] = []
    for field in ("firstName", "middleName", "lastName"):
        value = doc.get(field)
        if value:
            tokens.extend(t for t in _TOKEN_SPLIT.split(value.casefold()) if t)
    return list(dict.fromkeys(tokens))


def has_pii(doc: Mapping[str, Any]) -> bool:
    return any(doc.get(field) for field in PII_FIELDS) or bool(doc.get("externalIds"))
