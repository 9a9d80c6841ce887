"""carebound.fhir: parsing FHIR R4B input, its errors, and the ReferralCase view.

The bundles here are written for these tests (a cardiology referral for a fictional patient);
the public files under ../shared are only read, through the ``public_fixtures`` fixture.
"""

from __future__ import annotations

import base64
import json
from datetime import date
from pathlib import Path
from typing import Any

import orjson
import pytest
from fhir.resources.R4B.documentreference import DocumentReference
from fhir.resources.R4B.organization import Organization
from fhir.resources.R4B.patient import Patient
from fhir.resources.R4B.practitioner import Practitioner
from fhir.resources.R4B.task import Task

import carebound.fhir
from carebound._errors import CareboundError
from carebound.fhir import (
    Demographics,
    FhirInputError,
    ReferralCase,
    document_date,
    document_loinc_codes,
    document_text,
    fhir_date,
    load_bundle,
    load_resource,
    parse_bundle,
    parse_resource,
)

BASE = "http://carebound.test/fhir"
Resource = dict[str, Any]


# --- builders: a small cardiology referral, written fresh for these tests ------------------


def b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def patient(pid: str = "pat-1", **changes: Any) -> Resource:
    resource: Resource = {
        "resourceType": "Patient",
        "id": pid,
        "identifier": [
            {
                "type": {
                    "coding": [
                        {"system": "http://terminology.hl7.org/CodeSystem/v2-0203", "code": "MB"}
                    ]
                },
                "system": "http://piedmont-mutual.example/member",
                "value": "PMH-40211873",
            }
        ],
        "name": [
            {"use": "nickname", "family": "Delacroix", "given": ["Rita"]},
            {"use": "official", "family": "Delacroix", "given": ["Margarita", "Anne"]},
        ],
        "telecom": [
            {"system": "email", "value": "m.delacroix@example.org"},
            {"system": "phone", "value": "919-555-0199", "use": "work"},
            {"system": "phone", "value": "(919) 555-0142", "use": "home"},
        ],
        "gender": "female",
        "birthDate": "1961-04-09",
        "address": [
            {"use": "old", "line": ["9 Old Mill Road"], "city": "Raleigh", "state": "NC"},
            {
                "use": "home",
                "line": ["41 Larkspur Lane", "Apt 2"],
                "city": "Durham",
                "state": "NC",
                "postalCode": "27701-1234",
            },
        ],
    }
    resource.update(changes)
    return resource


def practitioner() -> Resource:
    return {
        "resourceType": "Practitioner",
        "id": "pr-ruiz",
        "identifier": [{"system": "http://hl7.org/fhir/sid/us-npi", "value": "1234567893"}],
        "name": [{"family": "Ruiz", "given": ["Ana"]}],
    }


def organization(oid: str, name: str, payer_id: str | None = None) -> Resource:
    resource: Resource = {"resourceType": "Organization", "id": oid, "name": name}
    if payer_id:
        resource["identifier"] = [{"system": "http://payers.example/id", "value": payer_id}]
    return resource


def coverage(
    cid: str = "cov-1", status: str = "active", beneficiary: str = "Patient/pat-1"
) -> Resource:
    return {
        "resourceType": "Coverage",
        "id": cid,
        "status": status,
        "subscriberId": "PMH40211873",
        "beneficiary": {"reference": beneficiary},
        "payor": [{"reference": "Organization/org-payer", "display": "Piedmont Mutual Health"}],
    }


def service_request(**changes: Any) -> Resource:
    resource: Resource = {
        "resourceType": "ServiceRequest",
        "id": "sr-1",
        "status": "active",
        "intent": "order",
        "code": {
            "coding": [
                {"system": "http://snomed.info/sct", "code": "3457005", "display": "Referral"}
            ]
        },
        "performerType": {
            "coding": [
                {"system": "http://snomed.info/sct", "code": "394579002", "display": "Cardiology"}
            ]
        },
        "subject": {"reference": "Patient/pat-1"},
        "requester": {"reference": "Practitioner/pr-ruiz"},
        "performer": [{"reference": "Organization/org-cardio"}],
        "authoredOn": "2026-06-01T14:30:00-04:00",
        "insurance": [{"reference": "Coverage/cov-1"}],
        "supportingInfo": [{"reference": "DocumentReference/doc-note"}],
    }
    resource.update(changes)
    return {k: v for k, v in resource.items() if v is not None}


def progress_note(
    did: str = "doc-note", date_: str | None = "2026-04-20T10:00:00Z", **changes: Any
) -> Resource:
    resource: Resource = {
        "resourceType": "DocumentReference",
        "id": did,
        "status": "current",
        "type": {
            "coding": [
                {"system": "http://loinc.org", "code": "11506-3", "display": "Progress note"}
            ]
        },
        "subject": {"reference": "Patient/pat-1"},
        "date": date_,
        "content": [
            {
                "attachment": {
                    "contentType": "text/plain; charset=utf-8",
                    "data": b64("Progress note. Chief complaint: exertional chest pain."),
                }
            }
        ],
    }
    resource.update(changes)
    return {k: v for k, v in resource.items() if v is not None}


def fax(did: str, text: str, date_: str = "2026-05-28T16:05:00Z") -> Resource:
    """An untyped faxed document: no type, no subject, inline text."""
    return {
        "resourceType": "DocumentReference",
        "id": did,
        "status": "current",
        "date": date_,
        "content": [{"attachment": {"contentType": "text/plain", "data": b64(text)}}],
    }


def eligibility(required: bool, eid: str = "elig-1") -> Resource:
    return {
        "resourceType": "CoverageEligibilityResponse",
        "id": eid,
        "status": "active",
        "purpose": ["auth-requirements"],
        "patient": {"reference": "Patient/pat-1"},
        "created": "2026-06-01",
        "request": {"reference": "CoverageEligibilityRequest/req-1"},
        "outcome": "complete",
        "insurer": {"reference": "Organization/org-payer"},
        "insurance": [
            {
                "coverage": {"reference": "Coverage/cov-1"},
                "item": [{"authorizationRequired": required}],
            }
        ],
    }


def claim_response(pre_auth_ref: str | None, rid: str = "cr-1", status: str = "active") -> Resource:
    resource: Resource = {
        "resourceType": "ClaimResponse",
        "id": rid,
        "status": status,
        "type": {
            "coding": [
                {
                    "system": "http://terminology.hl7.org/CodeSystem/claim-type",
                    "code": "professional",
                }
            ]
        },
        "use": "preauthorization",
        "patient": {"reference": "Patient/pat-1"},
        "created": "2026-06-02T09:00:00Z",
        "insurer": {"reference": "Organization/org-payer"},
        "outcome": "complete",
    }
    if pre_auth_ref:
        resource["preAuthRef"] = pre_auth_ref
    return resource


def task() -> Resource:
    return {
        "resourceType": "Task",
        "id": "task-1",
        "status": "requested",
        "intent": "order",
        "focus": {"reference": "ServiceRequest/sr-1"},
    }


def referral_resources(
    *,
    sr: Resource | None = None,
    documents: list[Resource] | None = None,
    coverages: list[Resource] | None = None,
) -> list[Resource]:
    """Everything a complete referral carries; pass lists to replace the parts under test."""
    return [
        patient(),
        practitioner(),
        organization("org-cardio", "Triangle Heart Associates"),
        organization("org-payer", "Piedmont Mutual Health", payer_id="PMH01"),
        *(coverages if coverages is not None else [coverage()]),
        sr if sr is not None else service_request(),
        *(documents if documents is not None else [progress_note()]),
        task(),
    ]


def bundle(*resources: Resource, full_urls: dict[str, str] | None = None) -> Resource:
    entries = []
    for r in resources:
        key = f"{r['resourceType']}/{r['id']}"
        entries.append({"fullUrl": (full_urls or {}).get(key, f"{BASE}/{key}"), "resource": r})
    return {"resourceType": "Bundle", "id": "case-1", "type": "collection", "entry": entries}


def case_of(*resources: Resource, source: str = "case.json") -> ReferralCase:
    return ReferralCase.from_bundle(parse_bundle(bundle(*resources), source=source), source=source)


def fhir_error(data: bytes | str | Resource, source: str = "case.json") -> FhirInputError:
    with pytest.raises(FhirInputError) as info:
        parse_bundle(data, source=source)
    return info.value


def entry_index(resources: list[Resource], resource_type: str) -> int:
    return next(i for i, r in enumerate(resources) if r["resourceType"] == resource_type)


# --- the public surface ---------------------------------------------------------------------


def test_public_names_are_pinned() -> None:
    assert sorted(carebound.fhir.__all__) == sorted(
        [
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
            "referral_case_of",
            "parse_resource",
        ]
    )
    for name in carebound.fhir.__all__:
        assert getattr(carebound.fhir, name) is not None


# --- ReferralCase from a bundle written here ------------------------------------------------


def test_case_resolves_every_part_of_the_referral() -> None:
    case = case_of(*referral_resources(), eligibility(False), claim_response("PA-7781"))
    assert case.service_request.id == "sr-1"
    assert case.patient.id == "pat-1"
    assert isinstance(case.requester, Practitioner) and case.requester.id == "pr-ruiz"
    assert isinstance(case.performer, Organization) and case.performer.id == "org-cardio"
    assert [c.id for c in case.coverage] == ["cov-1"]
    assert [d.id for d in case.documents] == ["doc-note"]
    assert [t.id for t in case.tasks] == ["task-1"]
    assert [e.id for e in case.eligibility] == ["elig-1"]
    assert [r.id for r in case.claim_responses] == ["cr-1"]
    assert case.authored_on == date(2026, 6, 1)
    assert case.specialty == "Cardiology"
    assert case.payer_ids == ("PMH01", "Organization/org-payer")
    assert not case.authorization_required
    assert case.pre_auth_refs == ("PA-7781",)
    assert case.path_of(case.service_request) == "entry[5].resource"
    assert case.source == "case.json"


def test_specialty_falls_back_to_the_code_when_no_performer_type() -> None:
    case = case_of(*referral_resources(sr=service_request(performerType=None)))
    assert case.specialty == "Referral"


def test_references_resolve_by_urn_uuid_and_absolute_full_url() -> None:
    pat_url = "urn:uuid:6f1d4c1e-3b1a-4d1e-9c55-0c1b6b1b7d01"
    cov_url = "https://payer.example/fhir/Coverage/cov-1"
    sr = service_request(
        subject={"reference": pat_url},
        insurance=[{"reference": cov_url + "/_history/3"}],
    )
    resources = referral_resources(sr=sr)
    data = bundle(*resources, full_urls={"Patient/pat-1": pat_url, "Coverage/cov-1": cov_url})
    case = ReferralCase.from_bundle(parse_bundle(data, source="b.json"), source="b.json")
    assert case.patient.id == "pat-1"
    assert [c.id for c in case.coverage] == ["cov-1"]


def test_contained_supporting_document_is_a_case_document() -> None:
    contained_fax = fax("scan-1", "Reason for referral: palpitations.")
    sr = service_request(contained=[contained_fax], supportingInfo=[{"reference": "#scan-1"}])
    case = case_of(*referral_resources(sr=sr))
    assert [d.id for d in case.documents] == ["scan-1", "doc-note"]
    assert case.path_of(case.documents[0]) == "entry[5].resource.contained[0]"


def test_documents_and_coverage_of_another_patient_are_left_out() -> None:
    other = patient("pat-2", name=[{"family": "Delacroix", "given": ["Margot"]}])
    others_note = progress_note("doc-other", subject={"reference": "Patient/pat-2"})
    untyped = fax("fax-1", "Progress note. Assessment and plan: ...")
    resources = referral_resources(
        documents=[progress_note(), others_note, untyped],
        coverages=[coverage(), coverage("cov-2", beneficiary="Patient/pat-2"), coverage("cov-3")],
    )
    case = case_of(*resources, other)
    assert [d.id for d in case.documents] == ["doc-note", "fax-1"]
    assert [c.id for c in case.coverage] == ["cov-1", "cov-3"]


def test_authorization_required_and_pre_auth_refs() -> None:
    case = case_of(
        *referral_resources(),
        eligibility(True),
        claim_response(None, "cr-1"),
        claim_response("PA-1", "cr-2", status="cancelled"),
    )
    assert case.authorization_required
    assert [e.id for e in case.authorization_sources()] == ["elig-1"]
    assert case.pre_auth_refs == ()


def test_document_key_is_the_id_else_the_full_url() -> None:
    no_id = fax("x", "text")
    del no_id["id"]
    data = bundle(*referral_resources())
    data["entry"].append(
        {"fullUrl": "urn:uuid:0b7e0c0e-5f55-4a57-b2f1-5a3f2ad1c001", "resource": no_id}
    )
    case = ReferralCase.from_bundle(parse_bundle(data, source="b.json"), source="b.json")
    assert [case.document_key(d) for d in case.documents] == [
        "doc-note",
        "urn:uuid:0b7e0c0e-5f55-4a57-b2f1-5a3f2ad1c001",
    ]


def test_case_is_read_only() -> None:
    case = case_of(*referral_resources())
    with pytest.raises(AttributeError):
        case.patient = case.patient  # type: ignore[misc]
    assert isinstance(case.documents, tuple)


# --- Demographics -------------------------------------------------------------------------


def test_demographics_choose_official_name_home_address_and_home_phone() -> None:
    case = case_of(*referral_resources())
    assert case.demographics() == Demographics(
        family="Delacroix",
        given=("Margarita", "Anne"),
        nicknames=("Rita",),  # the use=nickname entry, kept apart from the legal name
        birth_date=date(1961, 4, 9),
        sex="female",
        address_lines=("41 Larkspur Lane", "Apt 2"),
        city="Durham",
        state="NC",
        postal_code="27701-1234",
        phone="(919) 555-0142",
        member_id="PMH40211873",
        payer="Piedmont Mutual Health",
    )


def test_demographics_without_coverage_use_the_patients_member_identifier() -> None:
    pat = parse_resource(patient(birthDate="1961-04"), Patient, source="p.json")
    demo = Demographics.from_patient(pat)
    assert demo.member_id == "PMH-40211873"
    assert demo.payer is None
    assert demo.birth_date is None  # month precision only: not turned into a made-up day


# --- documents ----------------------------------------------------------------------------


def test_document_text_date_and_codes() -> None:
    doc = parse_resource(progress_note(), DocumentReference, source="d.json")
    assert document_text(doc) == "Progress note. Chief complaint: exertional chest pain."
    assert document_date(doc) == date(2026, 4, 20)
    assert document_loinc_codes(doc) == ("11506-3",)


def test_document_text_honours_the_charset_and_skips_other_types() -> None:
    latin = progress_note(
        content=[
            {"attachment": {"contentType": "application/pdf", "data": b64("%PDF-1.7")}},
            {
                "attachment": {
                    "contentType": "text/plain; charset=ISO-8859-1",
                    "data": base64.b64encode("Señora Núñez".encode("latin-1")).decode(),
                }
            },
        ]
    )
    doc = parse_resource(latin, DocumentReference, source="d.json")
    assert document_text(doc) == "Señora Núñez"
    url_only = progress_note(content=[{"attachment": {"url": "https://docs.example/b/1"}}])
    assert document_text(parse_resource(url_only, DocumentReference, source="d.json")) is None


def test_document_date_falls_back_to_context_period() -> None:
    doc = progress_note(
        date_=None, context={"period": {"start": "2026-02-03", "end": "2026-02-05"}}
    )
    assert document_date(parse_resource(doc, DocumentReference, source="d.json")) == date(
        2026, 2, 5
    )
    undated = progress_note(date_=None)
    assert document_date(parse_resource(undated, DocumentReference, source="d.json")) is None


def test_fhir_date_precisions() -> None:
    assert fhir_date("2026") == date(2026, 1, 1)
    assert fhir_date("2026-03") == date(2026, 3, 1)
    assert fhir_date("2026-03", partial=False) is None
    assert fhir_date(None) is None


# --- errors: each names the source, the path and the problem -----------------------------


def test_bad_json_gives_line_and_column(tmp_path: Path) -> None:
    path = tmp_path / "referral.json"
    path.write_text('{\n  "resourceType": "Bundle",\n  "type": "collection"\n  "entry": []\n}\n')
    with pytest.raises(FhirInputError) as info:
        load_bundle(path)
    message = str(info.value)
    assert str(path) in message
    assert "line 4, column 3" in message
    assert "Expecting ',' delimiter" in message
    assert info.value.hint and "JSON syntax" in info.value.hint
    assert isinstance(info.value, CareboundError)


def test_missing_file_and_non_utf8_bytes() -> None:
    with pytest.raises(FhirInputError, match=r"nowhere\.json: cannot read the file"):
        load_bundle(Path("/nonexistent/nowhere.json"))
    error = fhir_error(b'{"resourceType": "Bundle", "id": "\xff"}', source="upload-17")
    assert "upload-17: not UTF-8 text: the byte at offset 34 is not valid UTF-8" in str(error)


def test_json_that_is_not_an_object() -> None:
    error = fhir_error("[1, 2]")
    assert "case.json: the JSON is an array, not a resource object" in str(error)


def test_wrong_resource_type_at_the_top() -> None:
    error = fhir_error(patient())
    assert error.source == "case.json"
    assert [(i.path, i.problem) for i in error.issues] == [
        ("resourceType", "is 'Patient', expected 'Bundle'")
    ]
    assert "case.json: resourceType: is 'Patient', expected 'Bundle'" in str(error)


def test_unknown_or_missing_resource_type_inside_the_bundle() -> None:
    resources = referral_resources()
    data = bundle(*resources)
    data["entry"][1]["resource"]["resourceType"] = "Practicioner"
    del data["entry"][2]["resource"]["resourceType"]
    error = fhir_error(data)
    assert [(i.path, i.problem) for i in error.issues] == [
        ("entry[1].resource.resourceType", "'Practicioner' is not a FHIR R4B resource type"),
        ("entry[2].resource", "a resource here needs a resourceType"),
    ]
    assert "2 problems" in str(error)


def test_unknown_service_request_status_names_path_and_allowed_codes() -> None:
    resources = referral_resources(sr=service_request(status="pending"))
    error = fhir_error(bundle(*resources))
    i = entry_index(resources, "ServiceRequest")
    assert len(error.issues) == 1
    assert error.issues[0].path == f"entry[{i}].resource.status"
    message = str(error)
    assert f"case.json: entry[{i}].resource.status: 'pending' is not a code" in message
    assert "request-status" in message
    assert "draft, active, on-hold, revoked, completed, entered-in-error, unknown" in message
    assert error.hint and "allowed codes" in error.hint


@pytest.mark.parametrize(
    ("resource_type", "element", "value"),
    [
        ("Task", "status", "waiting"),
        ("ServiceRequest", "intent", "referral"),
        ("DocumentReference", "status", "final"),
        ("Coverage", "status", "inactive"),
        ("Patient", "gender", "F"),
    ],
)
def test_required_bindings_are_enforced(resource_type: str, element: str, value: str) -> None:
    resources = referral_resources()
    i = entry_index(resources, resource_type)
    resources[i][element] = value
    error = fhir_error(bundle(*resources))
    assert [i_.path for i_ in error.issues] == [f"entry[{i}].resource.{element}"]
    assert f"{value!r} is not a code" in str(error)


def test_binding_in_a_contained_resource_is_checked_too() -> None:
    bad = {"resourceType": "Task", "id": "t", "status": "waiting", "intent": "order"}
    resources = referral_resources(sr=service_request(contained=[bad]))
    error = fhir_error(bundle(*resources))
    i = entry_index(resources, "ServiceRequest")
    assert [x.path for x in error.issues] == [f"entry[{i}].resource.contained[0].status"]


def test_bad_document_date_names_the_path_without_echoing_the_value() -> None:
    resources = referral_resources(documents=[progress_note(date_="2026-13-01")])
    error = fhir_error(bundle(*resources))
    i = entry_index(resources, "DocumentReference")
    assert [(x.path, x.problem) for x in error.issues] == [
        (f"entry[{i}].resource.date", "not a valid FHIR instant")
    ]
    assert "2026-13-01" not in str(error)
    assert error.hint and "instant" in error.hint and "2026-01-02T09:30:00Z" in error.hint


def test_free_text_values_are_not_echoed_in_type_errors() -> None:
    resources = referral_resources()
    i = entry_index(resources, "Patient")
    resources[i]["name"] = "Margarita Delacroix"
    error = fhir_error(bundle(*resources))
    assert [x.path for x in error.issues] == [f"entry[{i}].resource.name"]
    assert "got a string" in str(error)
    assert "Margarita" not in str(error)


def test_unknown_element_and_missing_required_element() -> None:
    resources = referral_resources()
    i = entry_index(resources, "Coverage")
    resources[i]["payer"] = resources[i].pop("payor")
    error = fhir_error(bundle(*resources))
    assert {(x.path, x.problem) for x in error.issues} == {
        (f"entry[{i}].resource.payer", "not an element of this type in FHIR R4B"),
        (f"entry[{i}].resource.payor", "required element is missing"),
    }
    assert error.hint and "coverage.html" in error.hint

    resources = referral_resources()
    i = entry_index(resources, "Patient")
    resources[i]["colour"] = "blue"
    error = fhir_error(bundle(*resources))
    assert [x.path for x in error.issues] == [f"entry[{i}].resource.colour"]
    assert error.hint and "'colour'" in error.hint and "patient.html" in error.hint


def test_bundle_without_service_request() -> None:
    resources = [r for r in referral_resources() if r["resourceType"] != "ServiceRequest"]
    data = parse_bundle(bundle(*resources), source="no-order.json")
    with pytest.raises(FhirInputError) as info:
        ReferralCase.from_bundle(data, source="no-order.json")
    assert "no-order.json: entry: no ServiceRequest with intent" in str(info.value)


def test_proposal_is_not_a_referral_and_two_orders_are_ambiguous() -> None:
    data = parse_bundle(
        bundle(*referral_resources(sr=service_request(intent="proposal"))), source="p"
    )
    with pytest.raises(FhirInputError, match="no ServiceRequest"):
        ReferralCase.from_bundle(data, source="p")
    second = service_request(id="sr-2")
    data = parse_bundle(bundle(*referral_resources(), second), source="two.json")
    with pytest.raises(
        FhirInputError, match=r"2 ServiceRequests could be the referral: entry\[5\]"
    ):
        ReferralCase.from_bundle(data, source="two.json")


def test_subject_that_is_not_in_the_bundle() -> None:
    resources = referral_resources(sr=service_request(subject={"reference": "Patient/pat-9"}))
    data = parse_bundle(bundle(*resources), source="case.json")
    with pytest.raises(FhirInputError) as info:
        ReferralCase.from_bundle(data, source="case.json")
    i = entry_index(resources, "ServiceRequest")
    assert (
        f"case.json: entry[{i}].resource.subject: 'Patient/pat-9' resolves to nothing in the "
        "Bundle, not a Patient" in str(info.value)
    )


# --- the public material in ../shared -----------------------------------------------------


def test_pas_request_bundle_maps_to_a_case(public_fixtures: Path) -> None:
    """A Da Vinci PAS request Bundle: a preauthorization Claim around a referral ServiceRequest.

    The case reads its ServiceRequest, Patient and Coverage; the requester comes from the
    Claim's provider (the ServiceRequest has none), and the ServiceRequest has no authoredOn.
    """
    path = public_fixtures / "davinci-pas-test-kit" / "conformant_pas_bundle_v110.json"
    case = ReferralCase.from_bundle(load_bundle(path), source=path.name)
    assert case.service_request.id == "ReferralRequestExample"
    assert case.patient.id == "SubscriberExample"
    assert [c.id for c in case.coverage] == ["InsuranceExample"]
    assert isinstance(case.requester, Organization) and case.requester.id == "UMOExample"
    assert case.performer is None
    assert case.authored_on is None
    assert case.specialty == "Consultation"
    assert case.payer_ids == ("789312", "Organization/InsurerExample")
    assert case.documents == () and case.claim_responses == ()
    demo = case.demographics()
    assert (demo.family, demo.given, demo.sex) == ("SMITH", ("JOE",), "male")
    assert demo.member_id == "12345678901"
    assert demo.payer == "Organization/InsurerExample"


def test_pas_response_bundle_is_not_a_referral(public_fixtures: Path) -> None:
    path = public_fixtures / "davinci-pas-test-kit" / "valid_pa_response_bundle.json"
    with pytest.raises(FhirInputError, match="no ServiceRequest"):
        ReferralCase.from_bundle(load_bundle(path), source=path.name)


def test_patient_f001_demographics(public_fixtures: Path) -> None:
    """The file starts with a UTF-8 byte-order mark, which plain json.load rejects."""
    pat = load_resource(public_fixtures / "fhir-server" / "Patient-f001.json", Patient)
    assert Demographics.from_patient(pat) == Demographics(
        family="van de Heuvel",
        given=("Pieter",),
        birth_date=date(1944, 11, 17),
        sex="male",
        address_lines=("Van Egmondkade 23",),
        city="Amsterdam",
        postal_code="1024 RJ",
        phone="0648352638",
    )


def test_patient_file_is_not_a_bundle(public_fixtures: Path) -> None:
    path = public_fixtures / "fhir-server" / "Patient-f001.json"
    with pytest.raises(FhirInputError, match=r"Patient-f001\.json: resourceType: is 'Patient'"):
        load_bundle(path)


def test_document_reference_with_base64(public_fixtures: Path) -> None:
    path = public_fixtures / "fhir-server" / "DocumentReference-example-with-base64.json"
    doc = load_resource(path, DocumentReference)
    # Its inline data is "This is a test" declared as application/hl7-v3+xml: not plain text.
    assert document_text(doc) is None
    assert document_loinc_codes(doc) == ("34108-1",)
    assert document_date(doc) == date(2005, 12, 24)
    data = json.loads(path.read_bytes())
    data["content"][0]["attachment"]["contentType"] = "text/plain"
    as_text = parse_resource(data, DocumentReference, source=path.name)
    assert document_text(as_text) == "This is a test"


def test_url_only_document_reference_has_no_text(public_fixtures: Path) -> None:
    path = public_fixtures / "fhir-server" / "DocumentReference-example-relatesTo-code-appends.json"
    assert document_text(load_resource(path, DocumentReference)) is None


def test_task_example_parses(public_fixtures: Path) -> None:
    task_ = load_resource(public_fixtures / "fhir-server" / "task-example1.json", Task)
    assert task_.status == "in-progress"
    assert task_.focus is not None and task_.focus.reference == "ServiceRequest/lipid"
    assert [c.get_resource_type() for c in task_.contained or []] == ["Provenance"]


def test_a_fixed_case_is_hashed_once_and_any_other_on_every_call(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Issue 17: the engine's case of a run is declared fixed, and hashed once (encoding a
    Bundle to hash it cost more than the rest of a tool's read of the case); a Bundle not
    declared fixed is hashed on every call, so one changed in place is parsed again."""
    from carebound.fhir import _case_cache, fixed_case, referral_case_of

    encoded = []
    sorted_json = _case_cache._sorted_json

    def counting(value: Any) -> bytes:
        encoded.append(value)
        return sorted_json(value)

    monkeypatch.setattr(_case_cache, "_sorted_json", counting)
    fixed = bundle(*referral_resources())
    fixed_case(fixed)
    for _ in range(3):
        assert referral_case_of(fixed, source="run r1 case").patient.id == "pat-1"
    assert len(encoded) == 1
    loose = bundle(*referral_resources())
    [patient_entry] = [e for e in loose["entry"] if e["resource"]["resourceType"] == "Patient"]
    assert str(referral_case_of(loose, source="a").patient.birthDate) != "1931-02-03"
    patient_entry["resource"]["birthDate"] = "1931-02-03"  # changed in place: parsed again
    assert str(referral_case_of(loose, source="a").patient.birthDate) == "1931-02-03"
    assert len(encoded) == 3


def test_a_case_is_parsed_once_per_distinct_bundle() -> None:
    from concurrent.futures import ThreadPoolExecutor

    from carebound.fhir import referral_case_of

    case = bundle(*referral_resources())
    first = referral_case_of(case, source="run r1 case")
    again = referral_case_of(json.loads(json.dumps(case)), source="run r1 case")
    assert again is first  # equal content: the parsed view is shared, not parsed again
    # another run on the same Bundle: not parsed again, but its errors name its own source
    other = referral_case_of(case, source="run r2 case")
    assert other.source == "run r2 case" and other.bundle is first.bundle
    edited = bundle(*referral_resources(sr=service_request(id="sr-other")))
    assert referral_case_of(edited, source="run r1 case").service_request.id == "sr-other"
    with ThreadPoolExecutor(8) as pool:  # a worker's slots share it
        views = list(pool.map(lambda i: referral_case_of(case, source=f"t{i % 3}"), range(48)))
    assert {v.patient.id for v in views} == {"pat-1"}
    resources = [r for r in referral_resources() if r["resourceType"] != "ServiceRequest"]
    for source in ("a.json", "b.json"):  # a failure is not cached: each names its own source
        with pytest.raises(FhirInputError, match=f"{source}: entry: no ServiceRequest"):
            referral_case_of(bundle(*resources), source=source)


def test_a_case_key_tells_apart_what_orjson_would_write_alike() -> None:
    """The parsed-case cache keys a Bundle by orjson's sorted JSON; where orjson refuses or may
    have written a NaN as null, by the standard library's (so a NaN and a null, or an integer
    beyond 64 bits, never share a parsed case)."""
    from carebound.fhir._case_cache import _sorted_json

    base = bundle(*referral_resources())
    assert _sorted_json(base) == orjson.dumps(base, option=orjson.OPT_SORT_KEYS)
    keys = {
        _sorted_json({**base, "x": value}) for value in (float("nan"), None, 2**70, float(2**70))
    }
    assert len(keys) == 4
