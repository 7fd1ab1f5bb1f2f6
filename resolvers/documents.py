"""The stored documents, one ``TypedDict`` per collection's shape.

``Store`` types its collections with these (``AsyncCollection[ContactDoc]`` …), so every
read and write through it is checked by mypy: a misspelt key is a type error
(``tests/typing/documents.py`` proves it). They cost nothing at run time: a
document is still the plain dict PyMongo decodes.

Two things the types cannot say, and how the code handles them:
- a read with a projection returns a document with only the projected keys; the type is
  still the whole shape, so code reading a projected document reads only what it projected
  (the projection constants sit next to the reads);
- a contact's *fields* (names, phones, emails, …) are also handled by name, as data: the
  input patches, the merge of fields and the CSV columns iterate over field-name tuples.
  Those are :data:`ContactFields`, an open-ended ``dict[str, Any]`` keyed by field name,
  and :func:`field_of` is the one place a contact's field is read by a computed name.

What stays an untyped ``dict[str, Any]`` (``resolvers.store.Doc``), and why: the raw
database handle and client (any collection), aggregation rows (``store.aggregate_rows``:
their shape is the pipeline's ``$group``/``$lookup``/``$count``, named where they are read),
and query filters and update documents (Mongo's operator language, not stored shapes).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, NotRequired, TypedDict, cast

from bson import ObjectId

# A contact's fields by name, as the GraphQL input, the CSV importer and the merge handle
# them: open-ended by design (the keys are the names in ``contact_fields.ALL_FIELDS``).
ContactFields = dict[str, Any]


class ExternalIdDoc(TypedDict):
    source: str
    value: str


class AddressDoc(TypedDict, total=False):
    """Every part is optional: an address is stored with the parts it was given."""

    line1: str | None
    line2: str | None
    city: str | None
    state: str | None
    postalCode: str | None
    countryCode: str | None


class ContactDoc(TypedDict):
    """``contacts``: one document per contact (canonical or ancestor)."""

    _id: str
    org: str
    type: str  # contact_fields.ContactType
    createdAt: datetime
    modifiedAt: datetime
    since: datetime  # claim priority: a merged canonical is as old as its oldest input
    expiresAt: datetime | None
    canonicalId: str
    mergeSetId: str | None
    readOnly: bool
    keys: list[str]  # normalised identifier keys the fields list
    nameTokens: list[str]
    matchKeys: NotRequired[list[str]]  # resolvers/names.py: name and address candidate keys
    firstName: str | None
    middleName: str | None
    lastName: str | None
    title: str | None
    cellPhone: str | None
    workPhone: str | None
    homePhone: str | None
    otherPhone: str | None
    personalEmail: str | None
    workEmail: str | None
    otherEmail: str | None
    whatsAppId: str | None
    facebookId: str | None
    twitterId: str | None
    lineId: str | None
    instagramId: str | None
    externalIds: list[ExternalIdDoc]
    address: AddressDoc | None
    surveyOptOut: bool
    lastSeenAt: NotRequired[datetime]  # auto-created contacts: their latest interaction
    claimSeq: NotRequired[int]  # bumped to fence a claim against a concurrent merge
    importKey: NotRequired[str]  # the CSV importer's row fingerprint


class ClaimDoc(TypedDict):
    """``identifiers``: which contact an identifier points to (unique on ``{org, key}``)."""

    _id: NotRequired[ObjectId]  # given by the server on insert
    org: str
    key: str  # "TYPE:value"
    type: str  # identifiers.IdentifierType
    value: str
    contactId: str
    claimedAt: datetime
    via: str  # claims.VIA_FIELD / VIA_INTERACTION / VIA_MERGE
    expiresAt: datetime | None


class SeenIdentifierDoc(TypedDict):
    type: str
    value: str


class ConversationDoc(TypedDict):
    """``conversations``: one per conversation id per org."""

    _id: str
    org: str
    cid: str  # the caller's conversationId
    channel: str
    direction: str
    startedAt: datetime
    endedAt: datetime | None
    durationSeconds: float | None
    identifiers: list[SeenIdentifierDoc]
    externalContactId: str | None
    expiresAt: datetime
    createdAt: datetime
    modifiedAt: datetime
    queue: str | None
    agent: str | None
    wrapUpCode: str | None
    status: str | None
    notes: str | None


class CountBucketDoc(TypedDict):
    """``conversation_counts``: an org's conversations started in one hour or day."""

    _id: str  # "org|unit|start"
    org: str
    unit: str  # "h" or "d"
    start: datetime
    expiresAt: datetime
    n: int
    channels: dict[str, int]  # per channel


class NoteDoc(TypedDict):
    """``notes``: free text on a contact."""

    _id: str
    org: str
    contactId: str
    text: str
    createdAt: datetime
    createdBy: str


class MergeInputDoc(TypedDict):
    """An input of a merge as it was before: what undoing the merge restores."""

    contact: ContactDoc
    identifiers: list[ClaimDoc]


class SetSnapshotDoc(TypedDict):
    """An input set of a merge as it was before."""

    _id: str
    canonicalId: str
    memberIds: list[str]
    eventIds: list[str]


class MatchReasonDoc(TypedDict):
    """A piece of match evidence (resolvers/matching.py) as a merge event keeps it."""

    kind: str
    field: str | None
    value: str | None


class MergeEvidenceDoc(TypedDict):
    """Why contacts were merged without a person choosing them: a cluster or auto merge."""

    score: float
    reasons: list[MatchReasonDoc]


class MergeEntryDoc(TypedDict):
    """One entry of a merge set's ``history``: a MERGE (with its snapshots) or an UNMERGE."""

    id: str
    kind: str  # merges.MERGE / merges.UNMERGE
    at: datetime
    by: str
    inputIds: list[str]
    canonicalId: str
    inputs: NotRequired[list[MergeInputDoc]]  # MERGE, until undone
    sets: NotRequired[list[SetSnapshotDoc]]  # MERGE, until undone
    undoneBy: NotRequired[str]  # an undone MERGE
    undoes: NotRequired[str]  # UNMERGE
    score: NotRequired[float]  # a MERGE of probable duplicates (resolvers/clusters.py, auto)
    reasons: NotRequired[list[MatchReasonDoc]]


class MergeSetDoc(TypedDict):
    """``merge_sets``: a canonical contact and its ancestors."""

    _id: str
    org: str
    canonicalId: str
    memberIds: list[str]
    history: list[MergeEntryDoc]


class MergeEventDoc(TypedDict):
    """``merge_events``: a history entry without snapshots, per contact involved."""

    _id: str
    org: str
    kind: str
    at: datetime
    by: str
    inputIds: list[str]
    canonicalId: str
    contactIds: list[str]
    score: NotRequired[float]
    reasons: NotRequired[list[MatchReasonDoc]]


class ErasureReceiptDoc(TypedDict):
    """``erasure_receipts``: proof of one erasure, without personal data (ids and counts)."""

    _id: str
    org: str
    at: datetime
    by: str  # the token's sub
    reason: str | None
    contactIds: list[str]  # every contact erased: the whole merge set
    conversations: int
    webEvents: int
    notes: int
    identifiers: int
    suppressed: int


class IdentifierValueDoc(TypedDict):
    """An identifier as the feed shows it."""

    type: str
    value: str


class ChangeDoc(TypedDict):
    """``changes``: one change of the feed (resolvers/changes.py), or (without ``kind``) a
    voided position."""

    _id: str
    org: str
    seq: int
    at: datetime  # when its position was reserved
    expiresAt: datetime
    kind: NotRequired[str]
    by: NotRequired[str]
    contactId: NotRequired[str]
    contactIds: NotRequired[list[str]]
    conversationId: NotRequired[str | None]
    identifier: NotRequired[IdentifierValueDoc | None]


class WebhookDoc(TypedDict):
    """``webhooks``: where an org's changes are POSTed, and how far delivery got."""

    _id: str
    org: str
    url: str
    kinds: list[str]
    createdAt: datetime
    createdBy: str
    secret: str
    position: int  # the feed position delivered up to (a 2xx answer moved it)
    failing: bool
    lastError: str | None
    attempts: int  # failed attempts in a row (the backoff's exponent)
    nextAttemptAt: datetime


def field_of(contact: ContactDoc, name: str) -> Any:
    """A contact's field by a computed name (one of ``contact_fields.ALL_FIELDS``)."""
    return cast(dict[str, Any], contact).get(name)


def as_contact(fields: ContactFields) -> ContactDoc:
    """A contact document assembled from its fields by name (a new contact, an edit applied,
    a merged canonical): the callers fill every key of :class:`ContactDoc`."""
    return cast(ContactDoc, fields)
