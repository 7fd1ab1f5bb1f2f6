"""Identifier types, normalisation and the ``TYPE:value`` keys stored on contacts and claims."""

from __future__ import annotations

from enum import StrEnum

import phonenumbers
from email_validator import EmailNotValidError, validate_email

from resolvers.errors import BadUserInput

MAX_STRING = 1000
MAX_EMAIL = 256


class IdentifierType(StrEnum):
    PHONE = "PHONE"
    EMAIL = "EMAIL"
    COOKIE = "COOKIE"
    WHATSAPP = "WHATSAPP"
    FACEBOOK = "FACEBOOK"
    TWITTER = "TWITTER"
    LINE = "LINE"
    INSTAGRAM = "INSTAGRAM"
    EXTERNAL_ID = "EXTERNAL_ID"


SOCIAL_TYPES = (
    IdentifierType.WHATSAPP,
    IdentifierType.FACEBOOK,
    IdentifierType.TWITTER,
    IdentifierType.LINE,
    IdentifierType.INSTAGRAM,
)

# recordInteraction looks identifiers up in this order; the first claimed one decides.
PRIORITY: tuple[IdentifierType, ...] = (
    IdentifierType.EXTERNAL_ID,
    IdentifierType.EMAIL,
    IdentifierType.PHONE,
    *SOCIAL_TYPES,
    IdentifierType.COOKIE,
)


def normalize_phone(raw: str, region: str) -> str | None:
    """E.164 when the text parses as a *possible* number, else None (stored as entered).

    International prefixes count as ``+``: the default region's own (``011`` from the US,
    ``0011`` from Australia: phonenumbers strips it using the region's metadata) and ``00``,
    the prefix of most of the world, whatever the region. An extension is not part of the
    identifier (``+1-803-555-0008 ext. 12`` → ``+18035550008``).
    """
    number = _parse_phone(raw, region)
    if number is None:
        return None
    return str(phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164))


def phone_field_value(raw: str, region: str) -> str:
    """What a phone field stores: E.164 when the text normalises and has no extension, else the
    text as entered (an extension is kept; the identifier is the number without it)."""
    text = raw.strip()
    number = _parse_phone(text, region)
    if number is None or number.extension:
        return text
    return str(phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164))


def _parse_phone(raw: str, region: str) -> phonenumbers.PhoneNumber | None:
    text = raw.strip()
    if not text or len(text) > 64:
        return None
    number = _possible(text, region)
    if number is not None and number.country_code_source == _FROM_IDD:
        return number  # the region's own international prefix, e.g. 011 from the US
    if text.startswith("00"):
        return _possible("+" + text[2:], region)
    return number


_FROM_IDD = phonenumbers.CountryCodeSource.FROM_NUMBER_WITH_IDD


def _possible(text: str, region: str) -> phonenumbers.PhoneNumber | None:
    try:
        number = phonenumbers.parse(text, region, keep_raw_input=True)
    except phonenumbers.NumberParseException:
        return None
    return number if phonenumbers.is_possible_number(number) else None


def normalize_email(raw: str) -> str:
    """Trimmed, lower-cased, syntactically valid; BAD_USER_INPUT otherwise."""
    text = raw.strip()
    if len(text) > MAX_EMAIL:
        raise BadUserInput(f"email is longer than {MAX_EMAIL} characters")
    email = try_normalize_email(text)
    if email is None:
        raise BadUserInput("not a valid email address")
    return email


def try_normalize_email(raw: str) -> str | None:
    text = raw.strip()
    if not text or len(text) > MAX_EMAIL:
        return None
    try:
        result = validate_email(text, check_deliverability=False, allow_smtputf8=True)
    except EmailNotValidError:
        return None
    return str(result.normalized).lower()


def normalize_value(kind: IdentifierType, raw: str, region: str) -> str | None:
    """The normalised identifier value, or None when it cannot be used for matching."""
    text = raw.strip()
    if not text:
        return None
    if kind is IdentifierType.PHONE:
        return normalize_phone(text, region)
    if kind is IdentifierType.EMAIL:
        return try_normalize_email(text)
    if kind is IdentifierType.WHATSAPP:
        return normalize_phone(text, region) or text
    if kind is IdentifierType.EXTERNAL_ID:
        source, sep, value = text.partition(":")
        if not sep or not source.strip() or not value.strip():
            return None
        return f"{source.strip()}:{value.strip()}"
    return text


def key(kind: IdentifierType | str, value: str) -> str:
    return f"{kind}:{value}"


def split_key(identifier_key: str) -> tuple[IdentifierType, str]:
    kind, _, value = identifier_key.partition(":")
    return IdentifierType(kind), value


def priority_of(identifier_key: str) -> int:
    return PRIORITY.index(split_key(identifier_key)[0])
