"""Coverage in force: what a referral's insurance must be on the date of service.

A Coverage is in force when its ``status`` is ``active`` **and** its ``period`` contains the date
of service **and**, when the payer answered an eligibility request, that answer says ``inforce``.
The date of service is the one the order asks for (``ServiceRequest.occurrenceDateTime``, or the
start of ``occurrencePeriod``), else the day it was written (``authoredOn``). ``status`` alone is
not enough: a Coverage stays ``active`` in a referring office's export long after its period
ended.

Pure: FHIR JSON in, a verdict out. Explanations name the fact, never a value (no dates, ids or
names), so they can go into packets and audit details as they are.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from datetime import date
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, computed_field

from carebound.fhir import ReferralCase
from carebound.fhir._values import fhir_date

__all__ = [
    "CoverageProblem",
    "CoverageTerms",
    "CoverageVerdict",
    "case_coverage",
    "coverage_in_force",
    "coverage_terms",
    "eligibility_inforce",
    "service_date",
]

CoverageProblem = Literal[
    "not_active", "not_started", "ended", "eligibility_not_inforce", "no_service_date"
]
"""Why a Coverage is not in force: its status is not active; its period starts after or ends
before the date of service; the payer's eligibility answer says not in force; the Coverage has a
period but the order gives no date to check it against."""

_WORDS: dict[CoverageProblem, str] = {
    "not_active": "its status is not active",
    "not_started": "its period starts after the date of service",
    "ended": "its period ended before the date of service",
    "eligibility_not_inforce": "the payer's eligibility response says it is not in force",
    "no_service_date": "the order gives no date of service to check its period against",
}


class CoverageTerms(BaseModel):
    """The facts of one Coverage that decide whether it is in force."""

    model_config = ConfigDict(frozen=True, extra="forbid", use_attribute_docstrings=True)

    source: str = Field(min_length=1)
    """Which Coverage this is, in words or as a reference (``Coverage/cov-1``, ``the payer's
    Coverage``); explanations start with it."""
    status: str | None = None
    """``Coverage.status`` (active, cancelled, draft, entered-in-error)."""
    start: date | None = None
    """``Coverage.period.start`` (None: open)."""
    end: date | None = None
    """``Coverage.period.end`` (None: open)."""
    eligibility_inforce: bool | None = None
    """The payer's ``CoverageEligibilityResponse.insurance.inforce`` for it (None: no answer)."""


class CoverageVerdict(BaseModel):
    """Whether one Coverage is in force on the date of service, and if not, why."""

    model_config = ConfigDict(frozen=True, extra="forbid", use_attribute_docstrings=True)

    source: str
    """The Coverage's source, as in ``CoverageTerms``."""
    in_force: bool
    """Active, its period covers the date of service, and no eligibility answer says otherwise."""
    problems: list[CoverageProblem] = Field(default_factory=list)
    """Every reason it is not in force (empty when it is)."""

    @computed_field  # type: ignore[prop-decorator]
    @property
    def explanation(self) -> str:
        """One PHI-free sentence."""
        if self.in_force:
            return f"{self.source} is in force on the date of service"
        reasons = "; ".join(_WORDS[p] for p in self.problems)
        return f"{self.source} is not in force on the date of service: {reasons}"


def service_date(request: Mapping[str, Any]) -> date | None:
    """The date of service of a ServiceRequest (JSON): the occurrence asked for, else
    ``authoredOn``; None when it has neither."""
    period = request.get("occurrencePeriod")
    for value in (
        request.get("occurrenceDateTime"),
        period.get("start") if isinstance(period, Mapping) else None,
        request.get("authoredOn"),
    ):
        when = fhir_date(value.split("T")[0]) if isinstance(value, str) else None
        if when is not None:
            return when
    return None


def coverage_terms(
    coverage: Mapping[str, Any], source: str, *, eligibility_inforce: bool | None = None
) -> CoverageTerms:
    """The terms of a Coverage (JSON) that decide whether it is in force."""
    period = coverage.get("period")
    start = period.get("start") if isinstance(period, Mapping) else None
    end = period.get("end") if isinstance(period, Mapping) else None
    status = coverage.get("status")
    return CoverageTerms(
        source=source,
        status=status if isinstance(status, str) else None,
        start=fhir_date(start.split("T")[0]) if isinstance(start, str) else None,
        end=fhir_date(end.split("T")[0]) if isinstance(end, str) else None,
        eligibility_inforce=eligibility_inforce,
    )


def eligibility_inforce(
    responses: Sequence[Mapping[str, Any]], coverage_id: str | None
) -> bool | None:
    """What the newest CoverageEligibilityResponse (JSON) that names ``Coverage/coverage_id``
    says of it (``insurance.inforce``); None when none answers for it."""
    if coverage_id is None:
        return None
    wanted = f"Coverage/{coverage_id}"
    answers: list[tuple[str, bool]] = []
    for response in responses:
        if response.get("status") in ("cancelled", "entered-in-error"):
            continue
        for insurance in response.get("insurance") or []:
            reference = str((insurance.get("coverage") or {}).get("reference", ""))
            inforce = insurance.get("inforce")
            current = reference.split("/_history/", maxsplit=1)[0]
            if current.endswith(wanted) and isinstance(inforce, bool):
                answers.append((str(response.get("created", "")), inforce))
    return max(answers)[1] if answers else None


def coverage_in_force(terms: CoverageTerms, on: date | None) -> CoverageVerdict:
    """Whether the Coverage described by ``terms`` is in force on the date of service ``on``."""
    problems: list[CoverageProblem] = []
    if terms.status != "active":
        problems.append("not_active")
    if on is None:
        if terms.start is not None or terms.end is not None:
            problems.append("no_service_date")
    else:
        if terms.start is not None and terms.start > on:
            problems.append("not_started")
        if terms.end is not None and terms.end < on:
            problems.append("ended")
    if terms.eligibility_inforce is False:
        problems.append("eligibility_not_inforce")
    return CoverageVerdict(source=terms.source, in_force=not problems, problems=problems)


_VERDICTS_KEPT = 64
_verdicts: OrderedDict[tuple[int, ...], tuple[tuple[object, ...], tuple[CoverageVerdict, ...]]]
_verdicts = OrderedDict()
"""Verdicts by the identity of what they are judged on (the order, its Coverages and
eligibility responses), shared by a worker's threads. A planner derives new case views from
one parsed Bundle (``dataclasses.replace`` with the documents it has filed), and they share
those objects: judged once, not once per view. Each entry holds its objects, so their ids are
not reused while it is kept."""
_verdicts_lock = threading.Lock()


def case_coverage(case: ReferralCase) -> list[CoverageVerdict]:
    """A verdict for every Coverage of a referral case, judged on its own order's date of service
    and the case's own eligibility responses (``source`` is ``Coverage/<id>``)."""
    judged: tuple[object, ...] = (case.service_request, *case.coverage, *case.eligibility)
    key = tuple(map(id, judged))
    with _verdicts_lock:
        found = _verdicts.get(key)
        if found is not None:
            _verdicts.move_to_end(key)
            return list(found[1])
    verdicts = tuple(_judge_case(case))
    with _verdicts_lock:
        _verdicts[key] = (judged, verdicts)
        while len(_verdicts) > _VERDICTS_KEPT:
            _verdicts.popitem(last=False)
    return list(verdicts)


def _judge_case(case: ReferralCase) -> list[CoverageVerdict]:
    on = service_date(case.service_request_json)
    responses = [r.model_dump(mode="json", exclude_none=True) for r in case.eligibility]
    verdicts = []
    for coverage in case.coverage:
        data = coverage.model_dump(mode="json", exclude_none=True)
        source = f"Coverage/{coverage.id}" if coverage.id else case.path_of(coverage) or "Coverage"
        terms = coverage_terms(
            data, source, eligibility_inforce=eligibility_inforce(responses, coverage.id)
        )
        verdicts.append(coverage_in_force(terms, on))
    return verdicts
