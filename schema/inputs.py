"""Input types; ``to_patch`` turns one into the domain's partial dict (omitted keys absent)."""

from __future__ import annotations

from enum import Enum
from typing import Any

import strawberry
from strawberry.schema.name_converter import NameConverter
from strawberry.types.base import get_object_definition
from strawberry.types.unset import UnsetType

from schema.enums import IdentifierType


@strawberry.input
class ExternalIdInput:
    source: str
    value: str


@strawberry.input
class AddressInput:
    line1: str | None = strawberry.UNSET
    line2: str | None = strawberry.UNSET
    city: str | None = strawberry.UNSET
    state: str | None = strawberry.UNSET
    postal_code: str | None = strawberry.UNSET
    country_code: str | None = strawberry.UNSET


@strawberry.input
class ContactInput:
    first_name: str | None = strawberry.UNSET
    middle_name: str | None = strawberry.UNSET
    last_name: str | None = strawberry.UNSET
    title: str | None = strawberry.UNSET
    work_phone: str | None = strawberry.UNSET
    cell_phone: str | None = strawberry.UNSET
    home_phone: str | None = strawberry.UNSET
    other_phone: str | None = strawberry.UNSET
    work_email: str | None = strawberry.UNSET
    personal_email: str | None = strawberry.UNSET
    other_email: str | None = strawberry.UNSET
    whats_app_id: str | None = strawberry.UNSET
    facebook_id: str | None = strawberry.UNSET
    twitter_id: str | None = strawberry.UNSET
    line_id: str | None = strawberry.UNSET
    instagram_id: str | None = strawberry.UNSET
    external_ids: list[ExternalIdInput] | None = strawberry.UNSET
    address: AddressInput | None = strawberry.UNSET
    survey_opt_out: bool | None = strawberry.UNSET


@strawberry.input
class IdentifierInput:
    type: IdentifierType
    value: str


_NAMES = NameConverter()  # the schema's own naming (auto camel case)


def to_patch(value: Any) -> dict[str, Any]:
    """A Strawberry input object as a dict of the fields the caller gave, in GraphQL names."""
    patch: dict[str, Any] = {}
    for field in get_object_definition(value, strict=True).fields:
        item = getattr(value, field.python_name)
        if isinstance(item, UnsetType):
            continue
        patch[_NAMES.get_graphql_name(field)] = _plain(item)
    return patch


def _plain(item: Any) -> Any:
    if isinstance(item, Enum):
        return item
    if isinstance(item, list):
        return [_plain(i) for i in item]
    if hasattr(item, "__strawberry_definition__"):
        return to_patch(item)
    return item
