"""Checked by mypy, never run: a misspelt or unknown key of a stored document is a type error.

Each ``# type: ignore[...]`` below must be needed (``warn_unused_ignores`` is on in
``mypy --strict``), so ``make lint`` fails the day a document type stops catching these.
``tests/typing/test_documents.py`` runs the same check inside the test suite.
"""

from __future__ import annotations

from datetime import datetime

from resolvers.documents import ClaimDoc, ContactDoc, ConversationDoc, MergeSetDoc, NoteDoc


def misspelt_contact_field(contact: ContactDoc) -> object:
    return contact["firstname"]  # type: ignore[typeddict-item]


def misspelt_claim_holder(claim: ClaimDoc) -> object:
    return claim["contactID"]  # type: ignore[typeddict-item]


def wrong_value_type(conversation: ConversationDoc) -> None:
    conversation["startedAt"] = "yesterday"  # type: ignore[typeddict-item]


def unknown_key_written(merge_set: MergeSetDoc) -> None:
    merge_set["members"] = []  # type: ignore[typeddict-unknown-key]


def note_missing_its_author(moment: datetime) -> NoteDoc:
    return {  # type: ignore[typeddict-item]
        "_id": "n1",
        "org": "acme",
        "contactId": "c1",
        "text": "hello",
        "createdAt": moment,
    }
