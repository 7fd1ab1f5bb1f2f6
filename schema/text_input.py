"""Text that cannot be stored is bad input: lone UTF-16 surrogates are refused up front.

``"\\ud800"`` is valid JSON and a Python ``str`` holds it, but it is not Unicode text: no
UTF-8 encoding exists, so the database driver (or the log) fails on it deep inside a
resolver, which used to surface as ``INTERNAL_SERVER_ERROR``, possibly after earlier
writes of the same mutation. :class:`LoneSurrogates` refuses such an operation before
anything runs, with ``BAD_USER_INPUT``:

* in the variables or the operation name (checked before validation);
* in a string literal of the document, raw or as an escape: graphql-core reports those
  as syntax errors, which are re-coded here (the WebSocket handler answers them on the
  operation instead of closing the connection, as it does for other syntax errors).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

from graphql import GraphQLError
from graphql.error import GraphQLSyntaxError
from strawberry.extensions import SchemaExtension

from resolvers.errors import BadUserInput

CODE = BadUserInput.code
_SURROGATE = re.compile("[\ud800-\udfff]")
# graphql-core quotes the offending character (U+D800) or escape ('\ud800', '\u{d800}')
_NAMED_SURROGATE = re.compile(r"(?i)(?:U\+|\\u\{?)0*D[89A-F][0-9A-F]{2}\b")
MESSAGE = "text must be valid Unicode: {where} holds a lone UTF-16 surrogate"


def has_lone_surrogate(value: Any) -> bool:
    """Any string in ``value`` (nested dicts and lists walked, keys too) with a surrogate."""
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            if _SURROGATE.search(item):
                return True
        elif isinstance(item, dict):
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, list | tuple):
            stack.extend(item)
    return False


class LoneSurrogates(SchemaExtension):
    """``BAD_USER_INPUT`` for an operation whose text or variables hold a lone surrogate."""

    def on_parse(self) -> Iterator[None]:
        yield
        for error in self.execution_context.pre_execution_errors or ():
            # changed in place: Strawberry returns these very objects
            if isinstance(error, GraphQLSyntaxError) and _NAMED_SURROGATE.search(error.message):
                error.message = f"{error.message} {MESSAGE.format(where='a string literal')}"
                error.extensions = {"code": CODE}

    def on_validate(self) -> Iterator[None]:
        execution = self.execution_context
        where = None
        if has_lone_surrogate(execution.variables):
            where = "a variable"
        elif has_lone_surrogate(execution.operation_name):
            where = "the operation name"
        if where is not None and execution.pre_execution_errors is None:
            # set before validation, so nothing validates or executes
            execution.pre_execution_errors = [
                GraphQLError(MESSAGE.format(where=where), extensions={"code": CODE})
            ]
        yield
