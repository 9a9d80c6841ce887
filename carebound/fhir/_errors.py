"""The one error of carebound.fhir: FHIR input that cannot be used, with where and how to fix it."""

from __future__ import annotations

from dataclasses import dataclass

from carebound._errors import CareboundError

_MAX_LISTED = 10


@dataclass(frozen=True, slots=True)
class FhirIssue:
    """One problem found in FHIR input.

    Attributes:
        path: JSON path inside the file, e.g. ``entry[2].resource.status`` (``""`` when the
            problem is the document as a whole, e.g. a JSON syntax error).
        problem: what is wrong there, in words; never echoes free-text values (they may be PHI).
    """

    path: str
    problem: str

    def __str__(self) -> str:
        return f"{self.path}: {self.problem}" if self.path else self.problem


class FhirInputError(CareboundError):
    """FHIR input (a file, bytes or a dict) is not valid JSON, not valid FHIR R4B, or lacks what
    a referral case needs.

    The message names the source, the JSON path of each problem and the problem itself; ``hint``
    says how to fix the first one. ``issues`` holds every problem found, in the order the checks
    report them.
    """

    def __init__(self, source: str, issues: list[FhirIssue], *, hint: str | None = None) -> None:
        self.source = source
        self.issues = tuple(issues)
        if len(issues) == 1:
            message = f"{source}: {issues[0]}"
        else:
            lines = [f"  - {issue}" for issue in issues[:_MAX_LISTED]]
            if len(issues) > _MAX_LISTED:
                lines.append(f"  - ... and {len(issues) - _MAX_LISTED} more")
            message = f"{source}: {len(issues)} problems\n" + "\n".join(lines)
        super().__init__(message, hint=hint)
