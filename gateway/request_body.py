"""The JSON of a GraphQL request, decoded strictly.

:func:`loads` is the gateway's JSON decoder (HTTP bodies, WebSocket messages, query
parameters). Whatever arrives, it returns a value or raises ``json.JSONDecodeError``,
which Strawberry turns into a 400 and the WebSocket handler into close code 4400: never
``UnicodeDecodeError`` (invalid UTF-8, a Latin-1 body) or ``RecursionError`` (JSON
nested thousands deep), which used to escape as plain-text 500s.

One thing it lets through on purpose: ``"\\ud800"``, a lone UTF-16 surrogate escape, is
valid JSON syntax, and such a string is refused later, as ``BAD_USER_INPUT`` at the
operation it was given to (``schema/text_input.py``), like any other bad value.

What the decoded value must then be (one JSON object whose members have the right types)
is checked by ``gateway/graphql_request.py``.
"""

from __future__ import annotations

import json
from typing import Any

import orjson

MAX_DEPTH = 64  # containers inside containers; a GraphQL request needs a handful


def loads(data: str | bytes) -> Any:
    """The JSON value of ``data`` (UTF-8), or ``json.JSONDecodeError`` saying what is wrong."""
    try:
        value = orjson.loads(data)  # strict UTF-8, nesting limit 1024, fast
    except orjson.JSONDecodeError as exc:
        if "surrogate" not in str(exc):
            raise _invalid(str(exc), data) from None
        value = _loads_with_surrogates(data, exc)
    if _depth_exceeds(value, MAX_DEPTH):
        raise _invalid(f"JSON nested deeper than {MAX_DEPTH} levels", data)
    return value


def _loads_with_surrogates(data: str | bytes, exc: orjson.JSONDecodeError) -> Any:
    """orjson refuses a lone surrogate escape (and names invalid UTF-8 the same way): the
    standard decoder reads the first kind, on text that is known to be UTF-8."""
    try:
        text = data.decode("utf-8") if isinstance(data, bytes) else data
        return json.loads(text)
    except UnicodeDecodeError:
        raise _invalid("the body is not UTF-8", data) from None
    except RecursionError:
        raise _invalid(str(exc), data) from None


def _invalid(reason: str, data: str | bytes) -> json.JSONDecodeError:
    text = data if isinstance(data, str) else data[:64].decode("utf-8", "replace")
    return json.JSONDecodeError(f"invalid JSON ({reason.split(':', 1)[0]})", text, 0)


def _depth_exceeds(value: Any, limit: int) -> bool:
    """Iteratively, so a deep value cannot exhaust the stack here either."""
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict):
            children: Any = item.values()
        elif isinstance(item, list):
            children = item
        else:
            continue
        if depth > limit:
            return True
        stack.extend((child, depth + 1) for child in children)
    return False
