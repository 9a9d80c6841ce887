"""A small table of English given-name nicknames and the legal names they stand for.

Deliberately short and conservative: a pair missing here is held for a person, which is the
safe failure. Keys are legal names, values their common nicknames, all lower case.
"""

from __future__ import annotations

from types import MappingProxyType

_LEGAL_TO_NICKNAMES: dict[str, tuple[str, ...]] = {
    "abigail": ("abby", "gail"),
    "alexander": ("alex", "al", "sandy", "xander"),
    "alexandra": ("alex", "alexa", "sandra", "sandy", "lexi"),
    "alfred": ("al", "alf", "fred"),
    "andrew": ("andy", "drew"),
    "anthony": ("tony",),
    "barbara": ("barb", "babs"),
    "benjamin": ("ben", "benny", "benji"),
    "catherine": ("cathy", "kate", "katie", "cat"),
    "charles": ("charlie", "chuck", "chas"),
    "christine": ("chris", "christy", "tina"),
    "christopher": ("chris", "kit", "topher"),
    "daniel": ("dan", "danny"),
    "david": ("dave", "davy"),
    "deborah": ("deb", "debbie", "debby"),
    "donald": ("don", "donny"),
    "dorothy": ("dot", "dottie", "dolly"),
    "edward": ("ed", "eddie", "ned", "ted"),
    "elizabeth": ("liz", "lizzie", "beth", "betty", "betsy", "eliza", "libby", "lisa", "liza"),
    "eleanor": ("ellie", "nora", "nell"),
    "frances": ("fran", "frannie"),
    "francis": ("frank", "fran"),
    "gregory": ("greg",),
    "henry": ("hank", "harry"),
    "james": ("jim", "jimmy", "jamie"),
    "jennifer": ("jen", "jenny"),
    "john": ("jack", "johnny"),
    "jonathan": ("jon", "jonny"),
    "joseph": ("joe", "joey"),
    "katherine": ("kathy", "kate", "katie", "kay", "kitty"),
    "kathleen": ("kathy", "kate", "katie"),
    "lawrence": ("larry",),
    "margaret": ("peggy", "maggie", "meg", "marge", "margie", "greta", "rita", "daisy"),
    "margarita": ("rita", "margie", "marga"),
    "matthew": ("matt",),
    "michael": ("mike", "mikey", "mick"),
    "nicholas": ("nick", "nicky"),
    "patricia": ("pat", "patty", "trish", "tricia"),
    "patrick": ("pat", "paddy"),
    "peter": ("pete",),
    "rebecca": ("becky", "becca"),
    "richard": ("rick", "ricky", "dick", "rich"),
    "robert": ("bob", "bobby", "rob", "robbie", "bert"),
    "ronald": ("ron", "ronnie"),
    "samuel": ("sam", "sammy"),
    "stephen": ("steve",),
    "steven": ("steve",),
    "susan": ("sue", "suzy"),
    "theodore": ("ted", "teddy", "theo"),
    "thomas": ("tom", "tommy"),
    "timothy": ("tim", "timmy"),
    "victoria": ("vicky", "tori"),
    "william": ("bill", "billy", "will", "willy", "liam"),
}

LEGAL_NAMES: MappingProxyType[str, frozenset[str]] = MappingProxyType(
    {legal: frozenset(nicks) for legal, nicks in _LEGAL_TO_NICKNAMES.items()}
)
"""Legal given name -> its nicknames (lower case)."""

KNOWN_GIVEN_NAMES: frozenset[str] = frozenset(_LEGAL_TO_NICKNAMES).union(
    *(frozenset(n) for n in _LEGAL_TO_NICKNAMES.values())
)
"""Every name in the table, legal or nickname (lower case)."""


def legal_form(x: str, y: str) -> str | None:
    """If one of ``x``/``y`` is a nickname of the other, return the legal one (as written)."""
    fx, fy = x.casefold(), y.casefold()
    if fx in LEGAL_NAMES and fy in LEGAL_NAMES[fx]:
        return x
    if fy in LEGAL_NAMES and fx in LEGAL_NAMES[fy]:
        return y
    return None


def legal_names_for(nickname: str) -> frozenset[str]:
    """The legal names ``nickname`` may stand for (lower case), including itself."""
    folded = nickname.casefold()
    found = {legal for legal, nicks in LEGAL_NAMES.items() if folded in nicks}
    return frozenset({folded, *found})
