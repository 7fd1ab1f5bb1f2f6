"""Deep copies of decoded BSON for the embedded server, without ``copy.deepcopy``.

SecantusDB copies documents it hands on with ``copy.deepcopy``, which goes through the
reduce protocol for every ``uuid.UUID`` and keeps a memo of every object: under
``make load`` the copies of collection options (in the catalog cache) and of each retryable
write's reply were 3 % of the server's GIL samples each. Decoded BSON is a tree of
dictionaries and lists whose leaves are immutable values, so a copy needs new containers
only.
"""

from __future__ import annotations

import copy
import datetime
import uuid
from typing import Any

import bson

# values of decoded BSON that nothing can change in place: shared by a copy, not copied
IMMUTABLE: tuple[type, ...] = (
    str,
    int,
    float,
    bool,
    bytes,
    type(None),
    uuid.UUID,
    datetime.datetime,
    bson.ObjectId,
    bson.Int64,
    bson.Decimal128,
    bson.Timestamp,
    bson.MinKey,
    bson.MaxKey,
)


def copy_document(value: Any) -> Any:
    """A deep copy of decoded BSON: new dictionaries and lists, the immutable values shared,
    anything else (a ``Regex``, a ``Code`` with its scope, a subclass) through
    ``copy.deepcopy``."""
    if type(value) is dict:
        return {k: copy_document(v) for k, v in value.items()}
    if type(value) is list:
        return [copy_document(v) for v in value]
    if isinstance(value, IMMUTABLE):
        return value
    return copy.deepcopy(value)
