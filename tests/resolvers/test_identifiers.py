"""Identifier normalisation: E.164 phones, lower-case emails, ``TYPE:value`` keys, field input."""

from __future__ import annotations

import phonenumbers
import pytest

from resolvers.contact_fields import MAX_EXTERNAL_IDS, clean_input, contact_keys, name_tokens
from resolvers.errors import BadUserInput
from resolvers.identifiers import (
    MAX_EMAIL,
    MAX_STRING,
    IdentifierType,
    key,
    normalize_email,
    normalize_phone,
    normalize_value,
    split_key,
    try_normalize_email,
)


@pytest.mark.parametrize(
    ("raw", "region", "expected"),
    [
        ("+1 803-123-0000", "US", "+18031230000"),
        ("(803) 123-0000", "US", "+18031230000"),
        ("803.123.0000", "US", "+18031230000"),
        ("  +18031230000  ", "US", "+18031230000"),
        ("+44 20 7946 0018", "US", "+442079460018"),
        ("020 7946 0018", "GB", "+442079460018"),
        ("(803) 123-0000", "GB", "+448031230000"),
        # international prefixes count as "+": 00 from anywhere, the region's own IDD
        ("0044 20 7946 0005", "US", "+442079460005"),
        ("00 1 803 555 0009", "US", "+18035550009"),
        ("011 44 20 7946 0005", "US", "+442079460005"),
        ("0044 20 7946 0005", "GB", "+442079460005"),
        ("0011 44 20 7946 0005", "AU", "+442079460005"),
        ("00 33 1 23 45 67 89", "FR", "+33123456789"),
        # an extension is not part of the identifier
        ("+1-803-555-0008 ext. 12", "US", "+18035550008"),
        ("(803) 555-0008 x12", "US", "+18035550008"),
    ],
)
def test_phone_is_e164_with_default_region(raw: str, region: str, expected: str) -> None:
    assert normalize_phone(raw, region) == expected


@pytest.mark.parametrize(
    ("raw", "stored"),
    [
        ("+1-803-555-0008 ext. 12", "+1-803-555-0008 ext. 12"),  # kept as entered
        ("0044 20 7946 0005", "+442079460005"),
        ("011 44 20 7946 0005", "+442079460005"),
        ("not a phone", "not a phone"),
    ],
)
def test_phone_field_keeps_an_extension_and_lists_the_number_without_it(
    raw: str, stored: str
) -> None:
    fields = clean_input({"workPhone": raw}, "US")
    assert fields["workPhone"] == stored
    expected = normalize_phone(raw, "US")
    assert contact_keys(fields, "US") == ([key(IdentifierType.PHONE, expected)] if expected else [])


def test_possible_but_unallocated_phone_is_accepted() -> None:
    # NANP exchanges never start with 1, so this number is not *valid*, only *possible*.
    number = phonenumbers.parse("+1 803-123-0000", "US")
    assert not phonenumbers.is_valid_number(number)
    assert normalize_phone("+1 803-123-0000", "US") == "+18031230000"


@pytest.mark.parametrize(
    "raw", ["anonymous", "12", "", "   ", "+", "ext 12", "1234567890123456789", "9" * 80]
)
def test_phone_that_cannot_be_normalised_is_none(raw: str) -> None:
    assert normalize_phone(raw, "US") is None
    assert normalize_value(IdentifierType.PHONE, raw, "US") is None


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("  Alexis.Smith@Example.COM ", "alexis.smith@example.com"),
        ("DAVID@EXAMPLE.ORG", "david@example.org"),
        ("a+tag@sub.example.co.uk", "a+tag@sub.example.co.uk"),
    ],
)
def test_email_is_trimmed_and_lower_cased(raw: str, expected: str) -> None:
    assert normalize_email(raw) == expected
    assert try_normalize_email(raw) == expected
    assert normalize_value(IdentifierType.EMAIL, raw, "US") == expected


@pytest.mark.parametrize(
    "raw",
    [
        "not-an-email",
        "a@",
        "@example.com",
        "a b@example.com",
        "alexis@@example.com",
        "a" * (MAX_EMAIL - 11) + "@example.com",
    ],
)
def test_invalid_email_is_bad_user_input(raw: str) -> None:
    with pytest.raises(BadUserInput):
        normalize_email(raw)
    assert try_normalize_email(raw) is None
    assert normalize_value(IdentifierType.EMAIL, raw, "US") is None


def test_other_identifier_types() -> None:
    assert normalize_value(IdentifierType.EXTERNAL_ID, " crm : 42 ", "US") == "crm:42"
    assert normalize_value(IdentifierType.EXTERNAL_ID, "crm:a:b", "US") == "crm:a:b"
    assert normalize_value(IdentifierType.EXTERNAL_ID, "no-source", "US") is None
    assert normalize_value(IdentifierType.EXTERNAL_ID, "crm:", "US") is None
    assert normalize_value(IdentifierType.WHATSAPP, "+1 803-123-0000", "US") == "+18031230000"
    assert normalize_value(IdentifierType.WHATSAPP, "wa-handle", "US") == "wa-handle"
    assert normalize_value(IdentifierType.TWITTER, "  @alexis ", "US") == "@alexis"
    assert normalize_value(IdentifierType.COOKIE, "   ", "US") is None


def test_keys_round_trip_values_with_colons() -> None:
    identifier_key = key(IdentifierType.EXTERNAL_ID, "crm:42")
    assert identifier_key == "EXTERNAL_ID:crm:42"
    assert split_key(identifier_key) == (IdentifierType.EXTERNAL_ID, "crm:42")
    assert split_key(key(IdentifierType.PHONE, "+18031230000")) == (
        IdentifierType.PHONE,
        "+18031230000",
    )


def test_clean_input_normalises_fields() -> None:
    clean = clean_input(
        {
            "firstName": "  Alexis ",
            "lastName": "Smith",
            "cellPhone": "(803) 123-0000",
            "workPhone": "anonymous",
            "homePhone": None,
            "workEmail": " Alexis@Example.COM",
            "whatsAppId": "+1 803 123 0001",
            "externalIds": [{"source": "crm", "value": "42"}, {"source": "crm", "value": "42"}],
            "address": {"city": "Columbia"},
            "surveyOptOut": True,
        },
        "US",
    )
    assert clean["firstName"] == "Alexis"
    assert clean["cellPhone"] == "+18031230000"
    assert clean["workPhone"] == "anonymous"  # stored exactly as entered
    assert clean["homePhone"] is None
    assert "otherPhone" not in clean  # omitted stays omitted
    assert clean["workEmail"] == "alexis@example.com"
    assert clean["whatsAppId"] == "+18031230001"
    assert clean["externalIds"] == [{"source": "crm", "value": "42"}]
    assert clean["address"]["city"] == "Columbia"
    assert clean["address"]["line1"] is None
    assert clean["surveyOptOut"] is True


@pytest.mark.parametrize(
    "patch",
    [
        {"workEmail": "not-an-email"},
        {"firstName": "x" * (MAX_STRING + 1)},
        {"cellPhone": "1" * (MAX_STRING + 1)},
        {"personalEmail": "a" * 300 + "@example.com"},
        {"externalIds": [{"source": "crm", "value": str(i)} for i in range(MAX_EXTERNAL_IDS + 1)]},
        {"externalIds": [{"source": "c:rm", "value": "1"}]},
        {"externalIds": [{"source": " ", "value": "1"}]},
        {"address": {"city": "x" * (MAX_STRING + 1)}},
        {"lastName": "nul\x00byte"},
        {"nickname": "Al"},
    ],
)
def test_clean_input_rejects_bad_values(patch: dict[str, object]) -> None:
    with pytest.raises(BadUserInput):
        clean_input(patch, "US")


def test_contact_keys_only_list_normalised_values() -> None:
    doc = clean_input(
        {
            "cellPhone": "+1 803-123-0000",
            "workPhone": "803 123 0000",
            "homePhone": "anonymous",
            "otherPhone": "12",
            "personalEmail": "A@Example.com",
            "facebookId": "fb.alexis",
            "externalIds": [{"source": "crm", "value": "42"}],
        },
        "US",
    )
    assert contact_keys(doc, "US") == [
        "PHONE:+18031230000",
        "EMAIL:a@example.com",
        "FACEBOOK:fb.alexis",
        "EXTERNAL_ID:crm:42",
    ]


def test_name_tokens_are_case_folded_words() -> None:
    doc = {"firstName": "Mary-Jane", "middleName": None, "lastName": "O'Neil Smith"}
    assert name_tokens(doc) == ["mary", "jane", "o", "neil", "smith"]
