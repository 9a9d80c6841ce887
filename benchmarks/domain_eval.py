"""Domain evaluation: how well reconciliation and the document check decide, on a labelled set.

Every case is labelled by hand from the rules of the domain (DOMAIN.md, HL7 Identity Matching,
USPS Pub 28, FHIR name.use), not from what the code does: each *perturbation* of a person's
record says which field it changes and whether that change is low risk (fix it and audit it)
or high risk (a person decides), or changes nothing a reviewer should see (``none``). Every
perturbation is applied to every *base person*: our own records built on public examples (the
Synthea identity test record, the Da Vinci PAS subscriber, the FHIR spec's Patient f001, and a
few of our own), read from ``../shared/fixtures/public`` when it is there, and the same values
written in below when it is not. Pairs of one low and one high perturbation are added so a fix
and a hold have to be told apart in one record.

Each case runs through the reconciler's decision code (``analyse``: compare the referral, the
EHR chart and, for payer perturbations, the payer's record; then decide per field what is fixed
automatically and what is held), the same code the agent runs, without Redis. The document
cases run ``missing_documents`` on referral bundles whose missing items are labelled.

Printed:

* held high-risk differences: precision and recall (a labelled-high field that was held);
* auto-fixed low-risk differences: precision and recall;
* false holds: fields held that are labelled low or none (count and rate over those fields);
* missed documents: labelled missing items not reported (and items reported but not missing).

Usage::

    python benchmarks/domain_eval.py [--json] [--verbose]
"""

from __future__ import annotations

import argparse
import base64
import copy
import json
import sys
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path
from typing import Any, Literal

from carebound.agents._referral import chase_settings
from carebound.agents.packet_builder import evidence_case
from carebound.agents.reconciler._findings import analyse
from carebound.domain.documents import missing_documents
from carebound.domain.identity import PersonRecord
from carebound.fhir import ReferralCase, parse_bundle
from carebound.guardrails import load_policy_pack

ROOT = Path(__file__).resolve().parents[1]
PUBLIC = ROOT.parent / "shared" / "fixtures" / "public"
SCENARIOS = ROOT / "scenarios"

Label = Literal["low", "high", "none"]


# --- base people ---------------------------------------------------------------------------------


def _synthea_noble() -> PersonRecord:
    """Synthea's identity test record (seed 1415), from the public copy when present."""
    family, given, born = "Noble", ["Margarita", "Ebony"], date(1944, 3, 17)
    line, city, zip5 = "7217 BRIGHTON HILL LN", "RALEIGH", "27616"
    path = PUBLIC / "synthea" / "test_records.json"
    if path.is_file():
        record = json.loads(path.read_text())["records"][0]
        seed = next(s for s in record["seeds"] if s["seedId"] == "1415")
        family, born = seed["familyName"], date.fromisoformat(record["dateOfBirth"])
        line, city, zip5 = seed["addressLines"][0].strip(), seed["city"], seed["zipCode"]
    return PersonRecord(
        source="ehr",
        family=family,
        given=given,
        birth_date=born,
        sex="female",
        address_line=[line],
        city=city,
        state="NC",
        postal_code=zip5,
        phone="+19194819376",
        member_id="BCN194481937",
        payer_id="BCBS-NC",
    )


def _pas_smith() -> PersonRecord:
    """The Da Vinci PAS subscriber (JOE SMITH, MIN 12345678901), with a birth date of ours."""
    member = "12345678901"
    path = PUBLIC / "davinci-pas-test-kit" / "conformant_pas_bundle_v110.json"
    if path.is_file():
        bundle = json.loads(path.read_text())
        patient = next(
            e["resource"] for e in bundle["entry"] if e["resource"]["resourceType"] == "Patient"
        )
        member = patient["identifier"][0]["value"]
    return PersonRecord(
        source="ehr",
        family="Smith",
        given=["Joe"],
        birth_date=date(1961, 8, 14),
        sex="male",
        address_line=["111 1ST ST"],
        city="SAN DIEGO",
        state="CA",
        postal_code="92101",
        phone="+16195550100",
        member_id=member,
        payer_id="789312",
    )


def _own(
    family: str,
    given: list[str],
    born: date,
    sex: str,
    line: str,
    city: str,
    state: str,
    zip5: str,
    phone: str,
) -> PersonRecord:
    return PersonRecord(
        source="ehr",
        family=family,
        given=given,
        birth_date=born,
        sex=sex,
        address_line=[line],
        city=city,
        state=state,
        postal_code=zip5,
        phone=phone,
        member_id=f"ACM{born:%Y%m%d}01",
        payer_id="ACME",
    )


BASES: dict[str, Callable[[], PersonRecord]] = {
    "synthea-noble": _synthea_noble,
    "pas-smith": _pas_smith,
    # The FHIR spec's Patient f001 (Pieter van de Heuvel, 1944-11-17), moved to a US address.
    "fhir-f001": lambda: _own(
        "van de Heuvel",
        ["Pieter"],
        date(1944, 11, 17),
        "male",
        "23 VAN EGMOND CT",
        "ALBANY",
        "NY",
        "12203",
        "+15185550123",
    ),
    "delgado": lambda: _own(
        "Delgado",
        ["Rosa", "Maria"],
        date(1958, 7, 14),
        "female",
        "42 BIRCH LN",
        "SPRINGFIELD",
        "IL",
        "62704",
        "+12175550144",
    ),
    "perez": lambda: _own(
        "Pérez",
        ["José", "Luis"],
        date(1979, 5, 3),
        "male",
        "815 OAK ST APT 4B",
        "AUSTIN",
        "TX",
        "78704",
        "+15125550177",
    ),
    "nguyen": lambda: _own(
        "Nguyen-Tran",
        ["Linh"],
        date(1990, 11, 23),
        "female",
        "9 HARBOR WAY",
        "OAKLAND",
        "CA",
        "94607",
        "+15105550188",
    ),
    "okafor": lambda: _own(
        "Okafor",
        ["Adaeze", "Chioma"],
        date(1961, 4, 12),
        "female",
        "300 MAPLE AVE UNIT 12",
        "COLUMBUS",
        "OH",
        "43215",
        "+16145550199",
    ),
    "garcia": lambda: _own(
        "García Márquez",
        ["Sofía"],
        date(2001, 2, 9),
        "female",
        "77 PINE RD",
        "DENVER",
        "CO",
        "80202",
        "+13035550111",
    ),
}


# --- perturbations (hand-labelled) ---------------------------------------------------------------

_NICKNAMES = {
    "Margarita": "Rita",
    "Pieter": "Piet",
    "Rosa": "Rosie",
    "José": "Pepe",
    "Linh": "Linh",
    "Sofía": "Sofi",
}
_ACCENTS = str.maketrans("áéíóúñÁÉÍÓÚÑ", "aeiounAEIOUN")


@dataclass(frozen=True)
class Perturbation:
    """One change to the referral's copy of a person, and its label per field."""

    name: str
    labels: dict[str, Label]
    apply: Callable[[PersonRecord], PersonRecord | None]
    """The referral record (None: not applicable to this person)."""
    payer: Callable[[PersonRecord], PersonRecord] | None = None
    """When set, the payer's record (the referral is then the person unchanged)."""


def _set(**fields: Any) -> Callable[[PersonRecord], PersonRecord]:
    return lambda r: r.model_copy(update=fields)


def _upper_family(r: PersonRecord) -> PersonRecord:
    return r.model_copy(update={"family": (r.family or "").upper()})


def _strip_accents(r: PersonRecord) -> PersonRecord | None:
    family, given = (r.family or "").translate(_ACCENTS), [g.translate(_ACCENTS) for g in r.given]
    if family == r.family and given == r.given:
        return None
    return r.model_copy(update={"family": family, "given": given})


def _nickname(r: PersonRecord) -> PersonRecord | None:
    first = r.given[0]
    nick = _NICKNAMES.get(first)
    if nick is None or nick == first or nick in ("Sofi", "Pepe"):
        return None  # not a nickname the public lists know: not a fair low-risk case
    return r.model_copy(update={"given": [nick, *r.given[1:]]})


def _typo(r: PersonRecord) -> PersonRecord | None:
    family = r.family or ""
    if len(family) < 5 or " " in family or "-" in family:
        return None
    # One letter replaced by its neighbour on the keyboard row (Delgado -> Delgafo).
    index = len(family) - 2
    wrong = "f" if family[index] != "f" else "g"
    return r.model_copy(update={"family": family[:index] + wrong + family[index + 1 :]})


def _abbreviation(r: PersonRecord) -> PersonRecord | None:
    long = {"LN": "Lane", "ST": "Street", "AVE": "Avenue", "RD": "Road", "CT": "Court"}
    line = r.address_line[0]
    for short, full in long.items():
        if f" {short}" in line:
            return r.model_copy(update={"address_line": [line.replace(f" {short}", f" {full}")]})
    return None


def _unit_designator(r: PersonRecord) -> PersonRecord | None:
    line = r.address_line[0]
    for designator in (" APT ", " UNIT "):
        if designator in line:
            return r.model_copy(update={"address_line": [line.replace(designator, " # ")]})
    return None


def _other_unit(r: PersonRecord) -> PersonRecord | None:
    line = r.address_line[0]
    if " APT " in line or " UNIT " in line:
        return r.model_copy(update={"address_line": [line[:-1] + "9"]})
    return None


def _zip4(r: PersonRecord) -> PersonRecord:
    return r.model_copy(update={"postal_code": f"{r.postal_code}-1234"})


def _phone_format(r: PersonRecord) -> PersonRecord:
    digits = (r.phone or "")[-10:]
    return r.model_copy(update={"phone": f"({digits[:3]}) {digits[3:6]}-{digits[6:]}"})


def _dob(days: int) -> Callable[[PersonRecord], PersonRecord]:
    def shift(r: PersonRecord) -> PersonRecord:
        born = r.birth_date or date(2000, 1, 1)
        return r.model_copy(update={"birth_date": born + timedelta(days=days)})

    return shift


def _swap(r: PersonRecord) -> PersonRecord | None:
    born = r.birth_date
    if born is None or born.day > 12 or born.day == born.month:
        return None
    return r.model_copy(update={"birth_date": date(born.year, born.day, born.month)})


def _lost_hyphen(r: PersonRecord) -> PersonRecord | None:
    family = r.family or ""
    if "-" not in family:
        return None
    return r.model_copy(update={"family": family.split("-")[0]})


def _other_sex(r: PersonRecord) -> PersonRecord:
    return r.model_copy(update={"sex": "male" if r.sex == "female" else "female"})


def _initial(r: PersonRecord) -> PersonRecord:
    return r.model_copy(update={"given": [r.given[0][0], *r.given[1:]]})


def _street_number(r: PersonRecord) -> PersonRecord:
    number, rest = r.address_line[0].split(" ", 1)
    return r.model_copy(update={"address_line": [f"{int(number) + 2} {rest}"]})


PERTURBATIONS: list[Perturbation] = [
    Perturbation("identical", {}, lambda r: r),
    Perturbation("family in upper case", {"name.family": "low"}, _upper_family),
    Perturbation("accents dropped", {"name.family": "low", "name.given": "low"}, _strip_accents),
    Perturbation("nickname for the legal first name", {"name.given": "low"}, _nickname),
    Perturbation("one-letter typo in the family name", {"name.family": "low"}, _typo),
    Perturbation("street suffix spelled out", {"address": "low"}, _abbreviation),
    Perturbation("unit designator APT/UNIT vs #", {"address": "low"}, _unit_designator),
    Perturbation("ZIP+4 for ZIP5", {"address.postalCode": "low"}, _zip4),
    Perturbation("phone formatting", {"telecom.phone": "low"}, _phone_format),
    Perturbation(
        "member id punctuation",
        {"identifier.member_id": "low"},
        lambda r: r.model_copy(
            update={"member_id": f"{(r.member_id or '')[:3]}-{(r.member_id or '')[3:]}"}
        ),
    ),
    Perturbation("birth date one day off", {"birthDate": "high"}, _dob(1)),
    Perturbation("birth date a year off", {"birthDate": "high"}, _dob(365)),
    Perturbation("day and month swapped", {"birthDate": "high"}, _swap),
    Perturbation("sex differs", {"gender": "high"}, _other_sex),
    Perturbation("hyphenated surname lost", {"name.family": "high"}, _lost_hyphen),
    Perturbation("another family name", {"name.family": "high"}, _set(family="Whitfield")),
    Perturbation("initial for the first name", {"name.given": "high"}, _initial),
    Perturbation("another street number", {"address": "high"}, _street_number),
    Perturbation("another unit", {"address": "high"}, _other_unit),
    Perturbation("another phone", {"telecom.phone": "high"}, _set(phone="+12025550999")),
    Perturbation(
        "another member id", {"identifier.member_id": "high"}, _set(member_id="ZZZ000000001")
    ),
    Perturbation("another payer", {"coverage.payor": "high"}, _set(payer_id="OTHER-PLAN")),
    Perturbation(
        "payer agrees",
        {},
        lambda r: r,
        payer=lambda r: r.model_copy(
            update={
                "source": "payer",
                "address_line": [],
                "city": None,
                "state": None,
                "postal_code": None,
                "phone": None,
            }
        ),
    ),
    Perturbation(
        "payer birth date differs",
        {"birthDate": "high"},
        lambda r: r,
        payer=lambda r: r.model_copy(
            update={
                "source": "payer",
                "birth_date": (r.birth_date or date(2000, 1, 1)) + timedelta(days=1),
                "address_line": [],
                "city": None,
                "state": None,
                "postal_code": None,
                "phone": None,
            }
        ),
    ),
    Perturbation(
        "payer sex differs",
        {"gender": "high"},
        lambda r: r,
        payer=lambda r: _other_sex(r).model_copy(
            update={
                "source": "payer",
                "address_line": [],
                "city": None,
                "state": None,
                "postal_code": None,
                "phone": None,
            }
        ),
    ),
]

_LOW = [p for p in PERTURBATIONS if p.labels and set(p.labels.values()) == {"low"}]
_HIGH = [p for p in PERTURBATIONS if p.payer is None and set(p.labels.values()) == {"high"}]


@dataclass(frozen=True)
class Case:
    """One labelled reconciliation case."""

    name: str
    referral: PersonRecord
    ehr: PersonRecord
    payer: PersonRecord | None
    labels: dict[str, Label]


def _combine(a: Perturbation, b: Perturbation, ehr: PersonRecord) -> Case | None:
    first = a.apply(ehr.model_copy(update={"source": "referral"}))
    if first is None:
        return None
    second = b.apply(first)
    if second is None or set(a.labels) & set(b.labels):
        return None
    return Case(f"{a.name} + {b.name}", second, ehr, None, {**a.labels, **b.labels})


def reconciliation_cases() -> list[Case]:
    """Every perturbation on every base person, and low+high pairs."""
    cases: list[Case] = []
    for base_name, base in BASES.items():
        ehr = base()
        for p in PERTURBATIONS:
            referral = p.apply(ehr.model_copy(update={"source": "referral"}))
            if referral is None:
                continue
            payer = p.payer(ehr) if p.payer else None
            cases.append(Case(f"{base_name}: {p.name}", referral, ehr, payer, dict(p.labels)))
        for low in _LOW:
            for high in _HIGH:
                case = _combine(low, high, ehr)
                if case is not None:
                    cases.append(Case(f"{base_name}: {case.name}", *_fields(case)))
    return cases


def _fields(case: Case) -> tuple[PersonRecord, PersonRecord, PersonRecord | None, dict[str, Label]]:
    return case.referral, case.ehr, case.payer, case.labels


FIELDS = (
    "name.family",
    "name.given",
    "birthDate",
    "gender",
    "address",
    "address.postalCode",
    "telecom.phone",
    "identifier.member_id",
    "coverage.payor",
)


def decide(case: Case) -> dict[str, str]:
    """The action (``auto_fixed`` / ``held``) the reconciler takes per field of ``case``."""
    analysis = analyse(
        referral=case.referral,
        ehr=case.ehr,
        patient_id="p",
        coverage_id="c",
        household=None,
        payer=case.payer,
        payer_asked=case.payer is not None,
        may=lambda tool, args: True,
    )
    return {item.field: item.action for item in analysis.items}


# --- documents -----------------------------------------------------------------------------------


def _bundle(name: str) -> dict[str, Any]:
    return dict(json.loads((SCENARIOS / "cases" / name).read_text()))


def _resource(bundle: dict[str, Any], kind: str) -> dict[str, Any]:
    return next(e["resource"] for e in bundle["entry"] if e["resource"]["resourceType"] == kind)


def _drop(kind: str) -> Callable[[dict[str, Any]], None]:
    def edit(bundle: dict[str, Any]) -> None:
        bundle["entry"] = [e for e in bundle["entry"] if e["resource"]["resourceType"] != kind]

    return edit


def _note_dated(when: str) -> Callable[[dict[str, Any]], None]:
    return lambda b: _resource(b, "DocumentReference").update({"date": when})


def _coverage(**fields: Any) -> Callable[[dict[str, Any]], None]:
    return lambda b: _resource(b, "Coverage").update(fields)


def _untyped_note(bundle: dict[str, Any]) -> None:
    doc = _resource(bundle, "DocumentReference")
    doc.pop("type", None)
    text = "Progress note. Chief complaint: chest pressure. Assessment and plan: stable angina."
    doc["content"][0]["attachment"]["data"] = base64.b64encode(text.encode()).decode()


def _noop(bundle: dict[str, Any]) -> None:
    return None


def _no_note_lapsed(bundle: dict[str, Any]) -> None:
    _drop("DocumentReference")(bundle)
    _coverage(period={"end": "2020-12-31"})(bundle)


DOCUMENT_CASES: list[tuple[str, str, Callable[[dict[str, Any]], None], set[str]]] = [
    ("complete referral", "packet_complete.json", _noop, set()),
    ("no progress note", "packet_complete.json", _drop("DocumentReference"), {"11506-3"}),
    (
        "note older than 90 days",
        "packet_complete.json",
        _note_dated("2025-09-01T10:00:00Z"),
        {"11506-3"},
    ),
    ("note 30 days old", "packet_complete.json", _note_dated("2026-01-28T10:00:00Z"), set()),
    ("untyped note, readable", "packet_complete.json", _untyped_note, set()),
    ("no Coverage", "packet_complete.json", _drop("Coverage"), {"coverage"}),
    ("Coverage cancelled", "packet_complete.json", _coverage(status="cancelled"), {"coverage"}),
    (
        "active Coverage, period ended",
        "packet_complete.json",
        _coverage(period={"start": "2019-01-01", "end": "2021-12-31"}),
        {"coverage"},
    ),
    (
        "active Coverage, period starts later",
        "packet_complete.json",
        _coverage(period={"start": "2026-06-01"}),
        {"coverage"},
    ),
    (
        "active Coverage, period covers the order",
        "packet_complete.json",
        _coverage(period={"start": "2026-01-01", "end": "2026-12-31"}),
        set(),
    ),
    (
        "no note, lapsed coverage",
        "packet_complete.json",
        _no_note_lapsed,
        {"11506-3", "coverage"},
    ),
    ("chase case without a note", "chase_no_note.json", _noop, {"11506-3"}),
    ("stale note", "chase_stale_note.json", _noop, {"11506-3"}),
    ("prior auth required, none on file", "chase_prior_auth.json", _noop, {"prior-auth"}),
    ("PAS-built lapsed coverage", "coverage_lapsed.json", _noop, {"coverage"}),
]


def document_results() -> list[tuple[str, set[str], set[str]]]:
    """(case, labelled missing, reported missing) for every document case."""
    requirements = chase_settings(load_policy_pack("default")).requirements
    results = []
    for name, file, edit, expected in DOCUMENT_CASES:
        bundle = copy.deepcopy(_bundle(file))
        edit(bundle)
        case = ReferralCase.from_bundle(parse_bundle(bundle, source=name), source=name)
        evidence, classified = evidence_case(case, [])
        found = {m.code for m in missing_documents(evidence, requirements, classified=classified)}
        results.append((name, expected, found))
    return results


# --- scoring -------------------------------------------------------------------------------------


def _ratio(num: int, den: int) -> float:
    return num / den if den else 1.0


def evaluate(verbose: bool = False) -> dict[str, Any]:
    """Run every case and compute the figures."""
    held_tp = held_fp = held_fn = 0
    fixed_tp = fixed_fp = fixed_fn = 0
    false_holds = clean_fields = 0
    errors: list[str] = []
    cases = reconciliation_cases()
    for case in cases:
        actions = decide(case)
        for field in FIELDS:
            label = case.labels.get(field, "none")
            action = actions.get(field)
            if label == "high":
                held_tp += action == "held"
                held_fn += action != "held"
            elif action == "held":
                held_fp += 1
            if label == "low":
                fixed_tp += action == "auto_fixed"
                fixed_fn += action != "auto_fixed"
            elif action == "auto_fixed":
                fixed_fp += 1
            if label != "high":
                clean_fields += 1
                false_holds += action == "held"
            wrong = (
                (label == "high" and action != "held")
                or (label != "high" and action == "held")
                or (label == "low" and action != "auto_fixed")
            )
            if wrong:
                errors.append(f"{case.name}: {field} labelled {label}, got {action}")
    docs = document_results()
    missed = sum(len(expected - found) for _, expected, found in docs)
    extra = sum(len(found - expected) for _, expected, found in docs)
    labelled_missing = sum(len(expected) for _, expected, _ in docs)
    for name, expected, found in docs:
        if expected != found:
            errors.append(f"documents, {name}: labelled {sorted(expected)}, got {sorted(found)}")
    figures = {
        "reconciliation_cases": len(cases),
        "held_high_risk": {
            "precision": _ratio(held_tp, held_tp + held_fp),
            "recall": _ratio(held_tp, held_tp + held_fn),
            "labelled": held_tp + held_fn,
        },
        "auto_fixed_low_risk": {
            "precision": _ratio(fixed_tp, fixed_tp + fixed_fp),
            "recall": _ratio(fixed_tp, fixed_tp + fixed_fn),
            "labelled": fixed_tp + fixed_fn,
        },
        "false_holds": {
            "count": false_holds,
            "rate": _ratio(false_holds, clean_fields) if clean_fields else 0.0,
            "fields": clean_fields,
        },
        "documents": {
            "cases": len(docs),
            "labelled_missing": labelled_missing,
            "missed": missed,
            "reported_not_missing": extra,
            "recall": _ratio(labelled_missing - missed, labelled_missing),
        },
        "public_fixtures": PUBLIC.is_dir(),
        "errors": errors,
    }
    if not clean_fields:
        figures["false_holds"]["rate"] = 0.0
    return figures


def render(figures: dict[str, Any], *, verbose: bool = False) -> str:
    """The figures as the lines ``main`` prints."""
    held, fixed = figures["held_high_risk"], figures["auto_fixed_low_risk"]
    holds, docs = figures["false_holds"], figures["documents"]
    source = "read" if figures["public_fixtures"] else "absent: built-in values"
    lines = [
        f"labelled reconciliation cases: {figures['reconciliation_cases']} "
        f"(public fixtures {source})",
        f"held high-risk differences:  precision {held['precision']:.3f}  "
        f"recall {held['recall']:.3f}  ({held['labelled']} labelled)",
        f"auto-fixed low-risk ones:    precision {fixed['precision']:.3f}  "
        f"recall {fixed['recall']:.3f}  ({fixed['labelled']} labelled)",
        f"false holds:                 {holds['count']} of {holds['fields']} low/none fields "
        f"(rate {holds['rate']:.4f})",
        f"missed documents:            {docs['missed']} of {docs['labelled_missing']} labelled "
        f"missing in {docs['cases']} cases (recall {docs['recall']:.3f}); "
        f"reported but not missing: {docs['reported_not_missing']}",
    ]
    errors = figures["errors"]
    if errors:
        lines.append(
            f"{len(errors)} wrong decisions" + ("" if verbose else " (--verbose lists them)")
        )
        lines.extend(f"  {line}" for line in errors if verbose)
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """Print the figures (``--json`` for one JSON document, ``--verbose`` to list every error)."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--json", action="store_true", help="print one JSON document")
    parser.add_argument("--verbose", action="store_true", help="list every wrong decision")
    args = parser.parse_args(argv)
    figures = evaluate()
    print(json.dumps(figures, indent=2) if args.json else render(figures, verbose=args.verbose))
    return 0


if __name__ == "__main__":
    sys.exit(main())
