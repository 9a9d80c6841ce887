"""DocumentRequirement: one thing a referral must carry, as a policy pack states it."""

from __future__ import annotations

import re
from typing import Literal, Self

from pydantic import BaseModel, ConfigDict, Field, model_validator

_LOINC_CODE = re.compile(r"^\d{1,7}-\d$")


class DocumentRequirement(BaseModel):
    """One item a referral must carry before it can go ahead (part of the policy pack schema).

    Three kinds, one shape: ``kind`` says what satisfies the requirement; ``code`` and
    ``display`` name it in the missing-items list; ``specialties``, ``payers`` and ``when`` say
    to which referrals it applies. Examples (YAML)::

        - {kind: coverage, code: coverage, display: Insurance coverage}
        - {code: 11506-3, display: Progress note, max_age_days: 90}
        - {code: 18748-4, display: Imaging report, specialties: [Orthopedics], payers: ["60054"]}
        - {kind: prior_auth, code: prior-auth, display: Prior authorization number,
           when: authorization_required}
    """

    model_config = ConfigDict(frozen=True, extra="forbid", use_attribute_docstrings=True)

    kind: Literal["document", "coverage", "prior_auth"] = "document"
    """What satisfies it. ``document``: a DocumentReference whose type has LOINC code ``code``,
    or an untyped one classified as ``code`` with confidence at or above the threshold.
    ``coverage``: a Coverage of the patient with status ``active``. ``prior_auth``: a
    ClaimResponse (not cancelled) with a ``preAuthRef``; no DocumentReference counts."""
    code: str = Field(min_length=1)
    """For ``document``: the LOINC document code (e.g. ``11506-3``). For ``coverage`` and
    ``prior_auth``: the key the item is reported under (e.g. ``coverage``, ``prior-auth``)."""
    display: str = Field(min_length=1)
    """Name shown to staff and reviewers, e.g. ``Progress note``."""
    max_age_days: int | None = Field(default=None, ge=0)
    """``document`` only: the newest matching document may be dated at most this many days
    before ``ServiceRequest.authoredOn`` (later dates are fine). None: any date, or none."""
    specialties: list[str] | None = None
    """Applies only to referrals whose ``ReferralCase.specialty`` is one of these (compared
    case-insensitively). None: every specialty."""
    payers: list[str] | None = None
    """Applies only when one of the case's ``ReferralCase.payer_ids`` is one of these (exact
    match: a payer identifier value or an ``Organization/id`` reference). None: every payer."""
    when: Literal["always", "authorization_required"] = "always"
    """``always``, or ``authorization_required``: only when a CoverageEligibilityResponse of the
    case marks an item ``insurance.item.authorizationRequired = true``."""

    @model_validator(mode="after")
    def _check_kind(self) -> Self:
        if self.kind == "document" and not _LOINC_CODE.match(self.code):
            raise ValueError(
                f"code {self.code!r} is not a LOINC code (digits, a hyphen, a check digit: "
                "11506-3); a document requirement names its LOINC document type"
            )
        if self.kind != "document" and self.max_age_days is not None:
            raise ValueError(f"max_age_days applies to documents only, not to kind {self.kind!r}")
        return self


#: What every referral needs unless a policy pack says otherwise: an active Coverage, a progress
#: note dated within 90 days before the order, and a prior-authorisation number when the payer
#: requires one.
DEFAULT_REQUIREMENTS: tuple[DocumentRequirement, ...] = (
    DocumentRequirement(kind="coverage", code="coverage", display="Insurance coverage"),
    DocumentRequirement(code="11506-3", display="Progress note", max_age_days=90),
    DocumentRequirement(
        kind="prior_auth",
        code="prior-auth",
        display="Prior authorization number",
        when="authorization_required",
    ),
)
