"""``carebound eval documents`` with an extract model: the referral agents' task 2 prompt,
measured as the model read the faxes (``chat extract``) and as the agents keep it
(``chat+grounding extract``: values not written in the fax dropped). Fake chat models only."""

from __future__ import annotations

from collections.abc import Sequence

from langchain_core.messages import AIMessage, BaseMessage

from carebound.agents._referral._extract import ReferralExtraction
from carebound.assist import ModelConfig
from carebound.eval import ExtractionFigures, evaluate_documents, load_corpus
from carebound.testing import FakeChatModel, structured

FAXES = [d for d in load_corpus("heldout") if d.extraction is not None]


def _fax(messages: Sequence[BaseMessage]) -> dict[str, str]:
    """The fields of the fax the model was sent (the corpus document sharing most lines)."""
    block = str(messages[-1].content).split(">>>\n", 1)[1].rsplit("\n<<<END", 1)[0]
    lines = set(block.splitlines())
    best = max(FAXES, key=lambda d: len(set(d.text.splitlines()) & lines))
    assert best.extraction is not None
    return best.extraction.fields()


def _reading(fields: dict[str, str], **changes: str) -> AIMessage:
    values = {
        "patient_family_name": fields["patient.family"],
        "patient_given_names": [fields["patient.given"]],
        "patient_birth_date": fields["patient.birth_date"],
        "patient_gender": fields["patient.sex"],
        "patient_phone": fields["patient.phone"],
        "patient_record_number": fields["patient.mrn"],
        "service": fields["service_request.specialty"],
        "reason": fields["service_request.reason"],
        "priority": fields["service_request.priority"],
        "referring_clinician": fields["service_request.requester"],
    }
    return structured(ReferralExtraction, {**values, **changes})


def _extract(respond: object) -> dict[str, ExtractionFigures]:
    models = ModelConfig(tasks={"extract": FakeChatModel(respond=respond)})
    result = evaluate_documents(models=models, built_in=False)
    assert [c.name for c in result.classifiers] == []  # no classify model: no chat rows
    assert result.model_calls == {"extract": {"ok": len(FAXES)}}
    return {e.name: e for e in result.extraction}


def test_a_right_model_reads_every_field_and_grounding_keeps_what_the_fax_says() -> None:
    rows = _extract(lambda messages: _reading(_fax(messages)))
    chat, kept = rows["chat extract"], rows["chat+grounding extract"]
    assert chat.faxes == len(FAXES) >= 15
    assert chat.accuracy == 1.0 and chat.wrong == 0
    assert {f.field for f in chat.fields} == {
        "patient.given", "patient.family", "patient.birth_date", "patient.sex", "patient.phone",
        "patient.mrn", "service_request.specialty", "service_request.reason",
        "service_request.priority", "service_request.requester",
    }  # fmt: skip
    # grounding only ever drops: never a wrong value, at most fewer right ones (OCR damage)
    assert kept.wrong == 0 and kept.accuracy <= chat.accuracy


def test_invented_values_are_dropped_before_anyone_sees_them() -> None:
    invented = {"patient_phone": "555-010-9999", "reason": "suspected pulmonary embolism"}
    rows = _extract(lambda messages: _reading(_fax(messages), **invented))
    chat, kept = rows["chat extract"], rows["chat+grounding extract"]
    by_field = {f.field: f for f in chat.fields}
    assert by_field["patient.phone"].wrong == by_field["service_request.reason"].wrong == len(FAXES)
    grounded = {f.field: f for f in kept.fields}
    assert grounded["patient.phone"].wrong == grounded["service_request.reason"].wrong == 0
    assert grounded["patient.phone"].right == grounded["service_request.reason"].right == 0
