"""carebound.domain.identity: is this the same person, and where do two records of them disagree?

Pure, deterministic rules (no I/O). ``compare_records`` classifies each disagreement between two
records of one person as low risk (fixed automatically, with the value to write) or high risk (held
for a person); ``check_record`` finds single-record failures; ``identity_score`` weighs agreement
the way the HL7 Identity Matching IG weighs identity attributes. One module per field family:
names (with nicknames), address, phone, identifiers (member id, NPI, payer), vitals (birth date,
sex), households.
"""

from ._compare import PAYER_SOURCE, check_record, compare_records
from ._identifiers import NPI_PREFIX, npi_is_valid
from ._identity import IDENTITY_WEIGHTS, IdentityAttribute, agreeing_attributes, identity_score
from ._models import KIND_RISK, Mismatch, MismatchField, MismatchKind, PersonRecord, Risk

__all__ = [
    "IDENTITY_WEIGHTS",
    "KIND_RISK",
    "NPI_PREFIX",
    "PAYER_SOURCE",
    "IdentityAttribute",
    "Mismatch",
    "MismatchField",
    "MismatchKind",
    "PersonRecord",
    "Risk",
    "agreeing_attributes",
    "check_record",
    "compare_records",
    "identity_score",
    "npi_is_valid",
]
