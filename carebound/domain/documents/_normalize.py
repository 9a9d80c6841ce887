"""Readings of a document's text that undo the usual ways of hiding instructions in it.

Pure and deterministic. ``readings(text)`` returns the text's lines, normalised for matching
(Unicode NFKC, invisible characters removed, homoglyphs mapped to the Latin letters they imitate,
accents removed, case folded, leetspeak and letter-spacing undone), plus whatever the text hides:
HTML comments, markdown link text and targets, base64, hex, percent-encoded and ROT13 text,
decoded. Each reading keeps the line it came from, so a match can be quoted from the original.
"""

from __future__ import annotations

import base64
import binascii
import codecs
import html
import re
import unicodedata
from bisect import bisect_right
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache
from urllib.parse import unquote

from confusable_homoglyphs import confusables  # type: ignore[import-untyped]  # no stubs

#: Longest text that is read (characters), which keeps a hostile 10 MB fax from costing
#: seconds of CPU; ``detect_injection`` flags a longer text as not fully read.
MAX_SCAN_CHARS = 100_000
_MAX_DECODED = 40  # encoded tokens decoded per text
_MIN_ENCODED = 16  # shortest base64/hex token worth decoding


@dataclass(frozen=True)
class Reading:
    """One normalised reading of (part of) a document: ``text`` holds one normalised line per
    original line, joined by newlines, so a match maps back to the lines it spans."""

    text: str
    """Normalised text (folded case, ASCII letters where the original imitated them)."""
    first_line: int
    """Index of the original line its first line came from (``str.split("\\n")``)."""
    line_starts: tuple[int, ...]
    """Offset in ``text`` where each of its lines starts."""
    via: str
    """How it was recovered: ``text``, ``HTML comment``, ``base64``, ``homoglyphs`` ..."""
    concealed: bool
    """It was hidden from a human reader (encoded, commented out, disguised letters)."""
    disguised_lines: frozenset[int] = frozenset()
    """Lines (original indexes) whose letters imitate others (homoglyphs): concealment."""
    raw: str = ""
    """For hidden or decoded content: that content, unnormalised (for quoting)."""
    compact: bool = False
    """Letters only (letter-spaced text with its gaps gone): matched by compact cues only."""

    def lines_of(self, start: int, end: int) -> range:
        """The original line indexes a match at ``[start, end)`` spans."""
        first = bisect_right(self.line_starts, start) - 1
        last = bisect_right(self.line_starts, max(start, end - 1)) - 1
        return range(self.first_line + first, self.first_line + last + 1)


_INVISIBLE_CATEGORIES = {"Cf", "Cc", "Co", "Cn"}
_LEET = str.maketrans(
    {"0": "o", "1": "i", "3": "e", "4": "a", "5": "s", "7": "t", "@": "a", "$": "s"}
)
_LEET_TOKEN = re.compile(r"[\w@$]*[a-z][\w@$]*")
_LEET_CHARS = re.compile(r"[013457@$]")
# Three or more single characters each followed by one separator: "i g n o r e", "s.y.s.t.e.m".
_SPACED = re.compile(r"(?<!\w)(?:\w[ .\-_*·|/]){3,}\w(?!\w)")
_HTML_COMMENT = re.compile(r"<!--(.*?)(?:-->|$)", re.DOTALL)
_MD_LINK = re.compile(r"!?\[([^\]\n]{0,300})\]\(([^)\n]{0,500})\)")
_TAG = re.compile(r"</?[A-Za-z][^>\n]{0,300}>")
_BASE64 = re.compile(rf"[A-Za-z0-9+/_-]{{{_MIN_ENCODED},}}={{0,2}}")
_HEX = re.compile(rf"(?:(?:\\x|0x)?[0-9a-fA-F]{{2}}[ :]?){{{_MIN_ENCODED // 2},}}")
_PERCENT = re.compile(r"%[0-9a-fA-F]{2}")
_UNICODE_ESCAPE = re.compile(r"\\u[0-9a-fA-F]{4}")
_SPACES = re.compile(r"\s+")


def _cased_ascii(char: str) -> str | None:
    """The ASCII letter or digit ``char`` imitates, if it imitates one."""
    if char.isascii():
        return char
    found = _homoglyph_table().get(char)
    return found


@lru_cache(maxsize=1)
def _homoglyph_table() -> dict[str, str]:
    """Non-ASCII characters that confusable-homoglyphs lists as looking like one ASCII letter or
    digit (Cyrillic o, Greek omicron, Cherokee GO ...), from the library's Unicode data."""
    table: dict[str, str] = {}
    for char, entry in confusables.confusables_data.items():
        # Accented Latin letters are spelling, not disguise (accents are removed later anyway);
        # the micro sign (NFKC: Greek mu) is a unit in every lab report.
        name = unicodedata.name(char, "") if len(char) == 1 else ""
        if len(char) != 1 or char.isascii() or name.startswith("LATIN") or char in "\u03bc\u00b5":
            continue
        for glyph in entry:
            target = glyph.get("c", "")
            if len(target) == 1 and target.isascii() and target.isalnum():
                # Capital I and small l look alike; the character's name says which it imitates.
                if target == "l" and (name.endswith(" I") or "IOTA" in name):
                    target = "i"
                table[char] = target
                break
    return table


def _is_cjk(char: str) -> bool:
    return (
        "\u2e80" <= char <= "\u9fff" or "\uf900" <= char <= "\ufaff" or "\u3000" <= char <= "\u30ff"
    )


def fold(text: str) -> tuple[str, bool]:
    """NFKC, invisible characters dropped, homoglyphs made ASCII, accents removed, case folded.

    Returns the folded text and whether it was disguised: a lookalike letter replaced (in a
    word with Latin letters, or a word made only of lookalikes), or an invisible character
    inside a word. Words in Greek or Cyrillic that use other letters too are left alone.
    """
    text = unicodedata.normalize("NFKC", html.unescape(text))
    visible = "".join(
        c for c in text if c in "\t\n" or unicodedata.category(c) not in _INVISIBLE_CATEGORIES
    )
    # Invisible characters inside words (zero-width spaces, soft hyphens) are a disguise.
    disguised = any(
        unicodedata.category(c) == "Cf" and 0 < i < len(text) - 1 and text[i - 1].isalnum()
        for i, c in enumerate(text)
    )
    text = visible
    out: list[str] = []
    for word in re.split(r"(\s+)", text):
        mapped = word
        if any(c.isascii() and c.isalpha() for c in word) or _all_lookalikes(word):
            mapped = "".join(_cased_ascii(c) or c for c in word)
            disguised = disguised or (mapped != word and any(not c.isascii() for c in word))
        out.append(mapped)
    decomposed = unicodedata.normalize("NFD", "".join(out))
    stripped = "".join(c for c in decomposed if unicodedata.category(c) != "Mn")
    return unicodedata.normalize("NFC", stripped).casefold(), disguised


def _all_lookalikes(word: str) -> bool:
    letters = [c for c in word if c.isalpha()]
    table = _homoglyph_table()
    return len(letters) >= 2 and all(c in table and not _is_cjk(c) for c in letters)


def unleet(text: str) -> str:
    """Digits and symbols read as the letters they replace, inside words that have letters."""
    return _LEET_TOKEN.sub(
        lambda m: m.group(0).translate(_LEET) if _LEET_CHARS.search(m.group(0)) else m.group(0),
        text,
    )


def _mostly_spaced(text: str) -> bool:
    tokens = text.split()
    singles = sum(1 for t in tokens if len(t) == 1)
    return len(tokens) >= 6 and singles >= 0.6 * len(tokens)


def despace(text: str) -> str:
    """Letter-spaced text ("i g n o r e  a l l") joined into words; other text unchanged.

    A line made mostly of single characters is rejoined word by word (words are the runs
    between wider gaps); elsewhere, runs of four or more spaced letters are joined.
    """
    if _mostly_spaced(text):
        return " ".join(w.replace(" ", "") for w in re.split(r"\s{2,}", text.strip()))
    return _SPACED.sub(lambda m: re.sub(r"[ .\-_*·|/]", "", m.group(0)), text)


def squash(text: str) -> str:
    """Whitespace runs made one space."""
    return _SPACES.sub(" ", text).strip()


def _printable(decoded: str) -> bool:
    if len(decoded) < 6:
        return False
    good = sum(1 for c in decoded if c.isprintable() or c in "\n\t")
    letters = sum(1 for c in decoded if c.isalpha())
    return good / len(decoded) >= 0.9 and letters / len(decoded) >= 0.5


def _b64(token: str) -> str | None:
    if token.isdigit() or (token.isalpha() and (token.islower() or token.isupper())):
        return None  # a plain word or number, not an encoding
    padded = token + "=" * (-len(token) % 4)
    try:
        raw = base64.b64decode(padded.replace("-", "+").replace("_", "/"), validate=True)
        decoded = raw.decode("utf-8")
    except (binascii.Error, ValueError):
        return None
    return decoded if _printable(decoded) else None


def _hex(token: str) -> str | None:
    digits = re.sub(r"\\x|0x|[ :]", "", token)
    if len(digits) % 2 or len(digits) < _MIN_ENCODED:
        return None
    try:
        decoded = bytes.fromhex(digits).decode("utf-8")
    except ValueError:
        return None
    return decoded if _printable(decoded) else None


def decoded_parts(line: str) -> list[tuple[str, str]]:
    """Text hidden in one line by an encoding: ``(how, decoded text)`` pairs."""
    found: list[tuple[str, str]] = []
    for match in _BASE64.finditer(line):
        text = _b64(match.group(0))
        if text is not None:
            found.append(("base64", text))
    for match in _HEX.finditer(line):
        text = _hex(match.group(0).strip())
        if text is not None:
            found.append(("hex", text))
    if len(_PERCENT.findall(line)) >= 3:
        found.append(("percent-encoding", unquote(unquote(line).replace("+", " "))))
    if len(_UNICODE_ESCAPE.findall(line)) >= 3:
        decoded = _UNICODE_ESCAPE.sub(lambda m: chr(int(m.group(0)[2:], 16)), line)
        found.append(("unicode escapes", decoded))
    return found


def hidden_parts(text: str) -> list[tuple[int, str, str]]:
    """Text a rendered document would not show: ``(line, how, text)`` for HTML comments,
    markdown link and image text and targets, and HTML tags' attribute text."""
    parts: list[tuple[int, str, str]] = []
    for match in _HTML_COMMENT.finditer(text):
        parts.append((text.count("\n", 0, match.start()), "HTML comment", match.group(1)))
    for match in _MD_LINK.finditer(text):
        line = text.count("\n", 0, match.start())
        parts.append((line, "markdown link", f"{match.group(1)} {unquote(match.group(2))}"))
    for match in _TAG.finditer(text):
        line = text.count("\n", 0, match.start())
        parts.append((line, "HTML markup", match.group(0)[1:-1]))
    return parts


def visible(text: str) -> str:
    """The text as a reader sees it: comments removed, links reduced to their text (markup is
    kept: chat markup such as ``<|im_start|>`` is itself a cue)."""
    text = _HTML_COMMENT.sub(lambda m: "\n" * m.group(0).count("\n"), text)
    return _MD_LINK.sub(lambda m: m.group(1), text)


_COMPACT = "letter spacing, letters only"
_Variant = Callable[[str], str]


def _spaced(folded: str) -> str:
    return squash(despace(folded))


def _leet(folded: str) -> str:
    return squash(unleet(despace(folded)))


def _rot13(folded: str) -> str:
    return squash(codecs.encode(folded, "rot13"))


def _compact(folded: str) -> str:
    if not (_mostly_spaced(folded) or _SPACED.search(folded)):
        return ""
    return "".join(unleet(despace(folded)).split())


#: Each variant: how it reads a folded line, its name, and whether finding something only there
#: means it was concealed. The plain reading (``squash(fold(line))``) comes first.
VARIANTS: tuple[tuple[_Variant, str, bool], ...] = (
    (squash, "text", False),
    (_spaced, "letter spacing", True),
    (_leet, "leetspeak", True),
    (_rot13, "ROT13", True),
    (_compact, _COMPACT, True),
)


def _reading(
    lines: list[str], first: int, via: str, concealed: bool, raw: str = ""
) -> list[Reading]:
    folded: list[str] = []
    disguised: set[int] = set()
    for index, line in enumerate(lines):
        text, odd = fold(line)
        folded.append(text)
        if odd:
            disguised.add(first + index)
    out: list[Reading] = []
    seen: set[str] = set()
    for variant, name, hidden in VARIANTS:
        normal = [variant(line) for line in folded]
        joined = "\n".join(normal)
        if joined in seen or (name == _COMPACT and not any(normal)):
            continue  # nothing new to read
        seen.add(joined)
        starts: list[int] = []
        offset = 0
        for text in normal:
            starts.append(offset)
            offset += len(text) + 1
        label = via if name == "text" else (name if via == "text" else f"{via}, {name}")
        out.append(
            Reading(
                text=joined,
                first_line=first,
                line_starts=tuple(starts),
                via=label,
                concealed=concealed or hidden,
                disguised_lines=frozenset(disguised),
                raw=raw,
                compact=name == _COMPACT,
            )
        )
    return out


_BROKEN_WORD = re.compile(r"(\w)-[ \t]*\n[ \t]*(\w+)")


def readings(text: str) -> list[Reading]:
    """Every normalised reading of ``text``: the visible text (lines joined, so instructions
    split across lines are read whole) in each variant, then hidden and decoded parts."""
    text = text[:MAX_SCAN_CHARS].replace("\r\n", "\n").replace("\r", "\n")
    # "in-\nstructions": the word is joined on the first line, the line count kept.
    joined = _BROKEN_WORD.sub(lambda m: m.group(1) + m.group(2) + "\n", text)
    found = _reading(visible(joined).split("\n"), 0, "text", False)
    decoded_budget = _MAX_DECODED
    sources: list[tuple[int, str, str]] = hidden_parts(text)
    sources += [(i, "", line) for i, line in enumerate(text.split("\n"))]
    for index, how, part in sources:
        if how:
            found += _reading([part.replace("\n", " ")], index, how, True, raw=part)
        for encoding, decoded in decoded_parts(part):
            if decoded_budget <= 0:
                break
            decoded_budget -= 1
            found += _reading([decoded.replace("\n", " ")], index, encoding, True, raw=decoded)
    return found


__all__ = ["MAX_SCAN_CHARS", "Reading", "despace", "fold", "readings", "unleet", "visible"]
