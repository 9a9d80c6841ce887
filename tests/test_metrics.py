"""``/metrics``: the documented carebound_ names, from the audit trail's figures, no PHI, bounded
labels."""

from __future__ import annotations

import re
from typing import Any

from prometheus_client.parser import text_string_to_metric_families

from tests.test_web import Web, decide, sign_in

DOCUMENTED = {
    "carebound_runs_started",
    "carebound_runs_ended",
    "carebound_runs_paused",
    "carebound_holds",
    "carebound_decisions",
    "carebound_decisions_by_rule",
    "carebound_overrides",
    "carebound_escalations",
    "carebound_expiries",
    "carebound_sla_met",
    "carebound_sla_missed",
    "carebound_document_requests",
    "carebound_document_request_attempts",
    "carebound_document_replies",
    "carebound_effects",
    "carebound_run_cycle_seconds",
    "carebound_approval_latency_seconds",
    "carebound_document_reply_seconds",
    "carebound_referral_funnel",
    "carebound_inbox_pending",
    "carebound_store_scrape_seconds",
}
"""The names README's "Metrics" section lists."""

BOUNDED_LABELS = {"agent", "status", "rule", "role", "kind", "tool", "stage", "le"}


def _scrape(web: Web) -> dict[str, Any]:
    answer = web.browser().get("/metrics")
    assert answer.status_code == 200
    assert answer.headers["content-type"].startswith("text/plain")
    return {f.name: f for f in text_string_to_metric_families(answer.text)}


def test_metrics_are_the_documented_names_and_follow_the_runs(make_web: Any) -> None:
    web: Web = make_web()
    first = web.park()
    web.park()
    families = _scrape(web)
    assert set(families) == DOCUMENTED
    started = {s.labels["agent"]: s.value for s in families["carebound_runs_started"].samples
               if s.name.endswith("_total")}  # fmt: skip
    assert started == {"demo": 2}
    inbox = {s.labels["role"]: s.value for s in families["carebound_inbox_pending"].samples}
    assert inbox == {"intake_coordinator": 2}

    client = web.browser()
    csrf = sign_in(client, "casey")
    decide(client, first.approval_id, csrf, action="approve", args_hash=first.args_hash)
    families = _scrape(web)
    decisions = {s.labels["kind"]: s.value for s in families["carebound_decisions"].samples
                 if s.name.endswith("_total")}  # fmt: skip
    assert decisions == {"approve": 1}
    latency = [s for s in families["carebound_approval_latency_seconds"].samples
               if s.name.endswith("_count")]  # fmt: skip
    assert [(s.labels["role"], s.value) for s in latency] == [("intake_coordinator", 1)]
    inbox = {s.labels["role"]: s.value for s in families["carebound_inbox_pending"].samples}
    assert inbox == {"intake_coordinator": 1}


def test_metrics_carry_no_phi_and_only_bounded_labels(make_web: Any) -> None:
    web: Web = make_web()
    web.park()
    text = web.browser().get("/metrics").text
    labels = set(re.findall(r"[{,]([a-z_]+)=", text))
    assert labels <= BOUNDED_LABELS, labels - BOUNDED_LABELS
    assert "sam" not in text  # the requester
    assert "Patient/" not in text
    assert not re.search(r'="r[0-9a-f]{12}', text)  # no run ids
    patients = [
        e["resource"] for e in web.case["entry"] if e["resource"]["resourceType"] == "Patient"
    ]
    assert patients
    for patient in patients:
        assert patient["name"][0]["family"] not in text
        assert patient["birthDate"] not in text
