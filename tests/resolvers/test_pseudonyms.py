"""Keyed one-way pseudonyms: stable within an org, different across orgs, key kept once."""

from __future__ import annotations

from typing import Any

from resolvers.pseudonyms import KEYS_COLLECTION, PREFIX, org_key, pseudonym
from resolvers.store import Store


async def test_a_value_has_one_pseudonym_per_org_and_the_key_is_made_once(store: Store) -> None:
    async def keys(session: Any) -> tuple[bytes, bytes, bytes]:
        return (
            await org_key(store, "acme", session),
            await org_key(store, "acme", session),
            await org_key(store, "other", session),
        )

    acme, again, other = await store.in_transaction(keys)
    assert acme == again and len(acme) == 32 and acme != other
    later = await store.in_transaction(lambda session: org_key(store, "acme", session))
    assert later == acme  # kept across transactions
    assert await store.db[KEYS_COLLECTION].count_documents({}) == 2
    value = "PHONE:+18035550142"
    hidden = pseudonym(acme, value)
    assert hidden == pseudonym(later, value)
    assert hidden != pseudonym(other, value)
    assert hidden.startswith(PREFIX) and "18035550142" not in hidden
    assert pseudonym(acme, "PHONE:+18035550143") != hidden
