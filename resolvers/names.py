"""Names and addresses for match suggestions: folding, nicknames, similarity, index keys.

- :func:`fold`: case, accents and punctuation folded away (``"O'Brien-Núñez"`` →
  ``"obrien nunez"``).
- :func:`same_name`: two folded first or last names are the same person's when equal, when a
  built-in nickname table maps both to one name (Bob/Robert, Liz/Elizabeth …), or when they
  are one typo or transposition apart (Jonathan/Jonathon, Smith/Smtih; Damerau-Levenshtein
  from ``jellyfish``), two for long names.
- :func:`compare_names`: SIMILAR, CONFLICTING (both named, not similar) or UNKNOWN (a side
  has no name to compare).
- :func:`match_keys`: the keys stored on a contact (``matchKeys``, indexed with its org) that
  find name and address candidates by index: ``N:<metaphone of last name>:<initial of the
  nickname-resolved first name>`` and ``A:<line1>|<postalCode>`` folded.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Mapping
from enum import StrEnum
from typing import Any

import jellyfish

from resolvers.nicknames import are_nicknames, first_name_groups

_NOT_WORD = re.compile(r"[^\w\s]+")
_SPACES = re.compile(r"[\s_]+")


class NameMatch(StrEnum):
    SIMILAR = "SIMILAR"
    CONFLICTING = "CONFLICTING"
    UNKNOWN = "UNKNOWN"


def fold(text: str | None) -> str:
    """Lower case, without accents or punctuation, single spaces."""
    if not text:
        return ""
    decomposed = unicodedata.normalize("NFKD", text)
    plain = "".join(c for c in decomposed if not unicodedata.combining(c))
    return _SPACES.sub(" ", _NOT_WORD.sub("", plain.casefold())).strip()


def _typo_budget(a: str, b: str, shortest_with_one: int) -> int:
    shortest = min(len(a), len(b))
    if shortest >= 8:
        return 2
    return 1 if shortest >= shortest_with_one else 0


def same_name(a: str, b: str, *, shortest_with_one: int = 4) -> bool:
    """Two folded names of one person: equal (spaces aside) or a typo/transposition apart
    (one edit from ``shortest_with_one`` letters on, two from 8)."""
    if not a or not b:
        return False
    if a == b or a.replace(" ", "") == b.replace(" ", ""):
        return True
    budget = _typo_budget(a, b, shortest_with_one)
    return jellyfish.damerau_levenshtein_distance(a, b) <= budget


def same_first_name(a: str, b: str) -> bool:
    """First names: nicknames too, and a typo only from five letters on (John and Joan, Mark
    and Mary are different people of one family)."""
    return same_name(a, b, shortest_with_one=5) or are_nicknames(a, b)


def name_parts(doc: Mapping[str, Any]) -> tuple[str, str]:
    return fold(doc.get("firstName")), fold(doc.get("lastName"))


def compare_names(left: Mapping[str, Any], right: Mapping[str, Any]) -> NameMatch:
    """Compare the parts both contacts have; SIMILAR when every one matches."""
    first_a, last_a = name_parts(left)
    first_b, last_b = name_parts(right)
    compared = []
    if first_a and first_b:
        compared.append(same_first_name(first_a, first_b))
    if last_a and last_b:
        compared.append(same_name(last_a, last_b))
    if not compared:
        return NameMatch.UNKNOWN
    return NameMatch.SIMILAR if all(compared) else NameMatch.CONFLICTING


def address_key(doc: Mapping[str, Any]) -> str | None:
    address = doc.get("address") or {}
    line1, postal = fold(address.get("line1")), fold(address.get("postalCode"))
    if not line1 or not postal:
        return None
    return f"{line1}|{postal.replace(' ', '')}"


def name_keys(doc: Mapping[str, Any]) -> list[str]:
    """``<metaphone of last name>:<initial>`` for each formal name the first name may be."""
    first, last = name_parts(doc)
    if not first or not last:
        return []
    phonetic = jellyfish.metaphone(last.replace(" ", "")) or last
    initials = sorted({formal[0] for formal in first_name_groups(first)})
    return [f"{phonetic}:{initial}" for initial in initials]


def match_keys(doc: Mapping[str, Any]) -> list[str]:
    """The indexed keys that find a contact's name and address candidates."""
    keys: list[str] = []
    keys.extend(f"N:{name}" for name in name_keys(doc))
    address = address_key(doc)
    if address is not None:
        keys.append(f"A:{address}")
    return keys


def display_name(doc: Mapping[str, Any]) -> str:
    return " ".join(p for p in (doc.get("firstName"), doc.get("lastName")) if p)
