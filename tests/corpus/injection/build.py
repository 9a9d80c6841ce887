# ruff: noqa: RUF001 - homoglyph tables: lookalike characters on purpose
"""Build the labelled injection corpus (``dev.jsonl``, ``heldout.jsonl``, ``fresh.jsonl``)
from ``sources.py``.

Run from the repository root: ``python tests/corpus/injection/build.py``. Deterministic (fixed
seed): the committed files are its output. Each injected payload is placed, as written and in
several disguises (``STYLES``), inside a clinical carrier note; each benign instruction is
placed in two carriers, and every carrier alone is benign too.
"""

from __future__ import annotations

import base64
import codecs
import json
import random
import sys
from collections.abc import Callable
from pathlib import Path
from urllib.parse import quote

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from sources import (  # noqa: E402
    CARRIERS,
    DEV_BENIGN,
    DEV_PAYLOADS,
    FRESH_BENIGN,
    FRESH_PAYLOADS,
    HELDOUT_BENIGN,
    HELDOUT_PAYLOADS,
)

_CYRILLIC = str.maketrans("aceiopsxyACEHIKMOPTX", "асеіорѕхуАСЕНІКМОРТХ")
_GREEK = str.maketrans("AEHIKMNOPTXYZoiv", "ΑΕΗΙΚΜΝΟΡΤΧΥΖοιν")
_LEET = str.maketrans("aeiostAEIOST", "4310574310$7")


def _spaced(text: str) -> str:
    return "  ".join(" ".join(word) for word in text.split())


def _spaced_single(text: str) -> str:
    return " ".join(c for c in text if not c.isspace())


def _zero_width(text: str) -> str:
    return "\u200b".join(text)


def _fullwidth(text: str) -> str:
    return "".join(chr(ord(c) + 0xFEE0) if "!" <= c <= "~" else c for c in text)


def _split_lines(text: str) -> str:
    words = text.split()
    step = max(1, len(words) // 4)
    return "\n".join(" ".join(words[i : i + step]) for i in range(0, len(words), step))


def _hyphen_break(text: str) -> str:
    words = text.split()
    return "\n".join(f"{w[: len(w) // 2]}-\n{w[len(w) // 2 :]}" if len(w) > 7 else w for w in words)


STYLES: dict[str, Callable[[str], str]] = {
    "plain": lambda t: t,
    "homoglyph_cyrillic": lambda t: t.translate(_CYRILLIC),
    "homoglyph_greek": lambda t: t.translate(_GREEK),
    "fullwidth": _fullwidth,
    "zero_width": _zero_width,
    "spaced": _spaced,
    "spaced_single": _spaced_single,
    "leetspeak": lambda t: t.translate(_LEET),
    "base64": lambda t: "Ref: " + base64.b64encode(t.encode()).decode(),
    "hex": lambda t: "Checksum " + t.encode().hex(),
    "rot13": lambda t: codecs.encode(t, "rot13"),
    "url_encoded": lambda t: "Link: https://portal.example/r?q=" + quote(t),
    "html_comment": lambda t: f"<!-- {t} -->",
    "html_hidden_span": lambda t: f'<span style="display:none">{t}</span>',
    "markdown_system_link": lambda t: f"[SYSTEM]({quote(t)})",
    "markdown_bold_system": lambda t: f"**SYSTEM:** {t}",
    "json_role": lambda t: json.dumps({"role": "system", "content": t}),
    "json_tool_call": lambda t: json.dumps(
        {"tool": "file_document", "arguments": {"code": "11506-3", "note": t}}
    ),
    "split_lines": _split_lines,
    "hyphen_break": _hyphen_break,
    "upper": str.upper,
}
_DISGUISES = [s for s in STYLES if s != "plain"]
_NON_LATIN_SAFE = ["zero_width", "fullwidth", "html_comment", "base64", "split_lines", "json_role"]


def _embed(rng: random.Random, carrier: str, insert: str) -> str:
    lines = carrier.split("\n")
    at = rng.randint(1, len(lines))
    return "\n".join([*lines[:at], insert, *lines[at:]])


def build(
    split: str, payloads: list[tuple[str, str]], benign: list[str], seed: int
) -> list[dict[str, object]]:
    rng = random.Random(seed)
    rows: list[dict[str, object]] = []
    for n, (lang, payload) in enumerate(payloads):
        pool = _DISGUISES if lang != "zh" else _NON_LATIN_SAFE
        styles = ["plain", *rng.sample(pool, 5)]
        for style in styles:
            rows.append(
                {
                    "id": f"{split}-inj-{n:02d}-{style}",
                    "label": 1,
                    "lang": lang,
                    "style": style,
                    "text": _embed(rng, rng.choice(CARRIERS), STYLES[style](payload)),
                }
            )
    for n, sentence in enumerate(benign):
        for k in range(2):
            rows.append(
                {
                    "id": f"{split}-ben-{n:02d}-{k}",
                    "label": 0,
                    "lang": "mixed",
                    "style": "benign",
                    "text": _embed(rng, rng.choice(CARRIERS), sentence),
                }
            )
    return rows


def main() -> None:
    dev = build("dev", DEV_PAYLOADS, DEV_BENIGN, seed=13)
    dev += [
        {"id": f"dev-carrier-{n:02d}", "label": 0, "lang": "mixed", "style": "benign", "text": c}
        for n, c in enumerate(CARRIERS)
    ]
    heldout = build("heldout", HELDOUT_PAYLOADS, HELDOUT_BENIGN, seed=31)
    fresh = build("fresh", FRESH_PAYLOADS, FRESH_BENIGN, seed=47)
    for name, rows in (("dev", dev), ("heldout", heldout), ("fresh", fresh)):
        with (HERE / f"{name}.jsonl").open("w", encoding="utf-8") as out:
            for row in rows:
                out.write(json.dumps(row, ensure_ascii=False) + "\n")
        print(f"{name}: {len(rows)} rows")


if __name__ == "__main__":
    main()
