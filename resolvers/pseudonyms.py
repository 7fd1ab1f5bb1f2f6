"""One-way pseudonyms for erased values that must stay in place (the retained change feed).

An erased identifier value or conversation id that a retained change names is replaced by
``hmac-sha256:<hex>``: HMAC-SHA256 of the value (with its type, ``TYPE:value``) under a
random 32-byte key of the org. The same value always gives the same pseudonym within an
org, so a feed consumer can still tell two changes about one value apart from changes
about another, but cannot get the value back, nor test a guess (a phone number has few
enough candidates to try them all against a plain SHA-256): the key never leaves the
database (``erasure_keys``, one document per org, written in the first erasure's
transaction, read by nothing else). Whoever can read the database could test guesses; they
can read the rest of it too.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets

from bson import Binary
from pymongo.asynchronous.client_session import AsyncClientSession

from resolvers.store import Store

PREFIX = "hmac-sha256:"
KEY_BYTES = 32
KEYS_COLLECTION = "erasure_keys"


async def org_key(store: Store, org: str, session: AsyncClientSession) -> bytes:
    """The org's pseudonym key, created (inside the caller's transaction) when it has none."""
    keys = store.db[KEYS_COLLECTION]
    await keys.update_one(
        {"_id": org},
        {"$setOnInsert": {"key": Binary(secrets.token_bytes(KEY_BYTES))}},
        upsert=True,
        session=session,
    )
    doc = await keys.find_one({"_id": org}, session=session)
    assert doc is not None  # written just above, in this transaction
    return bytes(doc["key"])


def pseudonym(key: bytes, value: str) -> str:
    """The one-way replacement of ``value`` (an identifier key ``TYPE:value``, or an id)."""
    return PREFIX + hmac.new(key, value.encode("utf-8"), hashlib.sha256).hexdigest()
