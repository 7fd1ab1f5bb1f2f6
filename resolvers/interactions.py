"""recordInteraction: store the conversation and resolve its identifiers to one contact.

Resolution, in the contract's words:
1. identifiers (plus the phones and emails in ``provided``) in priority order
   EXTERNAL_ID, EMAIL, PHONE, social, COOKIE; the first one that is claimed decides the
   contact (the canonical contact of its claimant);
2. none claimed: a contact is auto-created (IDENTIFIED with PII, else EPHEMERAL);
3. every unclaimed identifier of the interaction is then claimed by that contact.

Races are decided by the unique claim index, never by locks: an auto-created contact only
becomes real once it has won the claim on the interaction's top identifier; a loser deletes
its draft and resolves again, so concurrent interactions with one new identifier end with
one contact.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, cast

from pymongo.asynchronous.client_session import AsyncClientSession
from pymongo.errors import DuplicateKeyError

from resolvers import (
    claims,
    conversation_counts,
    identity_settings,
    liveness,
    web_stitching,
)
from resolvers import interaction_writes as writes
from resolvers.clock import now
from resolvers.contact_fields import (
    EMAIL_FIELDS,
    PHONE_FIELDS,
    SOCIAL_FIELDS,
    ContactType,
    clean_input,
    has_pii,
)
from resolvers.contacts import get_canonical, new_contact_doc, new_id
from resolvers.conversations import (
    UNRESOLVED_CHANNELS,
    Channel,
    Direction,
    check_conversation_id,
)
from resolvers.documents import ContactDoc, ContactFields, ConversationDoc, SeenIdentifierDoc
from resolvers.errors import BadUserInput, Conflict
from resolvers.identifiers import (
    MAX_STRING,
    IdentifierType,
    key,
    normalize_value,
    priority_of,
    split_key,
)
from resolvers.identity_settings import IdentitySettings
from resolvers.principal import Principal
from resolvers.store import Store, aggregate_rows

MAX_IDENTIFIERS = 20
MAX_RESOLVE_ATTEMPTS = 10
DETAIL_FIELDS = ("queue", "agent", "wrapUpCode", "status", "notes")


@dataclass(frozen=True)
class Interaction:
    """A validated, normalised interaction."""

    conversation_id: str
    channel: Channel
    direction: Direction
    started_at: datetime
    ended_at: datetime | None
    seen: list[SeenIdentifierDoc]  # identifiers as seen: {type, value}, normalised where possible
    keys: list[str]  # usable identifier keys, priority order
    provided: ContactFields
    details: dict[str, str | None]


@dataclass
class Resolution:
    conversation: ConversationDoc
    contact: ContactDoc | None
    created: bool
    keys: list[str] = field(default_factory=list)
    curated_only: bool = False
    evidence_changed: bool = False  # created or stitched: match pairs need a refresh
    identity: IdentitySettings | None = None  # the org's settings as this recording read them


def parse_interaction(raw: Mapping[str, Any], region: str, retention_days: int = 60) -> Interaction:
    """Validate everything before anything is written: BAD_USER_INPUT otherwise."""
    conversation_id = check_conversation_id(raw["conversationId"])
    channel = Channel(raw["channel"])
    direction = Direction(raw.get("direction") or Direction.INBOUND)
    started_at: datetime = raw["startedAt"]
    ended_at: datetime | None = raw.get("endedAt")
    if ended_at is not None and ended_at < started_at:
        raise BadUserInput("endedAt is before startedAt")
    try:  # its expiry (and its contact's) must be a date
        started_at + timedelta(days=retention_days)
    except OverflowError:
        raise BadUserInput("startedAt is too far in the future") from None
    identifiers = raw.get("identifiers") or []
    if len(identifiers) > MAX_IDENTIFIERS:
        raise BadUserInput(f"at most {MAX_IDENTIFIERS} identifiers")
    details = _details(raw)
    provided = clean_input(raw.get("provided") or {}, region)
    seen, keys = seen_identifiers(identifiers, channel, region)
    keys += provided_keys(provided, region)
    return Interaction(
        conversation_id=conversation_id,
        channel=channel,
        direction=direction,
        started_at=started_at,
        ended_at=ended_at,
        seen=seen,
        keys=sorted(dict.fromkeys(keys), key=priority_of),
        provided={k: v for k, v in provided.items() if v is not None},
        details=details,
    )


def _details(raw: Mapping[str, Any]) -> dict[str, str | None]:
    details: dict[str, str | None] = {}
    for name in DETAIL_FIELDS:
        value = raw.get(name)
        if value is not None and len(value) > MAX_STRING:
            raise BadUserInput(f"{name} is longer than {MAX_STRING} characters")
        details[name] = value
    return details


def seen_identifiers(
    identifiers: list[Mapping[str, Any]], channel: Channel, region: str
) -> tuple[list[SeenIdentifierDoc], list[str]]:
    """The identifiers as seen (normalised where possible) and the usable keys among them
    (also upsertContact's ``match``)."""
    seen: list[SeenIdentifierDoc] = []
    keys: list[str] = []
    for item in identifiers:
        kind = IdentifierType(item["type"])
        value = item["value"]
        if not isinstance(value, str) or len(value) > MAX_STRING:
            raise BadUserInput(f"identifier values are at most {MAX_STRING} characters")
        if channel is Channel.WHATSAPP and kind is IdentifierType.PHONE:
            kind = IdentifierType.WHATSAPP  # never looked up as a phone
        normalised = normalize_value(kind, value, region)
        seen.append({"type": str(kind), "value": normalised or value})
        if normalised is not None:
            keys.append(key(kind, normalised))
    return seen, keys


def provided_keys(provided: ContactFields, region: str) -> list[str]:
    """The keys of the phones and emails the interaction provides."""
    keys: list[str] = []
    for field_name in (*EMAIL_FIELDS, *PHONE_FIELDS):
        value = provided.get(field_name)
        if not value:
            continue
        kind = IdentifierType.EMAIL if field_name in EMAIL_FIELDS else IdentifierType.PHONE
        normalised = normalize_value(kind, value, region)
        if normalised is not None:
            keys.append(key(kind, normalised))
    return keys


async def record_interaction(
    store: Store, principal: Principal, raw: Mapping[str, Any]
) -> Resolution:
    interaction = parse_interaction(raw, store.config.default_region, store.config.retention_days)
    org = principal.org
    # blocked values are no identifiers at all (resolvers/blocked_identifiers.py); the org's
    # identity settings, read once, also tell what the write triggers after (auto merging)
    identity = await identity_settings.get_settings(store, org)
    interaction = dataclasses.replace(interaction, keys=identity.block_list.keep(interaction.keys))
    existing = await store.conversations.find_one({"org": org, "cid": interaction.conversation_id})
    linked_id = existing.get("externalContactId") if existing else None

    contact: ContactDoc | None = None
    created = False
    taken: set[str] | None = None  # keys known to be claimed already (saves a read)
    if interaction.channel in UNRESOLVED_CHANNELS:
        pass
    elif linked_id is not None:
        contact = await get_canonical(store, org, linked_id)
    else:
        contact, created, taken = await _resolve(store, principal, interaction)
    stitched: list[str] = []
    try:
        if contact is not None and interaction.channel not in UNRESOLVED_CHANNELS:
            stitched = await _stitch(store, principal, interaction.keys, contact, taken)
            contact = await _renew_expiry(store, org, contact, interaction.started_at)
            if interaction.channel is Channel.WEB_MESSAGING:  # a form fill adopts the cookie
                await web_stitching.after_form_fill(
                    store, org, principal.sub, interaction.keys, interaction.provided, contact
                )
        conversation = await _store_conversation(
            store, org, interaction, contact["_id"] if contact is not None else None, existing
        )
    except BaseException:
        await writes.undo(store, org, principal.sub, contact, created=created, stitched=stitched)
        raise
    return Resolution(
        conversation=conversation,
        contact=contact,
        created=created,
        keys=interaction.keys,
        curated_only=interaction.channel in UNRESOLVED_CHANNELS,
        evidence_changed=created or bool(stitched),
        identity=identity,
    )


async def resolve_and_stitch(
    store: Store, principal: Principal, interaction: Interaction
) -> tuple[ContactDoc, bool, list[str]]:
    """recordInteraction's resolution for identifiers without a conversation: resolve (or
    auto-create), stitch the unclaimed identifiers, renew the expiry. The resolved canonical
    contact, whether this call created it and the keys it claimed (for :func:`undo` and the
    batch's IDENTIFIER_CLAIMED changes; a new contact's first claim included).
    recordWebEvents resolves cookies with it."""
    # recordWebEvents records these changes in its batch's transaction: none here, but for
    # a value handed to its lister (nothing undoes that: it records its change itself)
    quiet = _without_feed(store)
    contact, created, taken = await _resolve(quiet, principal, interaction, handing=store)
    if contact is None:  # only when resolution kept losing races
        raise Conflict("the identifiers are changing concurrently; try again")
    stitched: list[str] = []
    try:
        stitched = await _stitch(quiet, principal, interaction.keys, contact, taken)
        contact = await _renew_expiry(quiet, principal.org, contact, interaction.started_at)
    except BaseException:
        await undo(store, principal, contact, created=created, stitched=stitched)
        raise
    if created:  # the new contact's first claim, made with it, is one of its claims too
        stitched = [*sorted(taken or ()), *stitched]
    return contact, created, stitched


async def claimed_holders(
    store: Store, org: str, keys: list[str], *, session: AsyncClientSession | None = None
) -> tuple[dict[str, ContactDoc], set[str]]:
    """The live holder of each claimed key (possibly an ancestor: the caller takes its
    canonical) and the keys that are claimed, in one command. recordWebEvents resolves every
    cookie of a batch with it."""
    if not keys:
        return {}, set()
    moment = now()
    # the claims and their holders in one command
    pipeline: list[dict[str, Any]] = [
        {"$match": {"org": org, "key": {"$in": keys}}},
        {"$project": {"key": 1, "contactId": 1, "expiresAt": 1}},
        {
            "$lookup": {
                "from": "contacts",
                "localField": "contactId",
                "foreignField": "_id",
                "as": "h",
            }
        },
    ]
    found = [
        d
        for d in await aggregate_rows(store.identifiers, pipeline, session=session)
        if not liveness.is_expired(d, moment)
    ]
    taken = {d["key"] for d in found}
    holders = {
        h["_id"]: h
        for d in found
        for h in d["h"]
        if h.get("org") == org and not liveness.is_expired(h, moment)
    }
    by_key = {d["key"]: holders[d["contactId"]] for d in found if d["contactId"] in holders}
    return by_key, taken


async def claimed_contact(
    store: Store, org: str, keys: list[str], *, session: AsyncClientSession | None = None
) -> tuple[ContactDoc | None, set[str]]:
    """The canonical contact of the first claimed key (priority order), if any, and the
    keys that are claimed (also upsertContact's resolution: resolvers/upsert.py)."""
    by_key, taken = await claimed_holders(store, org, keys, session=session)
    for identifier_key in keys:
        holder = by_key.get(identifier_key)
        if holder is None:
            continue
        if holder["readOnly"]:
            return await get_canonical(store, org, holder["canonicalId"], session=session), taken
        return holder, taken
    return None, taken


async def _resolve(
    store: Store, principal: Principal, interaction: Interaction, *, handing: Store | None = None
) -> tuple[ContactDoc | None, bool, set[str] | None]:
    """The resolved contact, whether this call created it, and the keys known claimed.
    ``handing``: the store that hands unclaimed values to their listers (``store``)."""
    keys, org = interaction.keys, principal.org
    for _ in range(MAX_RESOLVE_ATTEMPTS):
        holder, taken = await claimed_contact(store, org, keys)
        if holder is not None:
            return holder, False, taken
        if keys and await _hand_listed_keys_to_listers(handing or store, principal, keys):
            continue
        draft = _auto_contact(store, org, interaction)
        first_key = keys[0] if keys else None
        if await writes.create_auto_contact(store, org, principal.sub, draft, first_key):
            return draft, True, set(keys[:1])
    raise Conflict("the interaction's identifiers are changing concurrently; try again")


async def _hand_listed_keys_to_listers(store: Store, principal: Principal, keys: list[str]) -> bool:
    """A value no one claims but a live contact lists (its claim expired or was released
    without a taker at the time) goes to the oldest lister first. True when anything moved."""
    moment, org = now(), principal.org
    listers = [
        d
        for d in await store.contacts.find(
            {"org": org, "keys": {"$in": keys}}, {"keys": 1, "readOnly": 1, "expiresAt": 1}
        ).to_list()
        if liveness.is_live(d, moment)
    ]
    if not listers:
        return False
    listed = [k for k in keys if any(k in doc["keys"] for doc in listers)]
    await writes.reclaim(store, org, principal.sub, listed)
    return True


def _auto_contact(store: Store, org: str, interaction: Interaction) -> ContactDoc:
    """IDENTIFIED with the PII and provided data, or EPHEMERAL; identifier values fill the
    free matching fields (first phone → cellPhone, first email → personalEmail, …)."""
    fields: ContactFields = dict(interaction.provided)
    external_ids = list(fields.get("externalIds") or [])
    social_by_type = {kind: name for name, kind in SOCIAL_FIELDS.items()}
    for identifier_key in interaction.keys:
        kind, value = split_key(identifier_key)
        if kind is IdentifierType.PHONE:
            _fill_free(fields, PHONE_FIELDS, value)
        elif kind is IdentifierType.EMAIL:
            _fill_free(fields, EMAIL_FIELDS, value)
        elif kind in social_by_type:
            fields.setdefault(social_by_type[kind], value)
        elif kind is IdentifierType.EXTERNAL_ID:
            source, _, ident = value.partition(":")
            if len(external_ids) < 10 and {"source": source, "value": ident} not in external_ids:
                external_ids.append({"source": source, "value": ident})
    if external_ids:
        fields["externalIds"] = external_ids
    kind_of_contact = ContactType.IDENTIFIED if has_pii(fields) else ContactType.EPHEMERAL
    expires_at = interaction.started_at + timedelta(days=store.config.retention_days)
    doc = new_contact_doc(store, org, fields, kind_of_contact, expires_at=expires_at)
    doc["lastSeenAt"] = interaction.started_at
    return doc


def _fill_free(fields: ContactFields, slots: tuple[str, ...], value: str) -> None:
    if any(fields.get(slot) == value for slot in slots):
        return
    for slot in slots:
        if not fields.get(slot):
            fields[slot] = value
            return


async def _stitch(
    store: Store, principal: Principal, keys: list[str], contact: ContactDoc, taken: set[str] | None
) -> list[str]:
    """Every identifier of the interaction that no one claims is claimed by the contact.

    ``taken``: the keys already known to be claimed (read now when None). Returns the keys
    this call claimed (for undoing them if the recording fails)."""
    if not keys:
        return []
    org = principal.org
    if taken is None:
        moment = now()
        held = await store.identifiers.find(
            {"org": org, "key": {"$in": keys}}, {"key": 1, "expiresAt": 1}
        ).to_list()
        taken = {d["key"] for d in held if not liveness.is_expired(d, moment)}
    free = [k for k in keys if k not in taken]
    if not free:
        return []
    return await writes.stitch(store, org, principal.sub, contact, free)


async def undo(
    store: Store,
    principal: Principal,
    contact: ContactDoc | None,
    *,
    created: bool,
    stitched: list[str],
) -> None:
    """recordWebEvents undoes its resolutions the same way when its write fails (its batch
    recorded no change of them: nor does the undoing)."""
    quiet = _without_feed(store)
    await writes.undo(
        quiet, principal.org, principal.sub, contact, created=created, stitched=stitched
    )


def _without_feed(store: Store) -> Store:
    """The store whose writes record no change (recordWebEvents records its own)."""
    return Store(store.db, dataclasses.replace(store.config, change_feed=False))


async def _renew_expiry(
    store: Store, org: str, contact: ContactDoc, started_at: datetime
) -> ContactDoc:
    """Auto-created contacts live until their latest interaction + SCV_RETENTION_DAYS."""
    if contact["type"] == ContactType.CURATED or contact.get("mergeSetId"):
        return contact
    expires_at = started_at + timedelta(days=store.config.retention_days)
    current = contact.get("expiresAt")
    if current is not None and current >= expires_at:
        return contact

    # Only the contact as read: a promotion (CURATED) or merge (readOnly) meanwhile changes
    # modifiedAt or readOnly, and members of a merge set never expire. update_one on
    # org_id_state's fields, not find_one_and_update (~16x slower on the embedded server).
    # The contact and its claims in one transaction: a claim must expire with its holder,
    # and a deadline between the two writes left them apart (make load: 16 violations).
    async def renew(session: AsyncClientSession) -> bool:
        renewed = await store.contacts.update_one(
            {
                "_id": contact["_id"],
                "org": org,
                "readOnly": False,
                "modifiedAt": contact["modifiedAt"],
            },
            {"$max": {"expiresAt": expires_at, "lastSeenAt": started_at}},
            session=session,
        )
        if renewed.matched_count == 0:
            return False
        await store.identifiers.update_many(
            {"org": org, "contactId": contact["_id"]},
            {"$max": {"expiresAt": expires_at}},
            session=session,
        )
        return True

    if not await store.in_transaction(renew):
        return contact
    last_seen = contact.get("lastSeenAt")
    return {
        **contact,
        "expiresAt": expires_at,
        "lastSeenAt": started_at if last_seen is None else max(last_seen, started_at),
    }


async def _store_conversation(
    store: Store,
    org: str,
    interaction: Interaction,
    contact_id: str | None,
    existing: ConversationDoc | None,
) -> ConversationDoc:
    """Insert or update by (org, conversationId); an existing link is kept.

    ``update_one`` with an upsert, not ``find_one_and_update`` (~16x slower on the embedded
    server): the stored document is the one read before (``existing``) with the new details,
    or the inserted one."""
    moment = now()
    details = _conversation_details(store, interaction, moment)  # the $set of the upsert
    where = {"org": org, "cid": interaction.conversation_id}
    for _ in range(3):
        inserted = {"_id": new_id(), "createdAt": moment, "externalContactId": contact_id}
        try:
            result = await store.conversations.update_one(
                where, {"$set": details, "$setOnInsert": inserted}, upsert=True
            )
        except DuplicateKeyError:
            existing = None  # a concurrent first recording of the same id: update it instead
            continue
        if result.upserted_id is not None:
            started, channel = details["startedAt"], details["channel"]
            await conversation_counts.record(store, org, [(started, channel, 1)])
            # the stored document: exactly these keys (a ConversationDoc by construction)
            return cast(ConversationDoc, {**where, **details, **inserted})
        doc = await _updated_conversation(store, where, details, existing)
        if doc is None:  # recorded concurrently after this call's first read, then gone
            existing = None
            continue
        return await _link_if_unlinked(store, where, doc, contact_id)
    raise Conflict("the conversation is being recorded concurrently; try again")


def _conversation_details(
    store: Store, interaction: Interaction, moment: datetime
) -> dict[str, Any]:
    """What a recording sets on its conversation, inserted or updated."""
    duration = (
        (interaction.ended_at - interaction.started_at).total_seconds()
        if interaction.ended_at is not None
        else None
    )
    return {
        "channel": str(interaction.channel),
        "direction": str(interaction.direction),
        "startedAt": interaction.started_at,
        "endedAt": interaction.ended_at,
        "durationSeconds": duration,
        "identifiers": interaction.seen,
        "expiresAt": interaction.started_at + timedelta(days=store.config.retention_days),
        "modifiedAt": moment,
        **interaction.details,
    }


async def _updated_conversation(
    store: Store,
    where: dict[str, Any],
    details: dict[str, Any],
    existing: ConversationDoc | None,
) -> ConversationDoc | None:
    """The updated conversation as stored (read again when this call had not read it: None
    when it is gone), its count buckets moved when its start or channel changed."""
    started, channel = details["startedAt"], details["channel"]
    if existing is None:  # recorded concurrently after this call's first read
        existing = await store.conversations.find_one(where)
        if existing is None:
            return None
    elif (existing["startedAt"], existing["channel"]) != (started, channel):
        moved = [(existing["startedAt"], existing["channel"], -1), (started, channel, 1)]
        await conversation_counts.record(store, where["org"], moved)
    return cast(ConversationDoc, {**existing, **details})


async def _link_if_unlinked(
    store: Store, where: dict[str, Any], doc: ConversationDoc, contact_id: str | None
) -> ConversationDoc:
    """An unlinked conversation is linked to the resolved contact (a link is kept)."""
    if doc.get("externalContactId") is not None or contact_id is None:
        return doc
    linked = await store.conversations.update_one(
        {**where, "externalContactId": None}, {"$set": {"externalContactId": contact_id}}
    )
    if linked.matched_count == 1:
        doc["externalContactId"] = contact_id
        return doc
    return await store.conversations.find_one(where) or doc  # linked concurrently: the winner


async def other_matches(
    store: Store, org: str, keys: list[str], exclude: str | None, curated_only: bool
) -> list[ContactDoc]:
    """Other live canonical contacts that list or claim one of the keys, oldest first."""
    if not keys:
        return []
    moment = now()
    claimed = await store.identifiers.find(
        {"org": org, "key": {"$in": keys}}, {"contactId": 1, "expiresAt": 1}
    ).to_list()
    holder_ids = list({c["contactId"] for c in claimed if not liveness.is_expired(c, moment)})
    # two index-only queries (listers, holders) rather than one $or the planner cannot serve
    found = {
        d["_id"]: d
        for d in await store.contacts.find({"org": org, "keys": {"$in": keys}}).to_list()
    }
    if holder_ids:
        holders = await store.contacts.find({"org": org, "_id": {"$in": holder_ids}}).to_list()
        found.update((d["_id"], d) for d in holders)
    matches = [
        d
        for d in found.values()
        if d["_id"] != exclude
        and liveness.is_live(d, moment)
        and (not curated_only or d["type"] == ContactType.CURATED)
    ]
    return claims.oldest_first(matches)[:100]
