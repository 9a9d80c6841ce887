"""Prometheus metrics: the process figures, the review inbox and the store, for ``/metrics``.

Every name starts with ``carebound_``. Labels take only values from bounded sets (agent, rule,
role, status, decision kind, system, funnel stage): never a reviewer, a patient, a run or an
approval id, and never PHI. The counters are the all-time totals of :mod:`carebound.state.kpi`
(folded from the audit trail first, up to :data:`FOLD_PER_SCRAPE` new events, so a scrape
stays quick; the worker's sweep folds the rest), so every process exporting them agrees.

Use :func:`registry` with ``prometheus_client.generate_latest`` (the web server's ``/metrics``)
or ``prometheus_client.start_http_server`` (``carebound worker --metrics-port``).
"""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any

import redis
from prometheus_client import CollectorRegistry
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector

from carebound.approvals import ApprovalStore
from carebound.kpi import FUNNEL, REFERRAL_AGENTS, bucket_value
from carebound.state.kpi import KpiStore

FOLD_PER_SCRAPE = 5_000
"""Most new audit events one scrape folds before it answers."""

LE_SECONDS = (1.0, 5.0, 15.0, 60.0, 300.0, 900.0, 3600.0, 14_400.0, 86_400.0, 604_800.0)
"""The histogram buckets exported (seconds): a second to a week."""

# (exported name, help, kpi metric, label): counters from the figures' all-time totals, each
# broken down by one bounded dimension (the figures are kept per single dimension).
_COUNTERS: tuple[tuple[str, str, str, str], ...] = (
    ("runs_started", "Runs started.", "runs.started", "agent"),
    ("runs_ended", "Runs ended, by final status.", "runs.ended", "status"),
    ("runs_paused", "Runs that paused for a person at least once.", "runs.paused", "agent"),
    ("holds", "Holds made by the gate.", "holds", "rule"),
    ("decisions", "Final decisions on holds, by kind.", "decisions", "kind"),
    ("decisions_by_rule", "Final decisions on holds, by rule.", "decisions", "rule"),
    ("overrides", "Decisions that edited or rejected the proposal.", "overrides", "rule"),
    ("escalations", "Holds escalated to another role.", "escalations", "role"),
    ("expiries", "Holds that expired undecided.", "expiries", "role"),
    ("sla_met", "Decisions made by the hold's deadline.", "sla.met", "role"),
    ("sla_missed", "Decisions after the deadline, and expiries.", "sla.missed", "role"),
    ("document_requests", "Document requests opened.", "chase.requests", "agent"),
    ("document_request_attempts", "Document requests sent.", "chase.attempts", "agent"),
    ("document_replies", "Replies matched to document requests.", "chase.replies", "agent"),
    ("effects", "External and reversible effects made.", "effects", "tool"),
)  # fmt: skip

_HISTOGRAMS: tuple[tuple[str, str, str, str], ...] = (
    ("run_cycle_seconds", "Start to completion of runs.", "cycle", "agent"),
    ("approval_latency_seconds", "Hold to final decision.", "latency", "role"),
    ("document_reply_seconds", "Document request to reply.", "chase.reply", "agent"),
)


class FiguresCollector(Collector):
    """Collects carebound's metrics from Redis on each scrape."""

    def __init__(
        self,
        client: redis.Redis,
        *,
        prefix: str,
        extra: Iterable[Callable[[], Iterable[Metric]]] = (),
    ) -> None:
        self._store = KpiStore(client, prefix=prefix, referral_agents=REFERRAL_AGENTS)
        self._approvals = ApprovalStore(client, prefix=prefix)
        self._extra = tuple(extra)

    def collect(self) -> Iterator[Metric]:
        started = time.perf_counter()
        self._store.catch_up(limit=FOLD_PER_SCRAPE)
        totals = self._store.totals()
        yield from self._counters(totals)
        yield from self._histograms(totals)
        yield from self._funnel(totals)
        yield from self._inbox(totals)
        for extra in self._extra:
            yield from extra()
        store = GaugeMetricFamily(
            "carebound_store_scrape_seconds",
            "Time this scrape spent reading the store (folding new audit events included).",
        )
        store.add_metric([], time.perf_counter() - started)
        yield store

    def _counters(self, totals: Mapping[str, int]) -> Iterator[Metric]:
        for name, help_text, metric, label in _COUNTERS:
            family = CounterMetricFamily(f"carebound_{name}", help_text, labels=[label])
            for key, value in sorted(_by(totals, metric, label).items()):
                family.add_metric([key], value)
            yield family

    def _histograms(self, totals: Mapping[str, int]) -> Iterator[Metric]:
        for name, help_text, metric, label in _HISTOGRAMS:
            family = HistogramMetricFamily(f"carebound_{name}", help_text, labels=[label])
            hists: dict[str, dict[int, int]] = defaultdict(dict)
            sums: dict[str, int] = {}
            for field, value in totals.items():
                parts = field.split("|")
                dim, _, key = parts[1].partition("=") if len(parts) > 1 else ("", "", "")
                if dim != label:
                    continue
                if parts[0] == metric and len(parts) == 3:
                    hists[key][int(parts[2][2:])] = value
                elif parts[0] == f"{metric}.seconds" and len(parts) == 2:
                    sums[key] = value
            for key, hist in sorted(hists.items()):
                cumulative, buckets = 0, []
                for le in LE_SECONDS:
                    cumulative = sum(n for b, n in hist.items() if bucket_value(b) <= le)
                    buckets.append((str(le), float(cumulative)))
                buckets.append(("+Inf", float(sum(hist.values()))))
                family.add_metric([key], buckets, float(sums.get(key, 0)))
            yield family

    def _funnel(self, totals: Mapping[str, int]) -> Iterator[Metric]:
        family = CounterMetricFamily(
            "carebound_referral_funnel", "Referrals reaching each stage.", labels=["stage"]
        )
        for stage in FUNNEL:
            family.add_metric([stage], totals.get(f"funnel.{stage}|all=*", 0))
        yield family

    def _inbox(self, totals: Mapping[str, int]) -> Iterator[Metric]:
        family = GaugeMetricFamily(
            "carebound_inbox_pending", "Holds waiting for a person, by role.", labels=["role"]
        )
        # The roles holds were ever made for (a bounded set), not a scan of the keyspace.
        roles = sorted(set(_by(totals, "holds", "role")) | set(_by(totals, "escalations", "role")))
        for role, count in self._approvals.pending_counts(roles).items():
            family.add_metric([role], count)
        yield family


def _by(totals: Mapping[str, int], metric: str, dim: str) -> dict[str, int]:
    """``metric``'s totals by the values of ``dim``."""
    out: dict[str, int] = {}
    head = f"{metric}|{dim}="
    for field, value in totals.items():
        if field.startswith(head) and "|b=" not in field[len(head) :]:
            out[field[len(head) :]] = value
    return out


def pool_metrics(stats: Callable[[], Any]) -> Callable[[], Iterable[Metric]]:
    """Metrics of the worker pool from ``stats`` (``WorkQueue.stats``): queue depth, oldest
    pending age, message counts, and busy and free slots over the live workers."""

    def collect() -> Iterator[Metric]:
        s = stats()
        depth = GaugeMetricFamily("carebound_work_queue_depth", "Messages waiting or in progress.")
        depth.add_metric([], s.depth)
        oldest = GaugeMetricFamily(
            "carebound_work_oldest_pending_seconds", "Age of the oldest message (0: empty)."
        )
        oldest.add_metric([], s.oldest_age_s or 0.0)
        counts = CounterMetricFamily(
            "carebound_work_messages", "Work messages, by what became of them.", labels=["outcome"]
        )
        for outcome in ("enqueued", "coalesced", "done", "busy", "reclaimed", "dead_lettered",
                        "retried"):  # fmt: skip
            counts.add_metric([outcome], getattr(s, outcome))
        dead = GaugeMetricFamily("carebound_work_dead_letters", "Dead letters waiting.")
        dead.add_metric([], s.dead_letters)
        slots = GaugeMetricFamily(
            "carebound_worker_slots", "Slots of the live workers.", labels=["state"]
        )
        slots.add_metric(["busy"], sum(int(w.get("busy", 0)) for w in s.workers))
        slots.add_metric(["free"], sum(int(w.get("free", 0)) for w in s.workers))
        workers = GaugeMetricFamily("carebound_workers", "Live worker processes.")
        workers.add_metric([], len(s.workers))
        yield from (depth, oldest, counts, dead, slots, workers)

    return collect


def registry(
    client: redis.Redis,
    *,
    prefix: str,
    extra: Iterable[Callable[[], Iterable[Metric]]] = (),
) -> CollectorRegistry:
    """A registry with carebound's collector (and ``extra`` metric sources, e.g. the worker
    pool's), for ``generate_latest`` or ``start_http_server``."""
    reg = CollectorRegistry(auto_describe=False)
    reg.register(FiguresCollector(client, prefix=prefix, extra=extra))
    return reg
