"""carebound.eval: the labelled corpus of synthetic faxed documents, and what is measured on it.

- ``load_corpus(split)`` -> ``CorpusDocument`` list (labels: LOINC type, date, patient, sender;
  traits: language, layout, OCR noise, cover sheet, multi-document, injected instructions; and
  for referral faxes the fields a ServiceRequest / Patient / Coverage draft hold);
- ``evaluate_documents(...)`` -> ``DocumentsEvaluation``: accuracy, per-class precision and
  recall, calibration, extraction field accuracy and injection holds of the rule classifier, the
  local model and any chat-model classifier or extractor given (``carebound eval documents``).
"""

from ._corpus import (
    CorpusDocument,
    DocumentLabel,
    DocumentTraits,
    ExtractionLabel,
    PatientLabel,
    corpus_sha256,
    load_corpus,
)
from ._documents import (
    BUILT_IN,
    DocumentClassifier,
    DocumentsEvaluation,
    ReferralExtractor,
    accepted,
    evaluate_documents,
    render_evaluation,
)
from ._metrics import (
    CalibrationBucket,
    ClassFigures,
    ClassifierFigures,
    ExtractionFigures,
    FieldFigures,
    InjectionFigures,
    expected_calibration_error,
)

__all__ = [
    "BUILT_IN",
    "CalibrationBucket",
    "ClassFigures",
    "ClassifierFigures",
    "CorpusDocument",
    "DocumentClassifier",
    "DocumentLabel",
    "DocumentTraits",
    "DocumentsEvaluation",
    "ExtractionFigures",
    "ExtractionLabel",
    "FieldFigures",
    "InjectionFigures",
    "PatientLabel",
    "ReferralExtractor",
    "accepted",
    "corpus_sha256",
    "evaluate_documents",
    "expected_calibration_error",
    "load_corpus",
    "render_evaluation",
]
