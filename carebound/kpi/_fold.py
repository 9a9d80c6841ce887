"""Fold audit events into process figures: pure, no I/O.

The audit trail is the source of truth. :func:`fold` turns a batch of events, in the order
they were appended, into counter increments per day (``Increments``) and the small "open"
state a later event needs (when a run started, when a hold was made and its deadline, since
when a run waits on a system). :mod:`carebound.state.kpi` keeps both in Redis and applies a
fold atomically with the cursor it advanced, so every event is counted exactly once.

Counter fields are ``metric|dim=value`` (``dim`` one of agent, rule, role, reviewer, tool,
field, status, kind, or ``all=*``); histograms add ``|b=N``, the index of a log bucket of
seconds (:func:`bucket`, about 2.5 % wide), so percentiles are kept incrementally and read
back within that precision.
"""

from __future__ import annotations

import json
import math
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

GROWTH = 1.05
"""Each histogram bucket's upper bound is this factor above the one before (1 s and up)."""

FINAL = frozenset({"completed", "failed", "budget_exhausted", "quarantined", "cancelled"})
"""Run statuses that end a run."""

FUNNEL = ("received", "complete", "decided", "accepted", "routed")
"""A referral's stages, in order (see :func:`fold`)."""

_DECIDED = frozenset({"accepted", "rejected", "cancelled", "on-hold", "declined"})


def bucket(seconds: float) -> int:
    """The histogram bucket of a duration (0: under one second)."""
    if seconds < 1:
        return 0
    return max(1, math.ceil(math.log(seconds) / math.log(GROWTH)))


def bucket_value(index: int) -> float:
    """A representative duration of bucket ``index`` (its geometric middle), in seconds."""
    if index <= 0:
        return 0.5
    return float(GROWTH ** (index - 0.5))


Increments = Counter[tuple[str, str]]
"""(day, field) -> amount."""


@dataclass
class Folded:
    """What folding a batch changes: counters per day, and the open state to keep or drop."""

    increments: Increments = field(default_factory=Counter)
    put: dict[str, str] = field(default_factory=dict)
    drop: set[str] = field(default_factory=set)


def needed_keys(events: Iterable[Mapping[str, Any]]) -> list[str]:
    """The open-state keys folding ``events`` reads (load them before :func:`fold`)."""
    keys: dict[str, None] = {}
    for event in events:
        keys[f"run:{event['run_id']}"] = None
        detail = event.get("detail") or {}
        if event.get("action") in ("hold", "decision") and detail.get("approval_id"):
            keys[f"hold:{detail['approval_id']}"] = None
    return list(keys)


class _Fold:
    def __init__(self, open_state: Mapping[str, str | None], referral_agents: frozenset[str]):
        self.state: dict[str, dict[str, Any] | None] = {
            key: (json.loads(raw) if raw else None) for key, raw in open_state.items()
        }
        self.referral_agents = referral_agents
        self.out = Folded()

    def count(self, day: str, metric: str, dims: Mapping[str, str], amount: int = 1) -> None:
        inc = self.out.increments
        inc[(day, f"{metric}|all=*")] += amount
        for dim, value in dims.items():
            inc[(day, f"{metric}|{dim}={value}")] += amount

    def observe(self, day: str, metric: str, dims: Mapping[str, str], seconds: float) -> None:
        b = bucket(max(seconds, 0.0))
        inc = self.out.increments
        inc[(day, f"{metric}|all=*|b={b}")] += 1
        for dim, value in dims.items():
            inc[(day, f"{metric}|{dim}={value}|b={b}")] += 1
        self.count(day, f"{metric}.seconds", dims, round(max(seconds, 0.0)))

    def get(self, key: str) -> dict[str, Any] | None:
        return self.state.get(key)

    def set(self, key: str, value: dict[str, Any] | None) -> None:
        self.state[key] = value
        if value is None:
            self.out.put.pop(key, None)
            self.out.drop.add(key)
        else:
            self.out.drop.discard(key)
            self.out.put[key] = json.dumps(value, sort_keys=True, separators=(",", ":"))

    def stage(self, day: str, run: dict[str, Any], name: str) -> None:
        """Count a referral's funnel stage once per run (earlier stages implied)."""
        if run["agent"] not in self.referral_agents:
            return
        done = set(run.setdefault("stages", []))
        for stage in FUNNEL[: FUNNEL.index(name) + 1]:
            if stage in done or (stage == "accepted" and name == "decided"):
                continue
            done.add(stage)
            self.count(day, f"funnel.{stage}", {"agent": run["agent"]})
        run["stages"] = sorted(done)

    def event(self, event: Mapping[str, Any]) -> None:
        at = datetime.fromisoformat(str(event["time"]).replace("Z", "+00:00"))
        t = at.timestamp()
        day = at.date().isoformat()
        run_key = f"run:{event['run_id']}"
        run = self.get(run_key)
        action = event["action"]
        actor = event.get("actor") or {}
        detail = event.get("detail") or {}
        if action == "create" and "agent" in detail and run is None:
            run = {"t": t, "agent": str(detail["agent"]), "held": 0, "start_day": day}
            self.count(day, "runs.started", {"agent": run["agent"]})
            if run["agent"] in self.referral_agents:
                self.count(day, "referrals.open", {"agent": run["agent"]})
            self.stage(day, run, "received")
            self.set(run_key, run)
            return
        if run is None:
            return  # a run started before the figures were kept: not counted
        agent = run["agent"]
        if "status" in detail and action in ("event", "update"):
            self.status(day, t, run_key, run, str(detail["status"]))
        elif action == "hold":
            self.hold(day, t, run_key, run, detail)
        elif action == "decision":
            self.decision(day, t, run_key, run, actor=actor, detail=detail)
        elif action == "event" and detail.get("kind") == "hold_withdrawn":
            self.withdrawn(day, run_key, run)
        elif action == "effect" and event.get("outcome") == "success":
            self.effect(day, t, run_key, run, detail)
        elif action == "deny":
            self.count(day, "denials", {"agent": agent, "rule": str(detail.get("rule"))})

    def status(self, day: str, t: float, run_key: str, run: dict[str, Any], status: str) -> None:
        agent = run["agent"]
        if run.get("wait") is not None:
            self.count(day, "wait.systems.seconds", {"agent": agent}, round(t - run["wait"]))
            run["wait"] = None
        if status == "waiting":
            run["wait"] = t
        elif status == "paused" and not run.get("paused"):
            run["paused"] = 1
            self.count(day, "runs.paused", {"agent": agent})
        if status in FINAL:
            dims = {"agent": agent}
            if run.get("hold"):  # a cancelled run's pending hold was withdrawn with it
                self.withdrawn(day, run_key, run)
            self.count(day, "runs.ended", {**dims, "status": status})
            if status == "completed":
                self.count(day, "runs.touchless" if not run["held"] else "runs.exception", dims)
                self.observe(day, "cycle", dims, t - run["t"])
            elif run["held"]:
                self.count(day, "runs.exception", dims)
            if agent in self.referral_agents:  # still open counts by the day it came in
                self.count(run["start_day"], "referrals.open", dims, -1)
            self.set(run_key, None)
        else:
            self.set(run_key, run)

    def hold(
        self, day: str, t: float, run_key: str, run: dict[str, Any], detail: Mapping[str, Any]
    ) -> None:
        rule, role, tool = (str(detail.get(k)) for k in ("rule", "role", "tool"))
        self.count(day, "holds", {"agent": run["agent"], "rule": rule, "role": role, "tool": tool})
        run["held"] = 1
        self.set(run_key, run)
        hold = {"t": t, "rule": rule, "role": role, "agent": run["agent"]}
        if detail.get("deadline"):
            hold["deadline"] = detail["deadline"]
        self.set(f"hold:{detail['approval_id']}", hold)
        run["hold"] = str(detail["approval_id"])  # the run's pending hold (at most one at a time)
        self.set(run_key, run)

    def withdrawn(self, day: str, run_key: str, run: dict[str, Any]) -> None:
        """The run's pending hold was withdrawn (its run cancelled, or the recovery's replay
        did not hold the call again): no longer open, and no decision."""
        approval_id = run.pop("hold", None)
        if approval_id is None:
            return
        self.count(day, "holds.withdrawn", {"agent": run["agent"]})
        self.set(f"hold:{approval_id}", None)
        self.set(run_key, run)

    def decision(
        self,
        day: str,
        t: float,
        run_key: str,
        run: dict[str, Any],
        *,
        actor: Mapping[str, Any],
        detail: Mapping[str, Any],
    ) -> None:
        key = f"hold:{detail.get('approval_id')}"
        hold = self.get(key)
        if hold is None:
            return
        kind, outcome = str(detail.get("decision")), str(detail.get("outcome"))
        role = str(detail.get("role") or hold["role"])
        if outcome == "escalated":
            self.count(day, "escalations", {"role": hold["role"], "rule": hold["rule"]})
            hold["role"] = str(detail.get("to_role") or hold["role"])
            self.set(key, hold)
            return
        if outcome == "partial":
            return
        waited = t - hold["t"]
        self.count(day, "wait.people.seconds", {"agent": run["agent"]}, round(waited))
        self.set(key, None)
        if run.pop("hold", None) is not None:
            self.set(run_key, run)
        if outcome == "expired" or kind == "expire":
            self.count(day, "expiries", {"role": hold["role"], "rule": hold["rule"]})
            self.count(day, "sla.missed", {"role": hold["role"], "rule": hold["rule"]})
            return
        reviewer = str(detail.get("principal") or actor.get("id"))
        dims = {"role": role, "rule": hold["rule"]}
        self.observe(day, "latency", dims, waited)
        self.count(day, "decisions", {**dims, "reviewer": reviewer, "kind": kind})
        if kind in ("edit", "reject"):
            self.count(day, "overrides", {**dims, "reviewer": reviewer, "kind": kind})
        deadline = hold.get("deadline")
        if deadline is not None:
            due = datetime.fromisoformat(str(deadline).replace("Z", "+00:00")).timestamp()
            self.count(day, "sla.met" if t <= due else "sla.missed", dims)

    def effect(
        self, day: str, t: float, run_key: str, run: dict[str, Any], detail: Mapping[str, Any]
    ) -> None:
        tool = str(detail.get("tool"))
        agent = run["agent"]
        self.count(day, "effects", {"agent": agent, "tool": tool})
        if tool == "open_document_request":
            self.count(day, "chase.requests", {"agent": agent})
            run.setdefault("requests", {})[str(detail.get("task"))] = t
        elif tool == "send_request_attempt":
            self.count(day, "chase.attempts", {"agent": agent})
        elif tool == "record_reply":
            self.count(day, "chase.replies", {"agent": agent})
            opened = run.get("requests", {}).get(str(detail.get("task")))
            if opened is not None:
                self.observe(day, "chase.reply", {"agent": agent}, t - opened)
        elif tool == "close_document_request":
            outcome = str(detail.get("outcome"))
            self.count(day, "chase.closed", {"agent": agent, "status": outcome})
            if outcome == "completed":
                self.stage(day, run, "complete")
        elif tool in ("reconcile_fix_demographic", "reconcile_fix_member_id"):
            path = "held" if detail.get("decided") else "auto"
            self.count(day, f"fixes.{path}", {"field": str(detail.get("field", "member_id"))})
        elif tool == "set_referral_status":
            status = str(detail.get("status"))
            if status in _DECIDED:
                self.stage(day, run, "accepted" if status == "accepted" else "decided")
        elif tool == "route_to_scheduling":
            self.stage(day, run, "routed")
        self.set(run_key, run)


def fold(
    events: Iterable[Mapping[str, Any]],
    open_state: Mapping[str, str | None],
    *,
    referral_agents: frozenset[str],
) -> Folded:
    """Fold ``events`` (audit events as stored, oldest first) given the open state their
    :func:`needed_keys` read. Events of runs started before the figures were kept are
    skipped: a run is counted from its start event on."""
    folding = _Fold(open_state, referral_agents)
    for event in events:
        folding.event(event)
    return folding.out
