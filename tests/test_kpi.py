"""Process figures (carebound.kpi): folded from the audit trail, exactly once, and the same
numbers as the trail recomputed by hand."""

from __future__ import annotations

import json
import statistics
import threading
from datetime import datetime
from pathlib import Path
from typing import Any

import redis

from carebound.kpi import REFERRAL_AGENTS, bucket, bucket_value, build_report, fold
from carebound.state import audit_index
from carebound.state.kpi import KpiStore
from tests.test_cli import cli, cli_json

SCENARIOS = Path(__file__).resolve().parent.parent / "scenarios"


def _trail(client: redis.Redis, prefix: str) -> list[dict[str, Any]]:
    """Every audit event of the store, in append order, from the global index."""
    entries = client.xrange(f"{prefix}:audit")
    return [json.loads(raw) for _, raw in audit_index.resolve(client, prefix, entries)]


def _t(event: dict[str, Any]) -> float:
    return datetime.fromisoformat(event["time"].replace("Z", "+00:00")).timestamp()


def test_report_after_the_scenarios_matches_the_trail_recomputed_by_hand(
    env: str, key_prefix: str, redis_client: redis.Redis
) -> None:
    cli("--store", "working", "run", str(SCENARIOS))
    got = cli_json("report")
    events = _trail(redis_client, key_prefix)

    started = {e["run_id"]: e for e in events if e["action"] == "create"}
    ends = {
        e["run_id"]: e
        for e in events
        if e["action"] in ("event", "update") and e["detail"].get("status") == "completed"
    }
    held = {e["run_id"] for e in events if e["action"] == "hold"}
    assert got["runs"]["started"] == len(started) > 30
    assert got["runs"]["completed"] == len(ends) > 10

    # cycle time: start to completion, per completed run; the report keeps ~5 % buckets
    cycles = sorted(_t(ends[r]) - _t(started[r]) for r in ends)
    p50 = statistics.quantiles(cycles, n=100, method="inclusive")[49]
    assert got["cycle_time_s"]["n"] == len(cycles)
    assert _same_bucket(got["cycle_time_s"]["p50"], cycles, 0.5), (got["cycle_time_s"], p50)

    # exception rate: runs that ended having been held at least once, over runs that ended
    ended = {
        e["run_id"]
        for e in events
        if e["action"] in ("event", "update")
        and e["detail"].get("status") in ("completed", "failed", "cancelled", "quarantined")
    }
    assert got["runs"]["exception_rate"] == round(len(ended & held) / len(ended), 4)
    assert got["runs"]["touchless_rate"] == round(len(set(ends) - held) / len(ended), 4)

    # override rate: edits and rejects over final decisions
    final = [
        e
        for e in events
        if e["action"] == "decision" and e["detail"]["outcome"] not in ("partial", "escalated")
    ]
    overrides = [e for e in final if e["detail"]["decision"] in ("edit", "reject")]
    assert got["approvals"]["decisions"] == len(final) > 5
    assert got["approvals"]["override_rate"] == round(len(overrides) / len(final), 4)
    assert 0 < got["approvals"]["override_rate"] < 1

    # SLA: a decision at or before the hold's deadline
    holds = {e["detail"]["approval_id"]: e for e in events if e["action"] == "hold"}
    met = sum(
        1
        for e in final
        if _t(e)
        <= datetime.fromisoformat(
            holds[e["detail"]["approval_id"]]["detail"]["deadline"]
        ).timestamp()
    )
    assert got["approvals"]["sla"]["met"] == met
    assert got["approvals"]["sla"]["adherence"] == round(met / len(final), 4)

    # the referral funnel: runs of referral agents reaching each stage
    referral_runs = {r for r, e in started.items() if e["detail"]["agent"] in REFERRAL_AGENTS}
    effects = [e for e in events if e["action"] == "effect" and e["run_id"] in referral_runs]
    routed = {e["run_id"] for e in effects if e["detail"]["tool"] == "route_to_scheduling"}
    accepted = {
        e["run_id"]
        for e in effects
        if e["detail"]["tool"] == "set_referral_status" and e["detail"]["status"] == "accepted"
    }
    assert got["funnel"]["received"] == len(referral_runs)
    assert got["funnel"]["accepted"] == len(accepted | routed) >= 1
    assert got["funnel"]["routed"] == len(routed) >= 1

    # the text report carries the same figures, and a --by breakdown per rule
    text = cli("report", "--by", "rule").stdout
    assert f"{len(started)}" in text and "REF-1" in text


def _same_bucket(reported: float, values: list[float], q: float) -> bool:
    """``reported`` is the bucket value of some observation at the q-th position."""
    n = len(values)
    index = next(i for i in range(n) if i + 1 >= q * n)
    return reported == round(bucket_value(bucket(values[index])), 1)


def test_two_folders_at_once_count_every_event_once(
    redis_client: redis.Redis, key_prefix: str, env: str, case_file: Path
) -> None:
    for _ in range(3):
        cli("run", "--agent", "demo", "--case", str(case_file), "--requester", "ops")
    stores = [
        KpiStore(redis_client, prefix=key_prefix, referral_agents=REFERRAL_AGENTS) for _ in range(4)
    ]
    threads = [threading.Thread(target=s.catch_up) for s in stores]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    report = build_report(stores[0].span(), today=datetime(2026, 12, 5).date())
    assert report["runs"]["started"] == 3
    assert report["approvals"]["holds"] == 3
    assert stores[0].catch_up() == 0  # nothing new: nothing folded again


def test_a_run_started_before_the_figures_were_kept_is_not_half_counted() -> None:
    decision = {
        "run_id": "r1",
        "time": "2026-03-02T10:00:00Z",
        "action": "decision",
        "actor": {"id": "casey", "kind": "person"},
        "detail": {"approval_id": "r1-1", "decision": "approve", "outcome": "ok"},
    }
    out = fold([decision], {"run:r1": None, "hold:r1-1": None}, referral_agents=frozenset())
    assert not out.increments


def test_buckets_are_within_five_percent() -> None:
    for seconds in (1.0, 7.3, 60.0, 3600.0, 86_400.0 * 9):
        assert abs(bucket_value(bucket(seconds)) - seconds) / seconds < 0.05


def test_bad_report_options_are_usage_errors(env: str) -> None:
    result = cli("report", "--since", "yesterday", code=2)
    assert "YYYY-MM-DD" in result.stderr
    result = cli("report", "--by", "colour", code=2)
    assert "agent, rule, role or reviewer" in result.stderr
    result = cli("report", "--since", "2026-03-09", "--until", "2026-03-01", code=2)
    assert "after" in result.stderr


def _open_holds(client: redis.Redis, prefix: str) -> list[str]:
    """The holds the figures' open state still keeps (``hold:<approval id>`` fields)."""
    fields = client.hkeys(f"{prefix}:{{kpi}}:open")
    return sorted(f.decode() for f in fields if f.startswith(b"hold:"))


def test_a_cancelled_runs_hold_leaves_the_open_state(
    redis_client: redis.Redis, key_prefix: str, demo_case: dict[str, Any]
) -> None:
    """Cancelling a parked run withdraws its hold: the figures stop keeping it open (before,
    ``hold:<id>`` stayed in the open state for good, one entry per cancelled hold)."""
    from carebound import Runner
    from tests.test_workers import world_of

    runner = Runner(redis_client, prefix=key_prefix)
    run = runner.start("demo", demo_case, requester="sam", world=world_of(demo_case))
    assert run.pending is not None
    kpis = KpiStore(redis_client, prefix=key_prefix, referral_agents=REFERRAL_AGENTS)
    kpis.catch_up()
    assert _open_holds(redis_client, key_prefix) == [f"hold:{run.pending.request.approval_id}"]
    runner.cancel(run.run_id, by="olga", reason="duplicate referral")
    kpis.catch_up()
    assert _open_holds(redis_client, key_prefix) == []


def test_a_withdrawn_hold_leaves_the_open_state_and_is_counted_as_withdrawn() -> None:
    """A hold the recovery withdrew (its replayed step did not hold the call again) is no
    longer open, nor a decision."""
    events = [
        {"run_id": "r1", "time": "2026-03-02T10:00:00Z", "action": "create",
         "detail": {"agent": "demo"}},
        {"run_id": "r1", "time": "2026-03-02T10:00:01Z", "action": "hold",
         "detail": {"approval_id": "r1-1", "rule": "OUT-2", "role": "intake_coordinator",
                    "tool": "send_document_request"}},
        {"run_id": "r1", "time": "2026-03-02T10:05:00Z", "action": "event",
         "detail": {"kind": "hold_withdrawn", "approval_id": "r1-1", "reason": "replayed"}},
    ]  # fmt: skip
    out = fold(events, {"run:r1": None, "hold:r1-1": None}, referral_agents=frozenset())
    assert "hold:r1-1" not in out.put and "hold:r1-1" in out.drop
    assert out.increments[("2026-03-02", "holds.withdrawn|all=*")] == 1
    assert not any(metric.startswith("decisions") for _, metric in out.increments)
