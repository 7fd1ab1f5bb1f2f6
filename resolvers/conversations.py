"""Conversations: storage, reading, linking to exactly the contact given, unlinking."""

from __future__ import annotations

from enum import StrEnum

from pymongo.asynchronous.client_session import AsyncClientSession

from resolvers import liveness
from resolvers.changes import ChangeKind, NewChange, record_changes
from resolvers.contacts import get_exact
from resolvers.documents import ConversationDoc
from resolvers.errors import BadUserInput, NotFound
from resolvers.principal import Principal
from resolvers.store import Store

MAX_CONVERSATION_ID = 200


class Channel(StrEnum):
    VOICE = "VOICE"
    SMS = "SMS"
    EMAIL = "EMAIL"
    WEB_MESSAGING = "WEB_MESSAGING"
    WEB_CHAT = "WEB_CHAT"
    FACEBOOK = "FACEBOOK"
    TWITTER = "TWITTER"
    WHATSAPP = "WHATSAPP"
    LINE = "LINE"
    INSTAGRAM = "INSTAGRAM"
    OPEN_MESSAGING = "OPEN_MESSAGING"
    CALLBACK = "CALLBACK"
    CAMPAIGN = "CAMPAIGN"


class Direction(StrEnum):
    INBOUND = "INBOUND"
    OUTBOUND = "OUTBOUND"


# Channels whose interactions are stored but never resolved to a contact automatically.
UNRESOLVED_CHANNELS = frozenset({Channel.OPEN_MESSAGING, Channel.CALLBACK, Channel.CAMPAIGN})


def check_conversation_id(conversation_id: str) -> str:
    text = str(conversation_id)
    if not text.strip() or len(text) > MAX_CONVERSATION_ID:
        raise BadUserInput(f"conversationId must be 1 to {MAX_CONVERSATION_ID} characters")
    if any(ord(ch) < 32 for ch in text):
        raise BadUserInput("conversationId must not contain control characters")
    return text


async def get_conversation(
    store: Store,
    org: str,
    conversation_id: str,
    *,
    session: AsyncClientSession | None = None,
) -> ConversationDoc | None:
    """The conversation with this id, unless unknown or expired."""
    if not conversation_id or len(conversation_id) > MAX_CONVERSATION_ID:
        return None
    doc = await store.conversations.find_one({"org": org, "cid": conversation_id}, session=session)
    if doc is None or liveness.is_expired(doc):
        return None
    return doc


async def link_conversation(
    store: Store, principal: Principal, conversation_id: str, contact_id: str
) -> ConversationDoc:
    """Link to exactly the contact given: an ancestor stays an ancestor (no redirect)."""
    return await _set_link(store, principal, conversation_id, contact_id)


async def unlink_conversation(
    store: Store, principal: Principal, conversation_id: str
) -> ConversationDoc:
    return await _set_link(store, principal, conversation_id, None)


async def _set_link(
    store: Store, principal: Principal, conversation_id: str, contact_id: str | None
) -> ConversationDoc:
    """One transaction: the conversation (NOT_FOUND when unknown or expired), the contact
    given (likewise), the link and its change (CONVERSATION_LINKED, or _UNLINKED from the
    contact it had; none when nothing changes). Both are read in the transaction only: a
    read of the conversation before it cost a command more (unlink 6 commands → 5).
    ``update_one`` on ``{org, cid}`` (the unique index), not ``find_one_and_update``: the
    embedded server serves it ~16x faster."""
    org = principal.org
    where = {"org": org, "cid": conversation_id}

    async def work(session: AsyncClientSession) -> ConversationDoc:
        current = await get_conversation(store, org, conversation_id, session=session)
        if current is None:
            raise NotFound(f"no conversation with id {conversation_id}")
        linked = None
        if contact_id is not None:
            contact = await get_exact(store, org, contact_id, session=session)
            if contact is None:
                raise NotFound(f"no contact with id {contact_id}")
            linked = contact["_id"]
        before = current.get("externalContactId")
        await store.conversations.update_one(
            where, {"$set": {"externalContactId": linked}}, session=session
        )
        if before != linked:
            await record_changes(
                store,
                session,
                org=org,
                by=principal.sub,
                changes=_link_changes(conversation_id, before, linked),
            )
        return {**current, "externalContactId": linked}

    return await store.in_transaction(work)


def _link_changes(cid: str, before: str | None, after: str | None) -> list[NewChange]:
    """A relink is an unlink from the contact it had and a link to the new one."""
    found: list[NewChange] = []
    if before is not None:
        found.append(NewChange(ChangeKind.CONVERSATION_UNLINKED, before, conversation_id=cid))
    if after is not None:
        found.append(NewChange(ChangeKind.CONVERSATION_LINKED, after, conversation_id=cid))
    return found
