"""Pages of a list: the rows, a cursor per row, and how to count the whole list.

Cursors are opaque keyset positions: base64url of a small JSON array, tagged with the list
they belong to. GraphQL's ``Connection`` (schema/pagination.py) only adapts a :class:`Page`.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Generic, TypeVar

import orjson

from resolvers.clock import to_db_precision
from resolvers.errors import BadUserInput

D = TypeVar("D")

# How many items the whole list holds; run only when a caller asks (``totalCount``).
Total = Callable[[], Awaitable[int]]


async def _zero() -> int:
    return 0


def known_total(count: int) -> Total:
    """The total of a list already counted while its page was read."""

    async def total() -> int:
        return count

    return total


@dataclass
class Page(Generic[D]):
    """One page of documents (fetched with one extra row to know whether more follow), one
    cursor per document, and how to count the whole list."""

    docs: list[D]
    has_next: bool
    cursors: list[str]
    total: Total = field(default=_zero)

    @property
    def end_cursor(self) -> str | None:
        return self.cursors[-1] if self.cursors else None


def check_first(first: int, maximum: int) -> int:
    if first < 1 or first > maximum:
        raise BadUserInput(f"first must be between 1 and {maximum}")
    return first


def encode_cursor(kind: str, *values: str | datetime) -> str:
    parts: list[Any] = [kind]
    for value in values:
        parts.append({"t": value.isoformat()} if isinstance(value, datetime) else value)
    return base64.urlsafe_b64encode(orjson.dumps(parts)).decode().rstrip("=")


def decode_cursor(kind: str, cursor: str, arity: int) -> list[str | datetime]:
    """The values of a cursor this server issued for ``kind``; BAD_USER_INPUT otherwise."""
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        parts = orjson.loads(base64.urlsafe_b64decode(padded.encode("ascii")))
    except (ValueError, binascii.Error, UnicodeEncodeError, orjson.JSONDecodeError):
        raise BadUserInput("invalid cursor") from None
    if not isinstance(parts, list) or len(parts) != arity + 1 or parts[0] != kind:
        raise BadUserInput("invalid cursor")
    values: list[str | datetime] = []
    for part in parts[1:]:
        if isinstance(part, str):
            values.append(part)
        elif isinstance(part, dict) and isinstance(part.get("t"), str):
            try:
                values.append(to_db_precision(datetime.fromisoformat(part["t"])))
            except ValueError:
                raise BadUserInput("invalid cursor") from None
        else:
            raise BadUserInput("invalid cursor")
    return values
