"""What the logs never hold: identifier values quoted by the driver's errors."""

from __future__ import annotations

import io
import logging

from pymongo.errors import DuplicateKeyError

from gateway.logs import json_handler


def test_a_duplicate_key_error_is_logged_without_the_key_value() -> None:
    quoted = '{ org: "acme", key: "COOKIE:ck-private-7" }'
    error = DuplicateKeyError(
        f"E11000 duplicate key error collection: scv.identifiers index: claim dup key: {quoted}",
        11000,
        {
            "errmsg": f"E11000 dup key: {quoted}",
            "keyPattern": {"org": 1, "key": 1},
            "keyValue": {"org": "acme", "key": "COOKIE:ck-private-7"},
        },
    )
    buffer = io.StringIO()
    logger = logging.getLogger("scv.test.privacy")
    handler = json_handler(buffer)
    logger.addHandler(handler)
    try:
        try:
            raise error
        except DuplicateKeyError:
            logger.exception("unexpected error at %s", "recordInteraction")
    finally:
        logger.removeHandler(handler)
    line = buffer.getvalue()
    assert "unexpected error at recordInteraction" in line
    assert "DuplicateKeyError" in line  # the error and its traceback are still there
    assert "ck-private-7" not in line
    assert "dup key: [key]" in line
