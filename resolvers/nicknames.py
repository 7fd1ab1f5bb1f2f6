"""A built-in table of common English first-name nicknames (Bob/Robert, Bill/William,
Liz/Elizabeth, Kate/Katherine …): each formal name with the short forms people go by.

:func:`first_name_groups` gives the formal names a (folded) first name may stand for; two
first names are nicknames of each other when their groups meet.
"""

from __future__ import annotations

from functools import cache
from typing import Final

NICKNAMES: Final[dict[str, tuple[str, ...]]] = {
    "abigail": ("abby", "abbie", "gail"),
    "albert": ("al", "bert", "bertie"),
    "alexander": ("alex", "al", "sandy", "xander", "lex"),
    "alexandra": ("alex", "alexa", "sandra", "sandy", "lexi"),
    "alfred": ("al", "alf", "fred", "freddie"),
    "andrew": ("andy", "drew"),
    "ann": ("anne", "annie", "nan"),
    "anthony": ("tony", "ant"),
    "barbara": ("barb", "barbie", "babs"),
    "benjamin": ("ben", "benny", "benji"),
    "catherine": ("cathy", "cat", "kate", "katie", "cate"),
    "charles": ("charlie", "chuck", "chas", "chaz"),
    "charlotte": ("charlie", "lottie", "lotte"),
    "christina": ("chris", "tina", "christy"),
    "christine": ("chris", "tina", "christy"),
    "christopher": ("chris", "topher", "kit"),
    "daniel": ("dan", "danny"),
    "david": ("dave", "davy", "davie"),
    "deborah": ("deb", "debbie", "debby"),
    "donald": ("don", "donny"),
    "dorothy": ("dot", "dottie", "dolly"),
    "edward": ("ed", "eddie", "ted", "teddy", "ned"),
    "elizabeth": ("liz", "lizzie", "beth", "betty", "betsy", "eliza", "libby", "liza", "lisa"),
    "eleanor": ("ellie", "nell", "nora", "elle"),
    "frances": ("fran", "frannie"),
    "francis": ("frank", "fran"),
    "frederick": ("fred", "freddie", "fritz"),
    "gregory": ("greg",),
    "harold": ("harry", "hal"),
    "henry": ("harry", "hank", "hal"),
    "isabella": ("bella", "izzy", "isa"),
    "jacob": ("jake", "jay"),
    "james": ("jim", "jimmy", "jamie", "jem"),
    "janet": ("jan",),
    "jennifer": ("jen", "jenny", "jenn"),
    "jessica": ("jess", "jessie"),
    "john": ("jack", "johnny", "jon"),
    "jonathan": ("jon", "jonny", "nathan"),
    "joseph": ("joe", "joey", "jo"),
    "joshua": ("josh",),
    "judith": ("judy", "jude"),
    "katherine": ("kate", "kathy", "katie", "kat", "kitty", "kay", "kathryn", "katharine"),
    "kathleen": ("kathy", "kate", "kay"),
    "kenneth": ("ken", "kenny"),
    "lawrence": ("larry", "laurie"),
    "leonard": ("len", "lenny", "leo"),
    "margaret": ("maggie", "meg", "peggy", "marge", "madge", "greta", "daisy"),
    "matthew": ("matt", "matty"),
    "michael": ("mike", "mikey", "mick", "mickey"),
    "nathaniel": ("nate", "nat", "nathan"),
    "nicholas": ("nick", "nicky", "nico"),
    "pamela": ("pam",),
    "patricia": ("pat", "patty", "trish", "tricia"),
    "patrick": ("pat", "paddy", "rick"),
    "peter": ("pete",),
    "philip": ("phil",),
    "rebecca": ("becky", "becca", "bec"),
    "richard": ("rick", "ricky", "dick", "rich", "richie"),
    "robert": ("bob", "bobby", "rob", "robbie", "bert"),
    "ronald": ("ron", "ronnie"),
    "samantha": ("sam", "sammy"),
    "samuel": ("sam", "sammy"),
    "sarah": ("sara", "sally", "sadie"),
    "stephen": ("steve", "stevie"),
    "steven": ("steve", "stevie"),
    "susan": ("sue", "susie", "suzy"),
    "theodore": ("ted", "teddy", "theo"),
    "thomas": ("tom", "tommy"),
    "timothy": ("tim", "timmy"),
    "victoria": ("vicky", "vicki", "tori"),
    "walter": ("walt", "wally"),
    "william": ("bill", "billy", "will", "willy", "liam"),
    "zachary": ("zach", "zack"),
}


def _groups_by_name() -> dict[str, frozenset[str]]:
    groups: dict[str, set[str]] = {}
    for formal, short_forms in NICKNAMES.items():
        groups.setdefault(formal, set()).add(formal)
        for short in short_forms:
            groups.setdefault(short, set()).add(formal)
    return {name: frozenset(formals) for name, formals in groups.items()}


_GROUPS: Final = _groups_by_name()


@cache
def first_name_groups(folded: str) -> frozenset[str]:
    """The formal names a folded first name may stand for (itself when the table has none)."""
    return _GROUPS.get(folded, frozenset((folded,)) if folded else frozenset())


def are_nicknames(a: str, b: str) -> bool:
    return bool(first_name_groups(a) & first_name_groups(b))
