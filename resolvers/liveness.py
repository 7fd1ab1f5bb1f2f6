"""When a stored contact or claim counts: expiry and ancestry, at a given moment.

Auto-created contacts and their claims carry ``expiresAt`` (a TTL index sweeps them later;
until then they are read as gone). A contact that is an ancestor in a merge set
(``readOnly``) is not live either: it can hold no claim.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from resolvers.clock import now


def is_expired(doc: Mapping[str, Any], moment: datetime | None = None) -> bool:
    """``doc``: a contact, a claim, or a projection of one holding ``expiresAt``."""
    expires = doc.get("expiresAt")
    return expires is not None and expires <= (moment or now())


def is_live(doc: Mapping[str, Any], moment: datetime | None = None) -> bool:
    """Neither expired nor an ancestor: a contact that may hold claims."""
    return not doc.get("readOnly", False) and not is_expired(doc, moment)
