"""Write carebound's labelled corpus of synthetic faxed documents (seeded, deterministic).

Run from the repository root: ``python scripts/make_document_corpus.py`` (``--out DIR`` writes
elsewhere). It writes ``documents.jsonl``, one labelled document a line, into
``carebound/eval/corpus/``; a test checks the committed file equals this script's output, and
``python scripts/train_local_model.py`` trains the local classifier on its ``train`` split.

Every document is labelled with its LOINC document type (the four the rule classifier knows, or
``unknown``), date, patient (name, birth date, record number) and sender, and with how it was
made: language (en/es/fr), layout, OCR noise, a cover sheet, a second document in the same fax,
injected instructions. The referral faxes in ``extraction`` carry what a ServiceRequest and a
Patient draft would hold. Patients, senders and doctors of the ``train`` and ``heldout`` splits
are disjoint; the templates and phrase pools are shared (the held-out split measures robustness
to new names, noise and combinations, not to unseen wording).
"""

from __future__ import annotations

import argparse
import json
import random
import sys
from datetime import date, timedelta
from pathlib import Path

from stdnum import luhn

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _corpus_text import (
    CLINICS,
    COVER,
    DOCTORS,
    FAMILY,
    GIVEN,
    IMAGING,
    INJECTIONS,
    LAB,
    PAYERS,
    PROGRESS,
    REASONS,
    REFERRAL,
    RENDERERS,
    SPECIALTIES,
    UNKNOWN,
    UNKNOWN_KINDS,
    Doc,
)

SEED = 20260519
DEFAULT_OUT = Path(__file__).resolve().parents[1] / "carebound" / "eval" / "corpus"
#: How many documents of each type (plus ``EXTRACTION_FAXES`` referral faxes with extractions).
PER_TYPE = {PROGRESS: 72, REFERRAL: 64, LAB: 72, IMAGING: 72, UNKNOWN: 72}
EXTRACTION_FAXES = 48
HELDOUT_SHARE = 0.45
LAYOUTS = ("sections", "form", "narrative")
_OCR_SWAPS = [
    ("l", "1"),
    ("O", "0"),
    ("o", "0"),
    ("rn", "m"),
    ("m", "rn"),
    ("e", "c"),
    ("i", "l"),
    ("S", "5"),
    ("B", "8"),
    ("a", "o"),
    ("t", "f"),
]


def _day(rng: random.Random, start: date, days: int) -> str:
    return (start + timedelta(days=rng.randrange(days))).isoformat()


def _patient(rng: random.Random, split: str) -> dict[str, str]:
    given, family = rng.choice(GIVEN[split]), rng.choice(FAMILY[split])
    return {
        "name": f"{given} {family}",
        "given": given,
        "family": family,
        "birth_date": _day(rng, date(1938, 1, 1), 365 * 70),
        "mrn": f"MRN-{rng.randrange(100000, 999999)}",
    }


def _npi(rng: random.Random) -> str:
    body = f"{rng.randrange(1, 3)}{rng.randrange(10**7, 10**8)}"
    return body + luhn.calc_check_digit("80840" + body)


def _referral_facts(rng: random.Random, lang: str) -> dict[str, str]:
    code, *reasons = rng.choice(REASONS)
    reason = {"en": reasons[0], "es": reasons[1], "fr": reasons[2]}[lang]
    return {
        "specialty": rng.choice(SPECIALTIES[lang]),
        "reason": reason,
        "diagnosis_code": code,
        "priority": rng.choice(["routine", "routine", "urgent"]),
        "referring_npi": _npi(rng),
        "payer": rng.choice(PAYERS),
        "member_id": f"{rng.choice('ABKMZ')}{rng.randrange(10**8, 10**9)}",
        "phone": f"555-{rng.randrange(100, 999)}-{rng.randrange(1000, 9999)}",
        "sex": rng.choice(["female", "male"]),
    }


def _ocr(rng: random.Random, text: str, level: int) -> str:
    """Scanner damage: look-alike swaps, dropped letters, and lines broken mid-word."""
    if level == 0:
        return text
    rate = 0.012 * level
    out: list[str] = []
    i = 0
    while i < len(text):
        for before, after in _OCR_SWAPS:
            if text.startswith(before, i) and rng.random() < rate * 3:
                out.append(after)
                i += len(before)
                break
        else:
            if not (text[i].isalpha() and rng.random() < rate / 2):  # else: dropped
                out.append(text[i])
            i += 1
    lines = []
    for scanned in "".join(out).split("\n"):
        rest = scanned
        while len(rest) > 38 and rng.random() < 0.25 * level:
            cut = rng.randrange(20, len(rest) - 8)
            lines.append(rest[:cut] + rng.choice(["-", "", " "]))
            rest = rest[cut:]
        lines.append(rest)
    return "\n".join(lines)


def _render(
    rng: random.Random,
    code: str,
    split: str,
    lang: str,
    extra: dict[str, str],
    *,
    patient: dict[str, str] | None = None,
) -> tuple[list[str], dict[str, object], Doc]:
    """One document's lines, its label, and what it was made from (about ``patient`` when
    given: the second document of a fax is about the first one's patient)."""
    doc = Doc(
        rng=rng,
        lang=lang,
        layout=rng.choice(LAYOUTS),
        patient=patient or _patient(rng, split),
        sender=rng.choice(CLINICS[split]),
        doctor=rng.choice(DOCTORS[split]),
        date=_day(rng, date(2025, 1, 1), 600),
        extra=extra,
    )
    about: dict[str, str] | None = {k: doc.patient[k] for k in ("name", "birth_date", "mrn")}
    kind = code
    if code == UNKNOWN:
        kind, render, has_patient = rng.choice(UNKNOWN_KINDS)
        date_word = "Fecha" if lang == "es" else "Date"
        lines = [doc.sender, f"{date_word}: {doc.when()}"]
        lines += doc.who() if has_patient else []
        lines += render(doc)
        about = about if has_patient else None
    else:
        lines = RENDERERS[code](doc)
    label = {
        "type": code,
        "kind": kind,
        "date": doc.date,
        "patient": about,
        "sender": doc.sender,
        "layout": doc.layout,
    }
    return lines, label, doc


def _document(
    rng: random.Random, number: int, code: str, split: str, extraction: bool
) -> dict[str, object]:
    lang = "en" if extraction else rng.choices(["en", "es", "fr"], [0.7, 0.15, 0.15])[0]
    extra = _referral_facts(rng, lang) if code == REFERRAL else {}
    lines, label, doc = _render(rng, code, split, lang, extra)
    types = [code]
    if not extraction and rng.random() < 0.15:  # a second document in the same fax
        second = rng.choice([PROGRESS, LAB, IMAGING])
        more, _, _ = _render(rng, second, split, lang, {}, patient=doc.patient)
        lines += ["", "- - - page 2 - - -", "", *more]
        types.append(second)
    cover = rng.random() < 0.3
    if cover:
        to = rng.choice(CLINICS[split])
        sheet = [s.format(to=to, sender=label["sender"], pages=len(types) + 1) for s in COVER[lang]]
        lines = [*sheet, "", *lines]
    noise = rng.choices([0, 1, 2], [0.45, 0.35, 0.2])[0]
    lines = _ocr(rng, "\n".join(lines), noise).split("\n")
    injected = rng.random() < 0.14
    if injected:  # written into the fax after it was scanned: no scanner damage
        lines.insert(rng.randrange(1, len(lines) + 1), rng.choice(INJECTIONS[lang]))
    text = "\n".join(lines)
    layout = label.pop("layout")
    record: dict[str, object] = {
        "id": f"{split}-{number:04d}",
        "split": split,
        "label": {**label, "types": types},
        "traits": {
            "language": lang,
            "layout": layout,
            "ocr_noise": noise,
            "cover_sheet": cover,
            "multi_document": len(types) > 1,
            "injected": injected,
        },
        "text": text,
    }
    if extraction:
        p = label["patient"]
        assert isinstance(p, dict)
        given, family = p["name"].split(" ", 1)
        record["extraction"] = {
            "patient": {
                "given": given,
                "family": family,
                "birth_date": p["birth_date"],
                "sex": extra["sex"],
                "phone": extra["phone"],
                "mrn": p["mrn"],
            },
            "service_request": {
                "specialty": extra["specialty"],
                "reason": extra["reason"],
                "diagnosis_code": extra["diagnosis_code"],
                "priority": extra["priority"],
                "authored_on": label["date"],
                "requester": doc.doctor,
                "requester_npi": extra["referring_npi"],
            },
            "coverage": {"payer": extra["payer"], "member_id": extra["member_id"]},
        }
    return record


def build() -> list[dict[str, object]]:
    """Every record of the corpus, in order (the same list on every run)."""
    rng = random.Random(SEED)
    plan = [(code, False) for code, n in PER_TYPE.items() for _ in range(n)]
    plan += [(REFERRAL, True)] * EXTRACTION_FAXES
    splits: list[str] = []
    for group in dict.fromkeys(plan):  # each type, and the extraction faxes, split alike
        n = plan.count(group)
        held = round(n * HELDOUT_SHARE)
        order = ["heldout"] * held + ["train"] * (n - held)
        rng.shuffle(order)
        splits += order
    return [
        _document(rng, number, code, split, extraction)
        for number, ((code, extraction), split) in enumerate(zip(plan, splits, strict=True))
    ]


def main(argv: list[str] | None = None) -> int:
    """Write ``documents.jsonl`` into ``--out``."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="folder to write into")
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    lines = [json.dumps(r, ensure_ascii=False, sort_keys=True) for r in build()]
    (args.out / "documents.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
    print(f"wrote {len(lines)} documents to {args.out / 'documents.jsonl'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
