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


def test_metrics_ask_for_the_token_when_one_is_set(make_web: Any) -> None:
    # /metrics is figures, not PHI, but it is the organisation's volumes and each scrape folds
    # audit events: with a token set, only a scraper bearing it is answered.
    web: Web = make_web(metrics_token="scrape-secret-for-tests")
    run_id = web.park().run_id
    browser = web.browser()
    for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": "Basic x"}):
        refused = browser.get("/metrics", headers=headers)
        assert refused.status_code == 401
        assert refused.headers["www-authenticate"].startswith("Bearer")
        assert refused.json()["code"] == "metrics_token"
        assert "carebound_" not in refused.text
    allowed = browser.get("/metrics", headers={"Authorization": "Bearer scrape-secret-for-tests"})
    assert allowed.status_code == 200 and "carebound_runs_started_total" in allowed.text
    # The API's description stays open (it holds no data; every call it describes needs a
    # token), so Swagger UI can be used to try the API with one's own token.
    for path in ("/openapi.json", "/docs"):
        described = browser.get(path)
        assert described.status_code == 200 and run_id not in described.text


def test_a_workers_metrics_listen_on_loopback_unless_told(
    redis_client: Any, key_prefix: str
) -> None:
    from carebound import Runner
    from carebound.cli._upkeep import Upkeep
    from tests.servers import free_port

    runner = Runner(redis_client, prefix=key_prefix)
    port = free_port()
    upkeep = Upkeep(runner, metrics_port=port, pool=False)
    upkeep.serve_metrics()
    assert upkeep.metrics_address == ("127.0.0.1", port)
    upkeep.stop()  # and the port is given back
    again = Upkeep(runner, metrics_port=port, pool=False, metrics_addr="0.0.0.0")
    again.serve_metrics()
    assert again.metrics_address == ("0.0.0.0", port)
    again.stop()
