"""Da Vinci CDex document requests against the real FHIR test server (issue 15).

The office's endpoint is the ``/office`` base of testing/fhir-server (Medplum's FhirRouter); the
test plays the referring office by completing the Task with a DocumentReference, as an office's
system would.
"""

from __future__ import annotations

import base64
import datetime as dt
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis

from carebound.testing import Fault, FaultProxy, FaultSchedule
from carebound.tools.connectors import SystemUnavailableError
from carebound.tools.connectors._bundle import RunContext
from carebound.tools.connectors.config import OfficeConfig
from carebound.tools.connectors.outreach_channels import (
    EFFECT_ID_SYSTEM,
    ChannelOutreach,
    build_outreach,
)
from tests.fhir_server import FhirBases, fhir_json
from tests.servers import free_port
from tests.test_fhir_rest import smart_server  # noqa: F401 (a fixture)

NOW = dt.datetime(2026, 3, 2, 9, 0, tzinfo=dt.UTC)
NOTE_TEXT = "Progress note. Assessment and plan: stable angina."


def office_config(base: str) -> OfficeConfig:
    """A CDex channel to ``base`` with fast retries and a breaker that opens at once."""
    return OfficeConfig.model_validate({"cdex": {
        "base_url": base,
        "retry": {"attempts": 2, "backoff_s": 0.01, "cap_s": 1, "jitter_s": 0},
        "breaker": {"failure_threshold": 1, "reset_timeout_s": 60},
        "timeouts": {"connect_s": 1, "read_s": 5},
    }})  # fmt: skip


def cdex_outreach(client: redis.Redis, prefix: str, base: str, run_id: str) -> ChannelOutreach:
    """The run's outreach with a CDex channel to ``base``."""
    run = RunContext(run_id=run_id, agent="referral_chaser", prefix=prefix, client=client)
    return build_outreach(office_config(base), run, clock=lambda: NOW)


def send(outreach: ChannelOutreach, key: str, request_id: str = "docreq-1") -> Any:
    return outreach.send(
        "portal", "https://office.northside.test/fhir", subject="Documents needed",
        body="Please send the progress note (LOINC 11506-3).", request_id=request_id,
        requested_codes=["11506-3"], idempotency_key=key, now=NOW,
    )  # fmt: skip


def tasks_with_key(base: str, key: str) -> list[dict[str, Any]]:
    """The Tasks on the server carrying ``key`` as their effect identifier."""
    bundle = fhir_json(
        httpx.get(f"{base}/Task", params={"identifier": f"{EFFECT_ID_SYSTEM}|{key}"})
    )
    return [e["resource"] for e in bundle.get("entry", [])]  # type: ignore[attr-defined]


def complete_task(base: str, task_ref: str, text: str = NOTE_TEXT) -> None:
    """Play the office: file the document and complete the Task with it as output."""
    doc = {
        "resourceType": "DocumentReference", "status": "current",
        "type": {"coding": [{"system": "http://loinc.org", "code": "11506-3",
                             "display": "Progress note"}]},
        "content": [{"attachment": {"contentType": "text/plain", "creation": "2026-02-20",
                                    "data": base64.b64encode(text.encode()).decode()}}],
    }  # fmt: skip
    created = fhir_json(httpx.post(f"{base}/DocumentReference", json=doc))
    task = fhir_json(httpx.get(f"{base}/{task_ref}"))
    task["status"] = "completed"
    output = {"reference": f"DocumentReference/{created['id']}"}
    task["output"] = [{"type": {"text": "document"}, "valueReference": output}]
    assert httpx.put(f"{base}/{task_ref}", json=task).status_code == 200


def test_a_request_is_one_task_on_the_server_even_when_sent_again(
    redis_client: redis.Redis, key_prefix: str, fhir_bases: FhirBases
) -> None:
    outreach = cdex_outreach(redis_client, key_prefix, fhir_bases.office, "run-cdex")
    receipt = send(outreach, "run-cdex:attempt:1")
    assert receipt.message_id.startswith("Task/") and receipt.attempt == 1
    # A crash after the Task was created but before carebound kept its receipt: the run's
    # state is lost, the call is made again with the same key; the server finds the first.
    redis_client.delete(*redis_client.keys(f"{key_prefix}:*outreach:real:receipts"))
    again = cdex_outreach(redis_client, key_prefix, fhir_bases.office, "run-cdex")
    assert send(again, "run-cdex:attempt:1").message_id == receipt.message_id
    [task] = tasks_with_key(fhir_bases.office, "run-cdex:attempt:1")
    assert task["status"] == "requested" and task["intent"] == "order"
    assert task["code"]["coding"][0]["code"] == "attachment-request"
    assert task["input"][0]["valueCodeableConcept"]["coding"][0]["code"] == "11506-3"
    assert task["groupIdentifier"]["value"] == "docreq-1"


def test_a_completed_task_is_a_reply_handed_out_once(
    redis_client: redis.Redis, key_prefix: str, fhir_bases: FhirBases
) -> None:
    outreach = cdex_outreach(redis_client, key_prefix, fhir_bases.office, "run-reply")
    receipt = send(outreach, "run-reply:attempt:1")
    assert outreach.due_replies(NOW) == []  # not answered yet
    complete_task(fhir_bases.office, receipt.message_id)
    other_worker = cdex_outreach(redis_client, key_prefix, fhir_bases.office, "run-reply")
    [reply] = outreach.due_replies(NOW)
    assert other_worker.due_replies(NOW) == []
    assert reply.request_id == "docreq-1" and reply.channel == "portal"
    [doc] = reply.documents
    assert (doc.code, doc.text, doc.date) == ("11506-3", NOTE_TEXT, dt.date(2026, 2, 20))
    assert doc.resource["resourceType"] == "DocumentReference"


def test_an_office_endpoint_that_is_down_is_unavailable_not_a_tool_error(
    redis_client: redis.Redis, key_prefix: str
) -> None:
    outreach = cdex_outreach(redis_client, key_prefix, f"http://127.0.0.1:{free_port()}/office",
                             "run-down")  # fmt: skip
    with pytest.raises(SystemUnavailableError, match="office is unavailable") as caught:
        send(outreach, "run-down:attempt:1")
    assert caught.value.system == "office"
    assert caught.value.retry_at == NOW + dt.timedelta(seconds=60)  # the breaker opened


def test_the_cdex_endpoint_signs_in_with_smart_backend_services(
    redis_client: redis.Redis,
    key_prefix: str,
    smart_server: tuple[str, dict[str, bytes]],  # noqa: F811 (the fixture imported above)
    tmp_path: Path,
) -> None:
    url, pems = smart_server
    (tmp_path / "office.pem").write_bytes(pems["RS384"])
    config = OfficeConfig.model_validate({"cdex": {
        "base_url": f"{url}/office",
        "auth": {"kind": "smart", "token_url": f"{url}/auth/token", "client_id": "carebound-test",
                 "private_key_file": str(tmp_path / "office.pem"), "alg": "RS384",
                 "key_id": "key-RS384", "scopes": ["system/Task.cruds"]},
    }})  # fmt: skip
    run = RunContext(run_id="run-smart", agent="referral_chaser", prefix=key_prefix,
                     client=redis_client)  # fmt: skip
    receipt = send(build_outreach(config, run, clock=lambda: NOW), "run-smart:attempt:1")
    # The server answers only with a token: without one the Task cannot be read.
    assert httpx.get(f"{url}/office/{receipt.message_id}").status_code == 401
    assert receipt.message_id.startswith("Task/")


def test_a_reply_is_not_lost_when_another_tasks_document_cannot_be_read(
    redis_client: redis.Redis, key_prefix: str, fhir_bases: FhirBases
) -> None:
    # Two requests, both answered. The poll finds both Tasks and reads the first one's
    # document; reading the second's fails (the office answers 500). The first reply must be
    # handed out (its Task is closed in carebound's store once read) and the second must stay
    # open for the next poll: before, the error dropped the first reply with its Task closed.
    upstream, base_name = fhir_bases.root.rsplit("/", 1)
    with FaultProxy(upstream) as proxy:
        office = f"{proxy.url}/{base_name}/office"
        outreach = cdex_outreach(redis_client, key_prefix, office, "run-two")
        for n in (1, 2):
            receipt = send(outreach, f"run-two:attempt:{n}", request_id=f"docreq-{n}")
            complete_task(fhir_bases.office, receipt.message_id)
        proxy.set_schedule(FaultSchedule(script=[Fault.PASS, Fault.PASS, Fault.ERROR_500]))
        first = outreach.due_replies(NOW)
        assert [(r.method, r.fault) for r in proxy.log[-3:]] == [
            ("GET", Fault.PASS), ("GET", Fault.PASS), ("GET", Fault.ERROR_500)]  # fmt: skip
        second = outreach.due_replies(NOW)
    assert len(first) == 1 and len(second) == 1
    assert sorted(r.request_id for r in [*first, *second]) == ["docreq-1", "docreq-2"]
    assert outreach.due_replies(NOW) == []  # each handed out once
