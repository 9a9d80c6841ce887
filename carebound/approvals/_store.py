"""Parked approvals in Redis: the per-run record and the cross-run inbox index.

Per run (one hash tag, so the decision is one atomic script)::

    {prefix}:{run}:approval:<approval_id>   hash: status, role, deadline_ms, requester,
                                             args_hash, approvers, agent, decision, ...
    {prefix}:{run}:approval:<approval_id>:request
                                             string: the hold's request (deflated JSON)

The request has a key of its own so the record stays a listpack (one value over Redis's
``hash-max-listpack-value``, 64 bytes by default, turns a whole hash into a hashtable, about
twice its bytes). Holds parked before kept it in the record's ``request`` field, and an edit of
a two-person hold writes the edited request there: a request in that field is read first.

Across runs (written on their own, never in a transaction with per-run keys)::

    {prefix}:inbox:all            zset  approval_id -> deadline_ms
    {prefix}:inbox:role:<role>    zset  approval_id -> deadline_ms

Listing the inbox reads one index page and the records on it: it never scans runs. An index
entry whose record is no longer pending is skipped and removed lazily.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

import redis
from pydantic import TypeAdapter

from carebound._errors import echo_id
from carebound._wire import SyncWire, shared_wire
from carebound.approvals._edits import ArgChange
from carebound.approvals._models import (
    ApprovalRequest,
    ApprovalStatus,
    ApprovalView,
    Decision,
    DecisionRecord,
)
from carebound.clock import from_ms, to_ms
from carebound.state import stored_json
from carebound.state.keys import DEFAULT_PREFIX, inbox_key, key_registry, run_key, text
from carebound.state.lua import script
from carebound.state.pipeline import Guard, guarded_hset_queued, run, run_parsed

_DECISION: TypeAdapter[Decision] = TypeAdapter(Decision)
_CHANGES = TypeAdapter(list[ArgChange])
_NAMES = TypeAdapter(list[str])

# carebound/lua/approval_decide.lua documents its KEYS, ARGV and replies.
_DECIDE = script("approval_decide")

_PARK = script("approval_park")

WITHDRAWN_BY = "carebound (withdrawn: the run's recovery did not hold the call again)"
"""Who a withdrawn hold counts as decided by (what a reviewer deciding it late is told)."""


def pack_request(request_json: str) -> str:
    """How a hold's request is stored: deflated against the requests' dictionary
    (``carebound.state.stored_json``); holds stored before still read."""
    return stored_json.REQUEST.pack(request_json)


_VIEW_FIELDS = (
    "request", "status", "role", "deadline_ms", "approvers",
    "decision", "decided_by", "decided_at", "changes",
)  # fmt: skip
"""The record fields a view is built from."""

DecideOutcome = Literal[
    "ok", "partial", "escalated", "decided", "stale", "wrong_role", "same_approver", "missing"
]


@dataclass(frozen=True)
class DecideStepReply:
    """What the store's atomic decide step replied (the engine's answer to a reviewer is
    ``carebound.DecideStepReply``)."""

    outcome: DecideOutcome
    status: str | None = None
    decided_by: str | None = None
    decided_at: datetime | None = None
    current_role: str | None = None


_HELD_AGAIN = re.compile(r"[0-9a-f]{8}")
"""The args-hash suffix of a held-again call's approval id."""


def run_id_of(approval_id: str) -> str:
    """Approval ids are ``<run_id>-<n>``, or ``<run_id>-<n>-<8 hex>`` for a call held again
    (a version conflict); the run id is what comes before ``-<n>``."""
    run_id, sep, tail = approval_id.rpartition("-")
    if not sep or not run_id:
        raise ValueError(f"{echo_id(approval_id)} is not an approval id")
    head, sep, n = run_id.rpartition("-")
    if sep and head and n.isdigit() and _HELD_AGAIN.fullmatch(tail):
        return head
    return run_id


class ApprovalStore:
    """Parked approvals and the inbox index on a Redis server."""

    def __init__(self, client: redis.Redis, *, prefix: str = DEFAULT_PREFIX) -> None:
        self._r = client
        self._prefix = prefix

    def _record_key(self, approval_id: str) -> str:
        return run_key(self._prefix, run_id_of(approval_id), "approval", approval_id)

    def _keys(self, approval_id: str) -> list[str]:
        """The hold's record and request keys."""
        record = self._record_key(approval_id)
        return [record, record + REQUEST_SUFFIX]

    def _index(self, *parts: str) -> str:
        return inbox_key(self._prefix, *parts)

    def pending_counts(self, roles: list[str]) -> dict[str, int]:
        """How many holds wait for each of ``roles``, in one round trip."""
        if not roles:
            return {}
        with self._r.pipeline(transaction=False) as pipe:
            for role in roles:
                pipe.zcard(self._index("role", role))
            return dict(zip(roles, (int(n) for n in pipe.execute()), strict=True))

    def park(self, request: ApprovalRequest) -> bool:
        """Store a new hold and index it; returns False if it was already parked (a replay)."""
        deadline_ms = to_ms(request.deadline)
        fields: list[Any] = [
            "status", "pending",
            "role", request.required_role,
            "deadline_ms", deadline_ms,
            "requester", request.requester,
            "args_hash", request.args_hash,
            "two_person", "1" if request.two_person else "0",
            "approvers", "[]",
            "agent", request.agent,
        ]  # fmt: skip
        approval_id = request.approval_id
        # the registry under the record's own hash tag (one slot for the script)
        record, request_key = self._keys(approval_id)
        keys = [record, key_registry(self._prefix, run_id_of(approval_id)), request_key]
        packed = pack_request(request.model_dump_json())
        role = request.required_role

        def fill(pipe: redis.client.Pipeline) -> None:
            _PARK.queue(pipe, keys, ["approval:" + approval_id, packed, *fields])
            pipe.zadd(self._index("all"), {approval_id: deadline_ms})
            pipe.zadd(self._index("role", role), {approval_id: deadline_ms})

        # one round trip (carebound.state.pipeline), which the drive's buffered checkpoint
        # rides ahead of (carebound.checkpoint._session)
        return bool(run(self._r, fill)[0])

    def withdraw(self, approval_id: str, *, now: datetime, by: str = "") -> bool:
        """Take a pending hold out of the inbox for good (status ``withdrawn``): the step that
        parked it died before it was stored and its replay did not hold the call again, or
        its run was cancelled. ``by``: who a reviewer deciding it late is told decided it
        (default ``WITHDRAWN_BY``). Returns whether it was withdrawn (False: no such hold, or
        it is no longer pending). A later park of the same id (a replay that holds the call
        after all) revives it."""
        view = self.get(approval_id)
        if view is None or view.status != "pending":
            return False
        record = self._record_key(approval_id)
        withdrawn = {
            "status": "withdrawn",
            "decided_by": by or WITHDRAWN_BY,
            "decided_at": str(to_ms(now)),
        }

        def fill(pipe: redis.client.Pipeline) -> None:
            guarded_hset_queued(pipe, record, withdrawn, Guard(record, {"status": "pending"}))
            pipe.zrem(self._index("all"), approval_id)
            pipe.zrem(self._index("role", view.required_role), approval_id)

        return bool(run(self._r, fill)[0])

    def unindex(
        self, approval_id: str, *roles: str, pipe: redis.client.Pipeline | None = None
    ) -> None:
        """Drop an approval from the inbox index (after it was decided); only queued when
        ``pipe`` is given."""
        queue = pipe if pipe is not None else self._r.pipeline(transaction=False)
        queue.zrem(self._index("all"), approval_id)
        for role in roles:
            queue.zrem(self._index("role", role), approval_id)
        if pipe is None:
            queue.execute()

    def get(self, approval_id: str) -> ApprovalView | None:
        """One approval by id, or None."""
        pipe = self._r.pipeline(transaction=False)
        try:
            parse = self.queue_get(pipe, approval_id)
        except ValueError:
            return None
        return parse(pipe.execute())

    def queue_get(
        self, pipe: redis.client.Pipeline, approval_id: str
    ) -> Callable[[Sequence[Any]], ApprovalView | None]:
        """Queue the two reads of ``get`` on ``pipe`` (the record's fields, then its request
        key: plain commands; a script reading both cost the server several times what they
        do); returns the parser of their two replies (``parse_view``). Raises ``ValueError``
        for an id that names no run."""
        record, request = self._keys(approval_id)
        pipe.hmget(record, _VIEW_FIELDS)
        pipe.get(request)
        return self.parse_view

    @staticmethod
    def parse_view(replies: Sequence[Any]) -> ApprovalView | None:
        """The approval from the ``_VIEW_FIELDS`` of its record and the value of its request
        key, e.g. the two replies of ``queue_get`` (None: no such approval)."""
        values, request_value = replies
        f = dict(zip(_VIEW_FIELDS, values, strict=True))
        f["request"] = f["request"] or request_value or None  # the field: older or edited
        if f["request"] is None or f["status"] is None:
            return None
        status: ApprovalStatus = text(f["status"])  # type: ignore[assignment]
        if status == "pending":
            return _pending_view(f["request"], f["role"], f["deadline_ms"], f["approvers"])
        raw_decision = f["decision"]
        approvers = _approvers(f["approvers"])
        return ApprovalView(
            request=ApprovalRequest.model_validate_json(stored_json.REQUEST.unpack(f["request"])),
            status=status,
            required_role=text(f["role"]),
            deadline=from_ms(int(f["deadline_ms"] or 0)),
            approvers=approvers,
            record=DecisionRecord(
                status=status,
                decision=_DECISION.validate_json(raw_decision) if raw_decision else None,
                decided_by=text(f["decided_by"] or ""),
                decided_at=from_ms(int(f["decided_at"] or 0)),
                approvers=list(approvers),
                changes=_CHANGES.validate_json(f["changes"] or "[]"),
            ),
        )

    def decide(
        self,
        approval_id: str,
        decision: Decision,
        *,
        now: datetime,
        status: ApprovalStatus,
        escalate_deadline: datetime | None = None,
        approver: str = "",
    ) -> DecideStepReply:
        """The atomic decide step: exactly one concurrent decider wins."""

        def queue(pipe: redis.client.Pipeline) -> Callable[[list[Any]], DecideStepReply]:
            parse = self.queue_decide(
                pipe, approval_id, decision, now=now, status=status,
                escalate_deadline=escalate_deadline, approver=approver,
            )  # fmt: skip
            return lambda replies: parse(replies[0])

        return run_parsed(self._r, queue)

    def queue_decide(
        self,
        pipe: redis.client.Pipeline,
        approval_id: str,
        decision: Decision,
        *,
        now: datetime,
        status: ApprovalStatus,
        escalate_deadline: datetime | None = None,
        decide_id: str = "",
        approver: str = "",
        edited: ApprovalRequest | None = None,
        changes: Sequence[ArgChange] = (),
    ) -> Callable[[Any], DecideStepReply]:
        """Queue the decide step on ``pipe`` (sent with ``carebound.state.pipeline.run``, with
        whatever the caller queues around it); returns the parser of its reply. A winning
        step stores ``decide_id`` (unique per attempt), which :meth:`won_guard` checks.

        ``approver`` is who an approval counts as on a two-person hold (default: the
        reviewer id); ``edited`` is the request with an edit's new arguments and args hash,
        which a two-person hold keeps pending for a second approver."""
        to_role = getattr(decision, "to_role", "")
        keys = [self._record_key(approval_id)]
        args = [
            decision.kind,
            decision.reviewer,
            decision.role,
            decision.args_hash,
            _DECISION.dump_json(decision).decode(),
            to_ms(now),
            status,
            to_role,
            to_ms(escalate_deadline) if escalate_deadline else 0,
            decide_id,
            approver or decision.reviewer,
            edited.args_hash if edited is not None else "",
            pack_request(edited.model_dump_json()) if edited is not None else "",
            _CHANGES.dump_json(list(changes)).decode(),
        ]
        _DECIDE.queue(pipe, keys, args)
        return _decide_reply

    def won_guard(self, approval_id: str, decide_id: str) -> Guard:
        """Holds only once the decide step queued with ``decide_id`` has won (to guard writes
        queued right after that step)."""
        return Guard(self._record_key(approval_id), {"decide_id": decide_id})

    def reindex(self, approval_id: str, old_role: str, new_role: str, deadline: datetime) -> None:
        """Move an escalated approval to its new role's index."""
        pipe = self._r.pipeline(transaction=False)
        pipe.zrem(self._index("role", old_role), approval_id)
        pipe.zadd(self._index("role", new_role), {approval_id: to_ms(deadline)})
        pipe.zadd(self._index("all"), {approval_id: to_ms(deadline)})
        pipe.execute()

    def pending(
        self,
        *,
        role: str | None = None,
        agent: str | None = None,
        overdue_at: datetime | None = None,
        offset: int = 0,
        limit: int = 20,
    ) -> list[ApprovalView]:
        """Pending approvals, most urgent (earliest deadline) first, one page.

        Two round trips (the index page, then its records), sent on the client's shared wire
        (:mod:`carebound._wire`): redis-py's pipeline machinery cost more CPU than the round
        trips on this path. Only the fields a pending view needs are read."""
        index = self._index("role", role) if role else self._index("all")
        max_score = str(to_ms(overdue_at)) if overdue_at else "+inf"
        wire = shared_wire(self._r)
        found: list[ApprovalView] = []
        skipped = 0
        cursor = 0
        while len(found) < limit:
            # Fetch what the page still needs; stale or filtered entries cost another round.
            batch = (offset - skipped) + (limit - len(found))
            ids = wire.call(["ZRANGEBYSCORE", index, "-inf", max_score, "LIMIT", cursor, batch])
            if not ids:
                break
            cursor += len(ids)
            replies, requests = _read_page(wire, [self._record_key(text(i)) for i in ids])
            stale: list[str] = []
            for raw_id, values, request_value in zip(ids, replies, requests, strict=True):
                if isinstance(values, Exception):
                    raise values
                request, status, held_role, deadline_ms, approvers, held_agent = values
                request = request or request_value  # the field: older or edited
                # Filter on the raw fields; parse the request only for entries on the page.
                if (
                    request is None
                    or text(status) != "pending"
                    or (role and text(held_role) != role)
                ):
                    stale.append(text(raw_id))
                    continue
                if agent and text(held_agent or "") != agent:
                    continue
                if skipped < offset:
                    skipped += 1
                    continue
                found.append(_pending_view(request, held_role, deadline_ms, approvers))
                if len(found) == limit:
                    break
            if stale:
                wire.call(["ZREM", index, *stale])
                cursor -= len(stale)
        return found


_PAGE_FIELDS = (b"request", b"status", b"role", b"deadline_ms", b"approvers", b"agent")
"""The record fields an inbox page reads: a pending view's, and the agent to filter on (with
the request key's value: ``request`` is there only in holds parked before, or edited)."""


def _read_page(wire: SyncWire, records: list[str]) -> tuple[list[Any], list[Any]]:
    """The ``_PAGE_FIELDS`` of each hold record and the value of its request key, in one round
    trip: the request keys in one ``MGET`` on a single server (a command per key costs the
    server more than the key), a ``GET`` each on a cluster (their slots differ)."""
    commands: list[tuple[Any, ...]] = [("HMGET", r, *_PAGE_FIELDS) for r in records]
    if wire.usable:
        replies = wire.call_many([*commands, ("MGET", *(r + REQUEST_SUFFIX for r in records))])
        requests = replies.pop()
        if isinstance(requests, Exception):
            raise requests
        return replies, list(requests)
    replies = wire.call_many([*commands, *(("GET", r + REQUEST_SUFFIX) for r in records)])
    return replies[: len(records)], replies[len(records) :]


REQUEST_SUFFIX = ":request"
"""A hold's request key is its record key with this suffix (the retention script derives it
from the record's, too)."""


def _approvers(raw: bytes | str | None) -> list[str]:
    if not raw or raw in (b"[]", "[]"):
        return []  # a pending hold's usual value, without a JSON parse
    return _NAMES.validate_json(raw)


def _pending_view(
    request: bytes | str,
    role: bytes | str | None,
    deadline_ms: bytes | str | None,
    approvers: bytes | str | None,
) -> ApprovalView:
    """A pending hold's view from its stored fields (as :meth:`ApprovalStore.parse_view`
    builds it, without the decision fields a pending hold does not have)."""
    return ApprovalView(
        request=ApprovalRequest.model_validate_json(stored_json.REQUEST.unpack(request)),
        status="pending",
        required_role=text(role),
        deadline=from_ms(int(deadline_ms or 0)),
        approvers=_approvers(approvers),
    )


def _decide_reply(raw: Any) -> DecideStepReply:
    parts = [p.decode() if isinstance(p, bytes) else str(p) for p in raw]
    outcome: DecideOutcome = parts[0]  # type: ignore[assignment]
    if outcome == "decided":
        return DecideStepReply(
            outcome, status=parts[1], decided_by=parts[2], decided_at=from_ms(int(parts[3]))
        )
    if outcome == "wrong_role":
        return DecideStepReply(outcome, current_role=parts[1])
    return DecideStepReply(outcome)
