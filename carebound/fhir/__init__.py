"""carebound.fhir: FHIR R4B input for the referral agents, as typed, validated, read-only views.

- ``load_bundle`` / ``parse_bundle`` (and ``load_resource`` / ``parse_resource`` for one
  resource) decode JSON and validate it through the fhir.resources R4B models, plus the required
  code bindings those models do not enforce. Every failure is a ``FhirInputError`` naming the
  source, the JSON path and the problem.
- ``ReferralCase.from_bundle`` resolves the referral a Bundle carries: ServiceRequest, Patient,
  providers, Coverage, documents, eligibility, claim responses and Tasks; ``referral_case_of``
  does it from JSON once per distinct Bundle (a small cache shared by threads), hashing a
  Bundle declared unchanging with ``fixed_case`` once.
- ``Demographics`` holds the identity facts the reconciliation agent compares.
- ``document_text``, ``document_date`` and ``document_loinc_codes`` read a DocumentReference.

The code here is pure: no I/O besides reading the file given, no clock, no network.
"""

from carebound.fhir._bindings import REQUIRED_BINDINGS
from carebound.fhir._case import REFERRAL_INTENTS, Party, ReferralCase
from carebound.fhir._case_cache import fixed_case, referral_case_of
from carebound.fhir._demographics import Demographics
from carebound.fhir._documents import (
    LOINC,
    document_date,
    document_loinc_codes,
    document_text,
)
from carebound.fhir._errors import FhirInputError, FhirIssue
from carebound.fhir._index import BundleIndex
from carebound.fhir._parse import load_bundle, load_resource, parse_bundle, parse_resource
from carebound.fhir._values import concept_label, fhir_date

__all__ = [
    "LOINC",
    "REFERRAL_INTENTS",
    "REQUIRED_BINDINGS",
    "BundleIndex",
    "Demographics",
    "FhirInputError",
    "FhirIssue",
    "Party",
    "ReferralCase",
    "concept_label",
    "document_date",
    "document_loinc_codes",
    "document_text",
    "fhir_date",
    "fixed_case",
    "load_bundle",
    "load_resource",
    "parse_bundle",
    "parse_resource",
    "referral_case_of",
]
