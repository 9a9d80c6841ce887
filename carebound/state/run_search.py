"""Listing and searching runs: by status, agent, requester, patient reference and start date.

The run registry (``{prefix}:runs``, run id -> created ms) is walked newest first, within the
asked date range (its scores), a batch of records per round trip; every other filter is
applied to the records read. A page answers with the offset of the next one, counted in
matching runs, so paging is stable while no run is added or removed.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import redis

from carebound.clock import to_ms
from carebound.state.keys import global_key, run_key, text
from carebound.state.runs import RunRecord, parse_record, queue_record

_BATCH = 500


@dataclass(frozen=True, kw_only=True)
class RunFilter:
    """Which runs to list; every field given must match (None: any)."""

    status: str | None = None
    statuses: frozenset[str] | None = None
    """Any of these statuses (e.g. the final ones, for a purge)."""
    agent: str | None = None
    requester: str | None = None
    """The requester in its normal form (see ``carebound._principal.normalize_reviewer_id``)."""
    patient_ref: str | None = None
    """A FHIR reference, ``Patient/<id>``."""
    created_from: datetime | None = None
    """Started at or after this time."""
    created_to: datetime | None = None
    """Started before this time."""
    updated_before: datetime | None = None
    """Last changed before this time (an ended run: when it ended)."""

    def matches(self, record: RunRecord) -> bool:
        """Whether ``record`` passes every filter (the date range is the registry's part)."""
        return (
            (self.status is None or record.status == self.status)
            and (self.statuses is None or record.status in self.statuses)
            and (self.agent is None or record.agent == self.agent)
            and (self.requester is None or record.requester == self.requester)
            and (self.patient_ref is None or record.patient_ref == self.patient_ref)
            and (self.updated_before is None or record.updated_at < self.updated_before)
        )


@dataclass(frozen=True)
class RunPage:
    """One page of matching runs, newest first."""

    runs: list[RunRecord]
    next_offset: int | None
    """The offset of the next page; None on the last."""


def search_runs(
    client: redis.Redis, prefix: str, where: RunFilter, *, limit: int = 50, offset: int = 0
) -> RunPage:
    """The runs matching ``where``, newest first: ``limit`` of them after skipping ``offset``
    matches."""
    registry = global_key(prefix, "runs")
    high = f"({to_ms(where.created_to)}" if where.created_to is not None else "+inf"
    low = to_ms(where.created_from) if where.created_from is not None else "-inf"
    found: list[RunRecord] = []
    skipped = 0
    start = 0
    while True:
        ids = client.zrevrangebyscore(registry, high, low, start=start, num=_BATCH)
        if not ids:
            return RunPage(found, None)
        start += len(ids)
        pipe = client.pipeline(transaction=False)
        for raw_id in ids:
            queue_record(pipe, run_key(prefix, text(raw_id), "run"))
        for raw in pipe.execute():
            record = parse_record(raw)
            if record is None or not where.matches(record):
                continue
            if skipped < offset:
                skipped += 1
                continue
            if len(found) == limit:
                return RunPage(found, offset + limit)
            found.append(record)
        if len(ids) < _BATCH:
            return RunPage(found, None)
