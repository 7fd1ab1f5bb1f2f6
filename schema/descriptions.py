"""The schema's documentation: a description for every public type, field, argument and enum
value that does not carry one where it is defined, keyed by schema coordinate
(``Type``, ``Type.field``, ``Type.field(argument:)``, ``Enum.VALUE``).

Descriptions written next to a field (``strawberry.field(description=…)``) stay there; this
catalogue documents the rest in one reviewable place, including the values of the domain's
enums, which live in ``resolvers/`` and so cannot carry Strawberry's ``enum_value``.
:func:`describe` fills them into the executable schema, so introspection, GraphiQL's docs and
``schema.graphql`` all show them. ``tests/schema/test_schema_docs.py`` walks the schema like
graphql-schema-linter and fails on anything undescribed, and on catalogue entries that are
stale or duplicate a description written in the code.
"""

from __future__ import annotations

from typing import Final

from graphql import (
    GraphQLArgument,
    GraphQLEnumType,
    GraphQLEnumValue,
    GraphQLField,
    GraphQLInputField,
    GraphQLInputObjectType,
    GraphQLInterfaceType,
    GraphQLNamedType,
    GraphQLObjectType,
    GraphQLSchema,
)

from schema.web_descriptions import WEB_DESCRIPTIONS

Described = GraphQLNamedType | GraphQLField | GraphQLArgument | GraphQLInputField | GraphQLEnumValue

_NAME: Final = {
    "firstName": "Given name.",
    "middleName": "Middle name(s).",
    "lastName": "Family name.",
    "title": "Job title or form of address.",
}
_PHONES: Final = {
    "workPhone": "Work phone: E.164 when it could be normalised (SCV_DEFAULT_REGION for "
    "national numbers), else exactly as entered. Claims a PHONE identifier.",
    "cellPhone": "Mobile phone, normalised like workPhone. Claims a PHONE identifier.",
    "homePhone": "Home phone, normalised like workPhone. Claims a PHONE identifier.",
    "otherPhone": "Any other phone, normalised like workPhone. Claims a PHONE identifier.",
}
_EMAILS: Final = {
    "workEmail": "Work email, trimmed and lower-cased. Claims an EMAIL identifier.",
    "personalEmail": "Personal email, trimmed and lower-cased. Claims an EMAIL identifier.",
    "otherEmail": "Any other email, trimmed and lower-cased. Claims an EMAIL identifier.",
}
_SOCIAL: Final = {
    "whatsAppId": "WhatsApp id. Claims a WHATSAPP identifier.",
    "facebookId": "Facebook id. Claims a FACEBOOK identifier.",
    "twitterId": "Twitter (X) id. Claims a TWITTER identifier.",
    "lineId": "LINE id. Claims a LINE identifier.",
    "instagramId": "Instagram id. Claims an INSTAGRAM identifier.",
}
_CONTACT_DATA: Final = {
    **_NAME,
    **_PHONES,
    **_EMAILS,
    **_SOCIAL,
    "externalIds": "Ids of this person in other systems; each claims an EXTERNAL_ID "
    "identifier `source:value`.",
    "address": "Postal address.",
    "surveyOptOut": "True when the person asked not to be surveyed.",
}
_ADDRESS: Final = dict(
    line1="First address line.",
    line2="Second address line.",
    city="City or locality.",
    state="State, province or region.",
    postalCode="Postal or ZIP code.",
    countryCode="ISO 3166-1 alpha-2 country code.",
)
_INTERACTION_DETAILS: Final = dict(
    queue="The queue that handled it.",
    agent="The agent who handled it.",
    wrapUpCode="The agent's wrap-up code.",
    status="Free-form status of the conversation.",
    notes="Free-form notes on the conversation.",
)
_CONNECTION: Final = {
    "edges": "The page's edges, in the list's order.",
    "pageInfo": "Where the page is in the list, and the cursors to go on from.",
    "totalCount": "How many items the whole list holds (all pages).",
}
_EDGE: Final = {"cursor": "Opaque cursor of this edge: pass it as `after` to read on."}
_PAGE_ARGS: Final = {
    "after": "The `endCursor` of the previous page; omitted for the first page.",
}
_TIME_ARGS: Final = {
    "since": "Only conversations started at or after this moment.",
    "until": "Only conversations started before this moment.",
    "channels": "Only conversations on these channels.",
}


def _prefixed(prefix: str, entries: dict[str, str]) -> dict[str, str]:
    return {f"{prefix}{key}": text for key, text in entries.items()}


# CONTRACT.md section 7: bulk writes, the scan, upsert and note editing (schema/integrations.py)
_INTEGRATIONS: Final = {
    "Query.scanContacts": "Every live canonical contact of the types, for a full directory "
    "sync: CURATED first, then IDENTIFIED, then EPHEMERAL, each in id order; ancestors and "
    "expired contacts never. A contact modified during a scan appears at most once.",
    "Query.scanContacts(first:)": "Page size, 1 to 200.",
    "Query.scanContacts(after:)": "The endCursor of the previous page (a cursor of this scan).",
    "Query.scanContacts(types:)": "The contact types to walk (default: CURATED only).",
    "Query.scanContacts(modifiedSince:)": "Only contacts modified at or after this instant.",
    "Mutation.bulkCreateContacts": "createContact for each input (1 to 200): each good item "
    "is written, each bad one reports its error and writes nothing.",
    "Mutation.bulkCreateContacts(inputs:)": "The new contacts' fields (CURATED; firstName and "
    "lastName required).",
    "Mutation.bulkUpdateContacts": "updateContact for each item (1 to 200), in order; an "
    "unknown id is that item's NOT_FOUND.",
    "Mutation.bulkUpdateContacts(updates:)": "The contacts (an ancestor's id edits its "
    "canonical) and their fields to change.",
    "Mutation.bulkDeleteContacts": "deleteContact for each id (1 to 200); the result's contact "
    "is the canonical contact deleted; an unknown id is that item's NOT_FOUND.",
    "Mutation.bulkDeleteContacts(ids:)": "Any member's id (an ancestor deletes its whole set).",
    "Mutation.upsertContact": "Updates the canonical contact of the first claimed identifier "
    "of match (an auto-created one is promoted), else creates a CURATED contact; the match "
    "identifiers nobody claims are then claimed by it.",
    "Mutation.upsertContact(match:)": "1 to 25 identifiers, resolved like an interaction's "
    "(EXTERNAL_ID, EMAIL, PHONE, social, COOKIE).",
    "Mutation.upsertContact(input:)": "The fields to write (firstName and lastName required "
    "when the contact is created).",
    "Mutation.upsertContact(rule:)": "How the input meets an existing contact's fields.",
    "Mutation.updateNote": "Replaces a note's text; a note of an ancestor is READ_ONLY.",
    "Mutation.updateNote(id:)": "The note.",
    "Mutation.updateNote(text:)": "The new text, at most 10,000 characters.",
    "Mutation.deleteNote": "Deletes a note; a note of an ancestor is READ_ONLY.",
    "Mutation.deleteNote(id:)": "The note.",
    "BulkResult": "One item's outcome, in input order.",
    "BulkResult.index": "The item's position in the input list (from 0).",
    "BulkResult.contact": "The contact written (deleted, for bulkDeleteContacts); null on error.",
    "BulkResult.error": "Why the item was not written; null when it was.",
    "BulkError": "An item's error.",
    "BulkError.code": "An error code of the contract (NOT_FOUND, BAD_USER_INPUT …).",
    "BulkError.message": "What went wrong, for people.",
    "ContactUpdate": "One contact's edit in bulkUpdateContacts.",
    "ContactUpdate.id": "The contact (an ancestor's id edits its canonical).",
    "ContactUpdate.input": "The fields to change: omitted = unchanged, null = cleared.",
    "UpsertResult": "The contact upsertContact wrote.",
    "UpsertResult.contact": "The contact updated or created.",
    "UpsertResult.created": "True when no identifier of match was claimed and it was created.",
    "UpsertRule": "How upsertContact's input meets an existing contact's fields.",
    "UpsertRule.PREFER_PROVIDED": "Every field the input gives overwrites the contact's.",
    "UpsertRule.PREFER_EXISTING": "The input only fills fields that are empty on the contact.",
}


DESCRIPTIONS: Final[dict[str, str]] = {
    # --- root types --------------------------------------------------------------------
    "Query": "Reading contacts, identifiers, merge sets, journeys and conversations.",
    "Mutation": "Changing contacts, merge sets and conversations.",
    "Subscription": "Changes as they happen, over the graphql-transport-ws WebSocket.",
    "Query.contact(id:)": "A contact id; an ancestor's id returns its canonical contact.",
    "Query.contacts(ids:)": "At most 100 contact ids.",
    "Query.searchContacts(query:)": "Name prefixes (every word), an exact email or a phone.",
    "Query.searchContacts(types:)": "The contact types to search (default: CURATED only).",
    "Query.searchContacts(first:)": "Page size, 1 to 100.",
    "Query.searchContacts(after:)": _PAGE_ARGS["after"],
    "Query.identifier(type:)": "The identifier's type.",
    "Query.identifier(value:)": "The value, normalised before the lookup (E.164 phones, "
    "lower-case emails).",
    "Query.reverseLookup(value:)": "A phone number or an email address.",
    "Query.conversation": "One conversation by id; null when unknown or expired. Needs "
    "externalContacts:conversation:viewAll.",
    "Query.conversation(id:)": "The conversation id given by the integration that recorded it.",
    "Query.mergeSet(contactId:)": "Any member's id, canonical or ancestor.",
    "Query.journey(contactId:)": "Any member's id; the journey is its whole merge set's.",
    **_prefixed("Query.conversations", {f"({k}:)": v for k, v in _TIME_ARGS.items()}),
    "Query.conversations(contactIds:)": "Only conversations of these contacts; each id is "
    "expanded to its whole merge set.",
    "Query.conversations(first:)": "Page size, 1 to 1000.",
    "Query.conversations(after:)": _PAGE_ARGS["after"],
    "Subscription.journeyUpdates(contactId:)": "Any member's id; updates cover its whole "
    "merge set, as it is when each conversation arrives.",
    # --- contacts ------------------------------------------------------------------------
    "Contact": "A person (or an anonymous visitor) as the contact center knows them. A "
    "merge set's members are contacts too: its canonical contact and read-only ancestors.",
    "Contact.id": "The contact's id.",
    "Contact.type": "How the contact came to be, and so whether it expires.",
    **_prefixed("Contact.", _CONTACT_DATA),
    "Contact.createdAt": "When the contact was created.",
    "Contact.modifiedAt": "When its fields last changed.",
    "Contact.expiresAt": "When an auto-created contact expires (SCV_RETENTION_DAYS after its "
    "latest interaction); null for CURATED contacts and every member of a merge set.",
    "Contact.readOnly": "True for an ancestor: a non-canonical member of a merge set, "
    "which changes only through its canonical contact.",
    "ContactType": "How a contact came to be.",
    "ContactType.CURATED": "Created by a person or an integration; never expires; the only "
    "type search and reverse lookup return by default.",
    "ContactType.IDENTIFIED": "Auto-created by an interaction that carried personal data "
    "(phone, email, social or external id); expires.",
    "ContactType.EPHEMERAL": "Auto-created by an interaction with nothing but a cookie, or "
    "no identifier; expires.",
    "ExternalId": "The id of a person in another system.",
    "ExternalId.source": "The system, e.g. `crm`.",
    "ExternalId.value": "The id in that system.",
    "Address": "A postal address.",
    **_prefixed("Address.", _ADDRESS),
    "Note": "A note an agent wrote on a contact.",
    "Note.id": "The note's id.",
    "Note.contactId": "The contact it was written on (a member of the contact's merge set).",
    "Note.text": "The note.",
    "Note.createdAt": "When it was written.",
    "Note.createdBy": "The token subject (`sub`) that wrote it.",
    "ContactConnection": "A page of contacts.",
    **_prefixed("ContactConnection.", _CONNECTION),
    "ContactEdge": "A contact in a page.",
    **_prefixed("ContactEdge.", _EDGE),
    "ContactEdge.node": "The contact.",
    "PageInfo": "Where a page is in its list (Relay's PageInfo).",
    "PageInfo.hasNextPage": "True when more items follow this page.",
    "PageInfo.endCursor": "The cursor of the page's last edge; null for an empty page.",
    # --- identifiers -----------------------------------------------------------------------
    "Identifier": "A normalised value (phone, email, cookie, social or external id) claimed "
    "by exactly one contact of the org.",
    "Identifier.type": "The identifier's type.",
    "Identifier.value": "Normalised: E.164 phone, lower-case email, `source:value` for "
    "EXTERNAL_ID.",
    "Identifier.claimedAt": "When its contact claimed it.",
    "IdentifierType": "The kinds of identifiers.",
    "IdentifierType.PHONE": "A phone number (E.164 when it could be normalised).",
    "IdentifierType.EMAIL": "An email address (lower-cased).",
    "IdentifierType.COOKIE": "A web cookie id.",
    "IdentifierType.WHATSAPP": "A WhatsApp id.",
    "IdentifierType.FACEBOOK": "A Facebook id.",
    "IdentifierType.TWITTER": "A Twitter (X) id.",
    "IdentifierType.LINE": "A LINE id.",
    "IdentifierType.INSTAGRAM": "An Instagram id.",
    "IdentifierType.EXTERNAL_ID": "An id in another system, as `source:value`.",
    "IdentifierValue": "An identifier as an interaction carried it.",
    "IdentifierValue.type": "The identifier's type.",
    "IdentifierValue.value": "The value, normalised where possible.",
    "IdentifierInput": "An identifier an interaction carries.",
    "IdentifierInput.type": "The identifier's type.",
    "IdentifierInput.value": "The value as seen; phones and emails are normalised.",
    # --- merge sets ------------------------------------------------------------------------
    "MergeSet": "Contacts merged into one: a canonical contact (the head) and its ancestors.",
    "MergeSet.id": "The merge set's id.",
    "MergeSet.contactIds": "Every member's id, the canonical contact's included.",
    "MergeSet.size": "How many members the set has.",
    "MergeSet.history": "The set's merges and unmerges, oldest first.",
    "MergeSet.canonical": "The head of the set: the only member that can be edited.",
    "MergeEvent": "A merge or an unmerge.",
    "MergeEvent.kind": "MERGE or UNMERGE.",
    "MergeEvent.at": "When it happened.",
    "MergeEvent.by": "The token subject (`sub`) that did it.",
    "MergeEvent.inputIds": "The canonical contacts the merge took as inputs (for an "
    "UNMERGE: those of the merge it undid, which became canonical again).",
    "MergeEvent.canonicalId": "The canonical contact the merge created (for an UNMERGE: the "
    "one it removed).",
    "MergeEventKind": "What a merge event did.",
    "MergeEventKind.MERGE": "Contacts were merged under a new canonical contact.",
    "MergeEventKind.UNMERGE": "The latest merge of a set was undone.",
    # --- journeys and conversations --------------------------------------------------------
    "Journey.conversationCount": "How many conversations the journey holds.",
    "Journey.firstSeenAt": "When its oldest conversation started; null without any.",
    "Journey.lastSeenAt": "When its newest conversation started; null without any.",
    "Journey.channels": "The channels of its conversations, each once.",
    "Journey.conversations(first:)": "Page size, 1 to 1000.",
    "Journey.conversations(after:)": _PAGE_ARGS["after"],
    **_prefixed("Journey.conversations", {f"({k}:)": v for k, v in _TIME_ARGS.items()}),
    "Conversation": "One interaction (call, message thread, chat, email) on a channel.",
    "Conversation.id": "The id given by the integration that recorded it.",
    "Conversation.channel": "The channel it happened on.",
    "Conversation.direction": "Who started it.",
    "Conversation.startedAt": "When it started.",
    "Conversation.endedAt": "When it ended; null while it goes on or when not known.",
    "Conversation.durationSeconds": "endedAt - startedAt in seconds; null without endedAt.",
    **_prefixed("Conversation.", _INTERACTION_DETAILS),
    "Conversation.identifiers": "The identifiers it carried, normalised where possible.",
    "Conversation.externalContactId": "The exact contact it is linked to (may be an "
    "ancestor); null when unlinked.",
    "ConversationConnection": "A page of conversations, newest first.",
    **_prefixed("ConversationConnection.", _CONNECTION),
    "ConversationEdge": "A conversation in a page.",
    **_prefixed("ConversationEdge.", _EDGE),
    "ConversationEdge.node": "The conversation.",
    "Channel": "Where a conversation happened.",
    "Channel.VOICE": "A phone call.",
    "Channel.SMS": "Text messages.",
    "Channel.EMAIL": "Email.",
    "Channel.WEB_MESSAGING": "Web messaging (asynchronous, on a website or app).",
    "Channel.WEB_CHAT": "Web chat (synchronous, on a website).",
    "Channel.FACEBOOK": "Facebook Messenger.",
    "Channel.TWITTER": "Twitter (X) direct messages.",
    "Channel.WHATSAPP": "WhatsApp; its number is a WHATSAPP identifier, not a PHONE.",
    "Channel.LINE": "LINE messages.",
    "Channel.INSTAGRAM": "Instagram messages.",
    "Channel.OPEN_MESSAGING": "A custom messaging integration; never resolved automatically.",
    "Channel.CALLBACK": "A scheduled callback; never resolved automatically.",
    "Channel.CAMPAIGN": "An outbound campaign; never resolved automatically.",
    "Direction": "Who started a conversation.",
    "Direction.INBOUND": "The customer.",
    "Direction.OUTBOUND": "The contact center.",
    "Resolution": "What recordInteraction did with an interaction.",
    "Resolution.conversation": "The stored conversation.",
    "InteractionInput": "An interaction to record and resolve to a contact.",
    "InteractionInput.conversationId": "The integration's id; recording it again updates the "
    "same conversation.",
    "InteractionInput.channel": "The channel it happened on.",
    "InteractionInput.direction": "Who started it.",
    "InteractionInput.startedAt": "When it started.",
    "InteractionInput.endedAt": "When it ended, when known.",
    "InteractionInput.identifiers": "The identifiers it carried, resolved in priority order "
    "EXTERNAL_ID, EMAIL, PHONE, social, COOKIE.",
    "InteractionInput.provided": "Data the customer gave (e.g. a web form); its phones and "
    "emails count as identifiers too.",
    **_prefixed("InteractionInput.", _INTERACTION_DETAILS),
    # --- identity intelligence (section 6) ----------------------------------------------------
    "MatchSuggestion": "A probable duplicate of a contact, with the evidence.",
    "MatchSuggestion.contact": "A live canonical contact outside the subject's merge set.",
    "MatchSuggestion.score": "Confidence in [0, 1] that both are one person: at least 0.9 for a "
    "shared identifier with a similar name, or two shared identifiers of different types; "
    "0.5 to 0.9 for a shared identifier with conflicting or missing names, or a similar name "
    "at the same address; below 0.5 for a similar name alone.",
    "MatchSuggestion.reasons": "The evidence: SHARED_IDENTIFIER, then SIMILAR_NAME, then "
    "SAME_ADDRESS.",
    "MatchReason": "One piece of evidence that two contacts are one person.",
    "MatchReason.kind": "What kind of evidence.",
    "MatchReason.field": "For SHARED_IDENTIFIER the subject's field listing the value (null "
    "when it only claims it); `name` or `address` for the others.",
    "MatchReason.value": "The shared normalised value, the other contact's name, or its address.",
    "MatchReasonKind": "Kinds of match evidence.",
    "MatchReasonKind.SHARED_IDENTIFIER": "Both list or claim the same phone, email, social or "
    "external id value (never a blocked one).",
    "MatchReasonKind.SIMILAR_NAME": "First and last names equal after folding case, accents "
    "and punctuation, a typo or transposition apart, or a common nickname.",
    "MatchReasonKind.SAME_ADDRESS": "line1 and postalCode equal after folding.",
    "Contact.matchSuggestions(first:)": "How many, 1 to 100.",
    "Contact.matchSuggestions(minScore:)": "The lowest score returned, 0 to 1.",
    "Query.duplicateClusters": "Groups of probable duplicates: live canonical contacts "
    "connected by pair scores at or above minScore (2 to 25 contacts; a bigger group is cut "
    "into its strongest parts), best first. Pairs below 0.5 never form clusters.",
    "Query.duplicateClusters(minScore:)": "The weakest pair score that may hold a cluster "
    "together, 0 to 1.",
    "Query.duplicateClusters(types:)": "The contact types that take part (default: every type).",
    "Query.duplicateClusters(first:)": "Page size, 1 to 100.",
    "Query.duplicateClusters(after:)": _PAGE_ARGS["after"],
    "MergeEvent.score": "For a merge of probable duplicates (mergeDuplicateClusters or an "
    "automatic merge): the score that justified it; null otherwise.",
    "MergeEvent.reasons": "For a merge of probable duplicates: its evidence; empty otherwise.",
    "DuplicateClusterConnection": "A page of duplicate clusters, best first.",
    **_prefixed("DuplicateClusterConnection.", _CONNECTION),
    "DuplicateClusterEdge": "A duplicate cluster in a page.",
    **_prefixed("DuplicateClusterEdge.", _EDGE),
    "DuplicateClusterEdge.node": "The cluster.",
    "DuplicateCluster": "Contacts that are probably one person.",
    "DuplicateCluster.id": "The cluster's id: the same for the same contacts.",
    "DuplicateCluster.contacts": "2 to 25 live canonical contacts, oldest first.",
    "DuplicateCluster.score": "The weakest pair score that holds the cluster together.",
    "DuplicateCluster.reasons": "The evidence of the pairs that hold it together.",
    "Mutation.mergeDuplicateClusters": "Merges the best clusters now, each as one merge whose "
    "event carries score and reasons; skips clusters the merge rules refuse (two CURATED, "
    "a set over 52). Returns the new canonical contacts. Needs "
    "externalContacts:identity:merge.",
    "Mutation.mergeDuplicateClusters(minScore:)": "The clusters' minimum score, 0 to 1.",
    "Mutation.mergeDuplicateClusters(first:)": "How many clusters at most, 1 to 100.",
    "IdentitySettings": "How this org handles probable duplicates and junk identifier values.",
    "IdentitySettings.autoMerge": "When true, a write that changes a contact's evidence merges "
    "it with every suggestion scoring at least autoMergeMinScore (default false).",
    "IdentitySettings.autoMergeMinScore": "The lowest score that merges by itself, 0.9 to 1 "
    "(default 0.95).",
    "IdentitySettings.blockedIdentifiers": "This org's blocked values, on top of the built-in "
    "list: never claimed, never resolving, never evidence.",
    "IdentitySettingsInput": "Changes to the identity settings: omitted = unchanged.",
    "IdentitySettingsInput.autoMerge": "Turn automatic merging on or off.",
    "IdentitySettingsInput.autoMergeMinScore": "0.9 to 1.",
    "IdentitySettingsInput.blockedIdentifiers": "The org's whole list (replaces it), at most "
    "1,000 values, each normalised first; a value that is claimed is released.",
    "Query.identitySettings": "This org's identity settings. Needs "
    "externalContacts:identity:configure.",
    "Mutation.updateIdentitySettings": "Changes this org's identity settings. Needs "
    "externalContacts:identity:configure.",
    "Mutation.updateIdentitySettings(input:)": "The settings to change.",
    "Mutation.claimIdentifier": "Gives a free identifier (or one held within the same merge "
    "set) to the contact's canonical contact; CONFLICT when another contact holds it, "
    "BAD_USER_INPUT when it is blocked. Needs externalContacts:contact:edit.",
    "Mutation.claimIdentifier(contactId:)": "The contact (an ancestor's id gives it to its "
    "canonical contact).",
    "Mutation.claimIdentifier(identifier:)": "The identifier; its value is normalised first.",
    "Mutation.releaseIdentifier": "Frees an identifier no live contact lists in its fields (a "
    "cookie, a value claimed through an interaction); true when done. Needs "
    "externalContacts:contact:edit.",
    "Mutation.releaseIdentifier(type:)": "The identifier's type.",
    "Mutation.releaseIdentifier(value:)": "The value, normalised first.",
    # --- mutations' arguments and inputs ----------------------------------------------------
    "Mutation.createContact(input:)": "The new contact's fields.",
    "Mutation.updateContact(id:)": "The contact (an ancestor's id edits its canonical).",
    "Mutation.updateContact(input:)": "The fields to change: omitted = unchanged, null = cleared.",
    "Mutation.deleteContact": "Deletes the contact, or its whole merge set, and hands its "
    "identifiers on to the oldest live contact listing each; true when done.",
    "Mutation.deleteContact(id:)": "Any member's id.",
    "Mutation.promoteContact": "Makes an auto-created contact CURATED (it stops expiring); "
    "on a curated contact it changes nothing.",
    "Mutation.promoteContact(id:)": "The contact (an ancestor's id promotes its canonical).",
    "Mutation.addNote": "Writes a note on a contact.",
    "Mutation.addNote(contactId:)": "The contact (not an ancestor).",
    "Mutation.addNote(text:)": "The note, at most 10,000 characters.",
    "Mutation.recordInteraction(input:)": "The interaction.",
    "Mutation.linkConversation(conversationId:)": "The conversation.",
    "Mutation.linkConversation(contactId:)": "Exactly the contact to link to (an ancestor "
    "too; no redirect to the canonical).",
    "Mutation.unlinkConversation": "Clears a conversation's link to its contact.",
    "Mutation.unlinkConversation(conversationId:)": "The conversation.",
    "Mutation.mergeContacts(contactIds:)": "2 to 25 contact ids; each is replaced by its "
    "canonical contact, and at least two distinct ones must remain.",
    "Mutation.mergeContacts(valueOverride:)": "Fields of the new canonical contact that win "
    "over the inputs' values.",
    "Mutation.unmergeContacts(contactId:)": "Any member of the set.",
    "ContactInput": "A contact's fields; phones and emails are normalised.",
    **_prefixed("ContactInput.", _CONTACT_DATA),
    "ExternalIdInput": "The id of a person in another system.",
    "ExternalIdInput.source": "The system, e.g. `crm`.",
    "ExternalIdInput.value": "The id in that system.",
    "AddressInput": "A postal address.",
    **_prefixed("AddressInput.", _ADDRESS),
    # --- privacy -------------------------------------------------------------------------
    "ErasureReceiptConnection": "A page of erasure receipts, newest first.",
    **_prefixed("ErasureReceiptConnection.", _CONNECTION),
    "ErasureReceiptEdge": "An erasure receipt in a page.",
    **_prefixed("ErasureReceiptEdge.", _EDGE),
    "ErasureReceiptEdge.node": "The receipt.",
    **WEB_DESCRIPTIONS,  # web journeys (schema/web_descriptions.py)
    **_INTEGRATIONS,
    # --- change feed and webhooks (resolvers/changes.py, resolvers/webhooks.py) -----------
    "Query.changes": "The org's changes, oldest first, recorded atomically with their writes "
    "and kept SCV_CHANGE_RETENTION_DAYS (7). A page never passes a change whose write may "
    "still commit, so reading on from `endCursor` misses nothing. Needs "
    "externalContacts:contact:view.",
    "Query.changes(after:)": "The `endCursor` (or an edge's cursor) of an earlier page; "
    "omitted: from the oldest change kept.",
    "Query.changes(first:)": "How many changes at most (1-500).",
    "Query.changes(kinds:)": "Only changes of these kinds (all when omitted). `endCursor` "
    "still moves past changes of other kinds.",
    "Query.webhooks": "The org's webhooks (without their secrets). Needs "
    "externalContacts:webhook:manage.",
    "ChangeConnection": "A page of the change feed.",
    "ChangeConnection.edges": _CONNECTION["edges"],
    "ChangeConnection.pageInfo": "`endCursor` is where to read on from (it moves past "
    "changes the `kinds` filter left out, also when the page is empty); `hasNextPage`: more "
    "changes can be read right away.",
    "ChangeEdge": "A change and its cursor.",
    "ChangeEdge.cursor": _EDGE["cursor"],
    "ChangeEdge.node": "The change.",
    "Change": "One change to the directory, recorded in the same transaction as its write.",
    "Change.id": "Unique: consumers use it to drop duplicates (webhooks deliver at least once).",
    "Change.kind": "What happened.",
    "Change.at": "When the change was recorded.",
    "Change.by": "Who made it: the token's sub, or `auto` for automatic merges.",
    "Change.contactId": "The contact it is about (for merges: the new canonical contact).",
    "Change.contactIds": "Every contact it touched (merge inputs, restored contacts …).",
    "Change.conversationId": "The conversation it is about (links and unlinks).",
    "Change.identifier": "The identifier it is about (claims and releases).",
    "ChangeKind": "What a change did.",
    "ChangeKind.CONTACT_CREATED": "A contact was created (by createContact, an import or an "
    "interaction).",
    "ChangeKind.CONTACT_UPDATED": "A contact's fields or notes changed.",
    "ChangeKind.CONTACT_DELETED": "A contact (with its merge set) was deleted.",
    "ChangeKind.CONTACT_PROMOTED": "An auto-created contact became CURATED.",
    "ChangeKind.CONTACTS_MERGED": "Contacts were merged under a new canonical contact.",
    "ChangeKind.CONTACTS_UNMERGED": "A merge was undone; contactIds lists the restored contacts.",
    "ChangeKind.IDENTIFIER_CLAIMED": "An identifier now points to the contact.",
    "ChangeKind.IDENTIFIER_RELEASED": "An identifier no longer points to the contact.",
    "ChangeKind.CONVERSATION_LINKED": "A conversation was linked to the contact.",
    "ChangeKind.CONVERSATION_UNLINKED": "A conversation was unlinked from the contact.",
    "ChangeKind.CONTACT_ERASED": "A contact's personal data was erased.",
    "Webhook": "Where the org's changes are POSTed, signed, in feed order, at least once.",
    "Webhook.id": "The webhook's id.",
    "Webhook.url": "The http(s) URL changes are POSTed to.",
    "Webhook.kinds": "The kinds of change it receives.",
    "Webhook.createdAt": "When it was created.",
    "Webhook.secret": "The HMAC-SHA256 key of `X-SCV-Signature`: only in createWebhook's "
    "result, never again.",
    "Webhook.failing": "True while the receiver's latest answer was not a 2xx (it is retried "
    "with exponential backoff, 1 s doubling to 10 min).",
    "Webhook.lastError": "What went wrong with the latest failed delivery; null once it works.",
    "Mutation.createWebhook": "Sends the org's changes to `url` from now on; returns the "
    "secret once. Needs externalContacts:webhook:manage.",
    "Mutation.createWebhook(url:)": "An http or https URL; loopback, private, link-local and "
    "metadata addresses are refused unless SCV_WEBHOOK_ALLOW_PRIVATE=1.",
    "Mutation.createWebhook(kinds:)": "The kinds of change to send; every kind when omitted.",
    "Mutation.deleteWebhook": "Stops and removes the webhook. Needs "
    "externalContacts:webhook:manage.",
    "Mutation.deleteWebhook(id:)": "The webhook's id.",
    "Subscription.changes": "The org's changes live, in feed order, as `changes` shows them. "
    "Needs externalContacts:contact:view.",
    "Subscription.changes(kinds:)": "Only changes of these kinds (all when omitted).",
}


def find(schema: GraphQLSchema, coordinate: str) -> Described | None:
    """The schema element at ``coordinate``, or None when there is none."""
    type_name, _, member = coordinate.partition(".")
    named = schema.type_map.get(type_name)
    if not member or named is None:
        return named
    field_name, _, argument = member.partition("(")
    if isinstance(named, GraphQLEnumType):
        value: GraphQLEnumValue | None = named.values.get(member)
        return value
    if isinstance(named, GraphQLObjectType | GraphQLInterfaceType | GraphQLInputObjectType):
        field: GraphQLField | GraphQLInputField | None = named.fields.get(field_name)
        if argument and isinstance(field, GraphQLField):
            found: GraphQLArgument | None = field.args.get(argument.removesuffix(":)"))
            return found
        return None if argument else field
    return None


def describe(schema: GraphQLSchema) -> None:
    """Fill the catalogue's descriptions into ``schema`` where the code wrote none."""
    for coordinate, text in DESCRIPTIONS.items():
        element = find(schema, coordinate)
        if element is not None and not element.description:
            element.description = text
