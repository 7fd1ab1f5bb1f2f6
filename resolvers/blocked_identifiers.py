"""Blocked identifier values: the built-in list and each org's own (CONTRACT section 6).

A blocked value carries no identity: it is never claimed, never resolves an interaction,
never counts as match evidence and never appears in ``otherMatches``; an interaction whose
only identifiers are blocked is treated as one with none.

Built in (case-insensitive, trimmed): the values ``anonymous``, ``unknown``, ``null``,
``undefined``, ``none``, ``n/a``, ``test``, ``0``, ``-1`` for every type (an
``EXTERNAL_ID``'s value is ``source:value`` as a whole: ``crm:0`` is a real id); emails
whose local part is ``noreply``, ``no-reply``, ``donotreply``, ``do-not-reply``,
``anonymous``, ``unknown``, ``none``, ``null`` or ``test``; phones (and WhatsApp numbers) whose national number is one repeated
digit or ``1234567890``.

The org's own list lives in the ``identity_settings`` collection, one document per org
(``_id`` = the org, ``blocked``: normalised ``TYPE:value`` keys, at most
:data:`MAX_BLOCKED`), next to the automatic-merge settings
(:mod:`resolvers.identity_settings`).

The API (stable; other modules call only these):

- :func:`is_builtin_blocked` ``(key) -> bool``: pure, no database.
- :func:`load_block_list` ``(store, org, *, session=None) -> BlockList``: one read of the
  org's settings document; ``BlockList.is_blocked(key)`` and ``BlockList.keep(keys)``.
- :func:`usable_keys` ``(store, org, keys, *, session=None) -> list[str]``: ``keys`` without
  the blocked ones, in their order. Costs no command when the built-in list already
  removes every key (or ``keys`` is empty), else one read.
- :func:`add_blocked` ``(store, org, keys, *, session, enforce_limit=True) -> list[str]``:
  adds normalised keys to the org's list *inside the caller's transaction* and releases
  their claims (deletes the ``identifiers`` documents of those keys); returns the keys
  newly added. Use it from a write that runs in ``Store.in_transaction``::

      async def work(session):
          ...  # the caller's own writes
          await blocked_identifiers.add_blocked(store, org, keys, session=session)

      await store.in_transaction(work)

  With ``enforce_limit`` (the default) a list that would exceed :data:`MAX_BLOCKED` raises
  ``BadUserInput`` (and the transaction aborts); erasure with ``suppress`` may pass
  ``enforce_limit=False`` so that a suppression is never refused.
- :func:`normalise_blocked` ``(type, value, region) -> str``: the key an org may block;
  ``BadUserInput`` when the value does not normalise (or is empty).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import phonenumbers
from pymongo.asynchronous.client_session import AsyncClientSession
from pymongo.asynchronous.collection import AsyncCollection

from resolvers.errors import BadUserInput
from resolvers.identifiers import MAX_STRING, IdentifierType, key, normalize_value, split_key
from resolvers.store import Store

MAX_BLOCKED = 1000
SETTINGS_COLLECTION = "identity_settings"

BUILTIN_VALUES = frozenset(
    {"anonymous", "unknown", "null", "undefined", "none", "n/a", "test", "0", "-1"}
)
BUILTIN_EMAIL_LOCAL_PARTS = frozenset(
    {
        "noreply",
        "no-reply",
        "donotreply",
        "do-not-reply",
        "anonymous",
        "unknown",
        "none",
        "null",
        "test",
    }
)
_PHONE_TYPES = (IdentifierType.PHONE, IdentifierType.WHATSAPP)


def settings_collection(store: Store) -> AsyncCollection[dict[str, Any]]:
    """The ``identity_settings`` collection: one document per org, ``_id`` = the org."""
    return store.db[SETTINGS_COLLECTION]


def is_builtin_blocked(identifier_key: str) -> bool:
    """Whether the built-in list blocks this normalised ``TYPE:value`` key."""
    kind, value = split_key(identifier_key)
    text = value.strip().casefold()
    if text in BUILTIN_VALUES:
        return True
    if kind is IdentifierType.EMAIL:
        local, at, _ = text.rpartition("@")
        return bool(at) and local in BUILTIN_EMAIL_LOCAL_PARTS
    if kind in _PHONE_TYPES:
        return _junk_phone(text)
    return False


def _junk_phone(value: str) -> bool:
    """A national number of one repeated digit, or 1234567890."""
    if not value.startswith("+"):
        return False
    try:
        number = phonenumbers.parse(value, None)
    except phonenumbers.NumberParseException:
        return False
    national = phonenumbers.national_significant_number(number)
    return len(set(national)) == 1 or national == "1234567890"


@dataclass(frozen=True)
class BlockList:
    """The built-in list plus one org's own keys."""

    org_keys: frozenset[str] = field(default_factory=frozenset)

    def is_blocked(self, identifier_key: str) -> bool:
        return identifier_key in self.org_keys or is_builtin_blocked(identifier_key)

    def keep(self, keys: Iterable[str]) -> list[str]:
        """The keys that are not blocked, in their order."""
        return [k for k in keys if not self.is_blocked(k)]


async def load_block_list(
    store: Store, org: str, *, session: AsyncClientSession | None = None
) -> BlockList:
    doc = await settings_collection(store).find_one({"_id": org}, {"blocked": 1}, session=session)
    return BlockList(frozenset(doc.get("blocked") or ()) if doc else frozenset())


async def usable_keys(
    store: Store, org: str, keys: Iterable[str], *, session: AsyncClientSession | None = None
) -> list[str]:
    """``keys`` without blocked values (built-in first: no read when nothing is left)."""
    remaining = [k for k in keys if not is_builtin_blocked(k)]
    if not remaining:
        return remaining
    block_list = await load_block_list(store, org, session=session)
    return block_list.keep(remaining)


def normalise_blocked(kind: IdentifierType | str, value: Any, region: str) -> str:
    """The ``TYPE:value`` key an org blocks; BAD_USER_INPUT when the value does not normalise."""
    identifier_type = IdentifierType(kind)
    if not isinstance(value, str) or len(value) > MAX_STRING:
        raise BadUserInput(f"a blocked value is a string of at most {MAX_STRING} characters")
    normalised = normalize_value(identifier_type, value, region)
    if normalised is None:
        raise BadUserInput(f"the blocked {identifier_type} value {value!r} does not normalise")
    return key(identifier_type, normalised)


async def add_blocked(
    store: Store,
    org: str,
    keys: Iterable[str],
    *,
    session: AsyncClientSession,
    enforce_limit: bool = True,
) -> list[str]:
    """Add ``keys`` (normalised) to the org's list and release their claims, in ``session``'s
    transaction. Returns the keys that were not on the list before."""
    wanted = list(dict.fromkeys(keys))
    current = await load_block_list(store, org, session=session)
    added = [k for k in wanted if k not in current.org_keys]
    if not added:
        return []
    if enforce_limit and len(current.org_keys) + len(added) > MAX_BLOCKED:
        raise BadUserInput(f"an org blocks at most {MAX_BLOCKED} identifier values")
    await settings_collection(store).update_one(
        {"_id": org},
        {"$push": {"blocked": {"$each": added}}, "$setOnInsert": {"org": org}},
        upsert=True,
        session=session,
    )
    await release_claims(store, org, added, session=session)
    return added


async def release_claims(
    store: Store, org: str, keys: list[str], *, session: AsyncClientSession | None
) -> list[tuple[str, str]]:
    """Blocking a claimed value releases it (no one takes it over: it is blocked). Returns
    the released ``(key, holder id)`` pairs (this function records no change: a caller that
    reports releases in the change feed does so itself; erasure must not, its values go)."""
    if not keys:
        return []
    held = await store.identifiers.find(
        {"org": org, "key": {"$in": keys}}, {"key": 1, "contactId": 1}, session=session
    ).to_list()
    if held:
        await store.identifiers.delete_many({"org": org, "key": {"$in": keys}}, session=session)
    return [(h["key"], h["contactId"]) for h in held]
