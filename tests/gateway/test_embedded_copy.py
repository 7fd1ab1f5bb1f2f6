"""``gateway/embedded_copy.py``: copies of decoded BSON that no holder of the original can
change, and the retryable-write reply SecantusDB keeps, copied that way, as it kept it."""

from __future__ import annotations

import datetime
import uuid
from typing import Any

import bson
import pytest
from secantus import transactions

from gateway import embedded_daemon
from gateway.embedded_copy import copy_document

ORIGINAL_STRIP = transactions._strip_per_attempt_fields


def options() -> dict[str, Any]:
    return {
        "uuid": uuid.uuid4(),
        "validator": {"$and": [{"a": {"$type": "string"}}, {"b": bson.Regex("^x", "i")}]},
        "collation": {"locale": "en", "strength": 2},
        "expireAfterSeconds": bson.Int64(60),
        "created": datetime.datetime(2026, 1, 1),
    }


def test_a_copy_is_equal_and_changing_it_leaves_the_original_alone() -> None:
    original = options()
    copied = copy_document(original)
    assert copied == original
    copied["validator"]["$and"][0]["a"]["$type"] = "int"
    copied["validator"]["$and"].append({})
    copied["collation"]["strength"] = 3
    copied["validator"]["$and"][1]["b"].flags = 0  # not a type it knows: deep-copied
    assert original["validator"]["$and"][0]["a"]["$type"] == "string"
    assert len(original["validator"]["$and"]) == 2
    assert original["collation"]["strength"] == 2
    assert original["validator"]["$and"][1]["b"].flags != 0
    assert copied["uuid"] is original["uuid"]  # immutable: shared


REPLIES: list[dict[str, Any]] = [
    {"ok": 1.0, "n": 1, "nModified": 1},
    {"ok": 1.0, "n": 1, "upserted": [{"index": 0, "_id": bson.ObjectId()}]},
    {"ok": 1.0, "n": 1, "upserted": [{"index": 0, "_id": {"org": "o", "k": [1, 2]}}]},
    {
        "ok": 1.0,
        "n": 0,
        "writeErrors": [{"index": 0, "code": 11000, "errmsg": "dup", "keyValue": {"k": "v"}}],
        "writeConcernError": {"code": 64, "errmsg": "waiting"},
        "errorLabels": ["RetryableWriteError"],
    },
]


@pytest.mark.parametrize("reply", REPLIES)
def test_a_retryable_reply_is_kept_as_secantusdb_keeps_it(reply: dict[str, Any]) -> None:
    mine, theirs = embedded_daemon.strip_per_attempt_fields(reply), ORIGINAL_STRIP(reply)
    assert mine == theirs
    assert "writeConcernError" not in mine and "errorLabels" not in mine
    for field, value in mine.items():
        if isinstance(value, list | dict):
            assert value is not reply[field]  # a copy: the reply sent may change on
