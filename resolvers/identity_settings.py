"""An org's identity settings: automatic merging and its own blocked identifier values.

One document per org in ``identity_settings`` (``_id`` = the org), read with one command:
``autoMerge`` (default off), ``autoMergeMinScore`` (default 0.95, allowed 0.9 to 1) and
``blocked`` (normalised ``TYPE:value`` keys, at most 1,000; see
:mod:`resolvers.blocked_identifiers`). An org that never changed its settings has no
document and gets the defaults.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from pymongo.asynchronous.client_session import AsyncClientSession

from resolvers import claims
from resolvers.blocked_identifiers import (
    MAX_BLOCKED,
    BlockList,
    normalise_blocked,
    release_claims,
    settings_collection,
)
from resolvers.changes import ChangeKind, NewChange, record_changes
from resolvers.clock import now
from resolvers.errors import BadUserInput
from resolvers.principal import Principal
from resolvers.store import Store

DEFAULT_AUTO_MERGE_MIN_SCORE = 0.95
MIN_AUTO_MERGE_SCORE = 0.9


@dataclass(frozen=True)
class IdentitySettings:
    auto_merge: bool = False
    auto_merge_min_score: float = DEFAULT_AUTO_MERGE_MIN_SCORE
    blocked: tuple[str, ...] = ()  # the org's own keys, in the order they were added

    @property
    def block_list(self) -> BlockList:
        return BlockList(frozenset(self.blocked))


def _from_doc(doc: Mapping[str, Any] | None) -> IdentitySettings:
    if doc is None:
        return IdentitySettings()
    return IdentitySettings(
        auto_merge=bool(doc.get("autoMerge", False)),
        auto_merge_min_score=float(doc.get("autoMergeMinScore", DEFAULT_AUTO_MERGE_MIN_SCORE)),
        blocked=tuple(doc.get("blocked") or ()),
    )


async def get_settings(
    store: Store, org: str, *, session: AsyncClientSession | None = None
) -> IdentitySettings:
    doc = await settings_collection(store).find_one({"_id": org}, session=session)
    return _from_doc(doc)


@dataclass(frozen=True)
class SettingsPatch:
    """A validated ``IdentitySettingsInput``: None = unchanged."""

    auto_merge: bool | None
    auto_merge_min_score: float | None
    blocked: list[str] | None


def parse_patch(raw: Mapping[str, Any], region: str) -> SettingsPatch:
    """BAD_USER_INPUT for a score outside 0.9 to 1, more than 1,000 values or one that does not
    normalise; nothing is written before all of it is valid."""
    score = raw.get("autoMergeMinScore")
    if score is not None and not MIN_AUTO_MERGE_SCORE <= float(score) <= 1.0:
        raise BadUserInput("autoMergeMinScore must be between 0.9 and 1")
    values = raw.get("blockedIdentifiers")
    blocked: list[str] | None = None
    if values is not None:
        if len(values) > MAX_BLOCKED:
            raise BadUserInput(f"at most {MAX_BLOCKED} blocked identifier values")
        keys = [normalise_blocked(item["type"], item["value"], region) for item in values]
        blocked = list(dict.fromkeys(keys))
    auto_merge = raw.get("autoMerge")
    return SettingsPatch(
        auto_merge=None if auto_merge is None else bool(auto_merge),
        auto_merge_min_score=None if score is None else float(score),
        blocked=blocked,
    )


async def update_settings(
    store: Store, principal: Principal, raw: Mapping[str, Any]
) -> IdentitySettings:
    """Apply the patch in one transaction: newly blocked values lose their claims, unblocked
    ones go to the oldest live contact that lists them."""
    patch = parse_patch(raw, store.config.default_region)
    org = principal.org

    async def work(session: AsyncClientSession) -> IdentitySettings:
        before = await get_settings(store, org, session=session)
        updates: dict[str, Any] = {"org": org, "modifiedAt": now(), "modifiedBy": principal.sub}
        if patch.auto_merge is not None:
            updates["autoMerge"] = patch.auto_merge
        if patch.auto_merge_min_score is not None:
            updates["autoMergeMinScore"] = patch.auto_merge_min_score
        if patch.blocked is not None:
            updates["blocked"] = patch.blocked
        await settings_collection(store).update_one(
            {"_id": org}, {"$set": updates}, upsert=True, session=session
        )
        if patch.blocked is not None:
            added = [k for k in patch.blocked if k not in before.blocked]
            removed = [k for k in before.blocked if k not in patch.blocked]
            released = await release_claims(store, org, added, session=session)
            await claims.reclaim(store, org, removed, session=session)
            await record_changes(
                store,
                session,
                org=org,
                by=principal.sub,
                changes=[
                    NewChange(ChangeKind.IDENTIFIER_RELEASED, holder, identifier=key)
                    for key, holder in released
                ],
            )
        return await get_settings(store, org, session=session)

    return await store.in_transaction(work)
