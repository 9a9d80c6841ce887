"""The referring office's side of a CDex exchange, played from a scenario's reply scripts.

A run asks an office for documents by creating a CDex ``Task`` on the office's FHIR endpoint
(:mod:`carebound.tools.connectors.outreach_channels`). :class:`ReferringOffice` is that office:
for every open request Task a reply script answers (same recipient, same attempt number), once
the script's delay has passed since the Task was authored, it writes the script's documents as
DocumentReferences on the endpoint and completes the Task with them as ``output``, the way a real
office's system answers. The run finds the completed Task by polling, as it would in production.

A Task completes once: when several scripts answer the same request, the earliest one does.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any

import httpx
from fhir.resources.R4B.task import Task

from carebound.tools.connectors._errors import ConnectorError
from carebound.tools.connectors._outreach import ReplyScript, ScriptedDocument, _document_reference
from carebound.tools.connectors.outreach_channels._cdex import CDEX_TASK_CODES
from carebound.tools.connectors.outreach_channels._common import (
    EFFECT_ID_SYSTEM,
    REQUEST_ID_SYSTEM,
)

REPLY_ID_SYSTEM = "urn:carebound:office-reply"
"""Identifier system of the DocumentReferences the played office writes (``TASKID-N``), so an
answer retried after a failure writes each document once."""
FHIR_JSON = "application/fhir+json"


class ReferringOffice:
    """Answers CDex request Tasks on ``base_url`` as ``replies`` script (see module doc);
    with ``run_id``, only the Tasks that run sent (their effect identifier names it), so
    several runs can share one office endpoint."""

    def __init__(
        self,
        base_url: str,
        replies: Sequence[ReplyScript],
        http: httpx.Client,
        *,
        run_id: str | None = None,
    ) -> None:
        self._base = base_url.rstrip("/")
        self._replies = list(replies)
        self._http = http
        self._run_id = run_id

    def next_due(self) -> dt.datetime | None:
        """When the next scripted answer is due, or None when no open request has one."""
        due = [when for when, _task, _script in self._answers()]
        return min(due) if due else None

    def answer_due(self, now: dt.datetime) -> list[str]:
        """Complete every open request Task whose answer is due at ``now``; their references."""
        done = []
        for when, task, script in sorted(self._answers(), key=lambda item: item[0]):
            if when > now:
                continue
            outputs = [
                self._document(task["id"], n, doc, when) for n, doc in enumerate(script.documents)
            ]
            completed = dict(task)
            completed.update(status="completed", lastModified=when.isoformat(), output=outputs)
            Task.model_validate(completed)
            version = (task.get("meta") or {}).get("versionId")
            headers = {"Content-Type": FHIR_JSON}
            if version:
                headers["If-Match"] = f'W/"{version}"'
            response = self._http.put(
                f"{self._base}/Task/{task['id']}", json=completed, headers=headers
            )
            if response.status_code == 412:
                continue  # someone changed the Task since it was read: look again next time
            _raise_for(response, f"completing Task/{task['id']}")
            done.append(f"Task/{task['id']}")
        return done

    def _answers(self) -> list[tuple[dt.datetime, dict[str, Any], ReplyScript]]:
        """(due time, Task, script) of every open request a script answers."""
        tasks = self._request_tasks()
        attempts: dict[str, list[dict[str, Any]]] = {}
        for task in tasks:
            attempts.setdefault(_request_id(task), []).append(task)
        answers = []
        for group in attempts.values():
            group.sort(key=lambda t: (str(t.get("authoredOn") or ""), str(t.get("id"))))
            for attempt, task in enumerate(group, start=1):
                if task.get("status") != "requested":
                    continue
                authored = _instant(task.get("authoredOn"))
                recipient = str((task.get("owner") or {}).get("display") or "")
                scripts = [s for s in self._replies if _answers(s, recipient, attempt)]
                if authored is None or not scripts:
                    continue
                first = min(scripts, key=lambda s: s.after)
                answers.append((authored + first.after, task, first))
        return answers

    def _request_tasks(self) -> list[dict[str, Any]]:
        response = self._http.get(
            f"{self._base}/Task", params={"_count": "1000"}, headers={"Accept": FHIR_JSON}
        )
        _raise_for(response, "listing request Tasks")
        found = []
        for entry in response.json().get("entry") or []:
            task = entry.get("resource") or {}
            codings = (task.get("code") or {}).get("coding") or []
            if any(
                c.get("system") == CDEX_TASK_CODES and c.get("code") == "attachment-request"
                for c in codings
            ) and self._sent_by_run(task):
                found.append(task)
        return found

    def _sent_by_run(self, task: dict[str, Any]) -> bool:
        if self._run_id is None:
            return True
        return any(
            i.get("system") == EFFECT_ID_SYSTEM
            and str(i.get("value") or "").startswith(f"{self._run_id}:")
            for i in task.get("identifier") or []
        )

    def _document(
        self, task_id: str, n: int, doc: ScriptedDocument, when: dt.datetime
    ) -> dict[str, Any]:
        key = f"{task_id}-{n}"
        # The simulator's shape of a received document, under the office's own identifier.
        resource = dict(_document_reference("unused", key, doc, when))
        del resource["id"]
        resource["identifier"] = [{"system": REPLY_ID_SYSTEM, "value": key}]
        response = self._http.post(
            f"{self._base}/DocumentReference",
            json=resource,
            headers={
                "Content-Type": FHIR_JSON,
                "If-None-Exist": f"identifier={REPLY_ID_SYSTEM}|{key}",
            },
        )
        _raise_for(response, f"writing the reply document {key}")
        return {
            "type": {"coding": [{"system": CDEX_TASK_CODES, "code": "attachments"}]},
            "valueReference": {"reference": f"DocumentReference/{response.json()['id']}"},
        }


def _answers(script: ReplyScript, recipient: str, attempt: int) -> bool:
    if script.to != "*" and script.to.strip().casefold() != recipient.strip().casefold():
        return False
    return (script.attempt or 1) == attempt


def _request_id(task: dict[str, Any]) -> str:
    group = task.get("groupIdentifier") or {}
    if group.get("system") == REQUEST_ID_SYSTEM and group.get("value"):
        return str(group["value"])
    return f"Task/{task.get('id')}"


def _instant(raw: object) -> dt.datetime | None:
    """An aware datetime from a FHIR dateTime, or None."""
    if not isinstance(raw, str):
        return None
    try:
        when = dt.datetime.fromisoformat(raw)
    except ValueError:
        return None
    return when if when.tzinfo is not None else when.replace(tzinfo=dt.UTC)


def _raise_for(response: httpx.Response, doing: str) -> None:
    if response.status_code >= 300:
        raise ConnectorError(
            f"the office endpoint answered HTTP {response.status_code} {doing}",
            hint="is the office FHIR endpoint a FHIR R4 server that accepts Task updates?",
        )
