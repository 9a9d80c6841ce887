"""Da Vinci CDex task-based document requests to a referring office's FHIR endpoint.

A send creates a ``Task`` on the office's server (conditional create on the effect identifier,
so a send retried after a timeout or a crash creates one Task): code ``attachment-request``
(CDex's temporary HRex code system), status ``requested``, one ``input`` per requested LOINC
document code, the request id as ``groupIdentifier``, the message as ``note``. The office
answers by completing the Task with ``output`` referencing DocumentReferences (or failing it
with a ``statusReason``). :meth:`CdexOutreach.due_replies` polls the open Tasks (the worker's
sweep calls it) and hands each completed one out once, as an :class:`InboundDocument`.

The Protocol's ``send`` does not carry the patient, so the Task names none (``for`` is optional
in R4 Task); the message text and the request id tie the reply to the referral.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import json
import logging
from collections.abc import Callable, Sequence
from typing import Any

import httpx

from carebound.logs import event
from carebound.state.outreach import OutreachStore
from carebound.tools.connectors._errors import ConnectorError
from carebound.tools.connectors._outreach import (
    LOINC,
    Channel,
    InboundDocument,
    OutreachReceipt,
    ScriptedDocument,
)
from carebound.tools.connectors._resilience import Resilience
from carebound.tools.connectors.outreach_channels._common import (
    EFFECT_ID_SYSTEM,
    REQUEST_ID_SYSTEM,
    require_aware,
    require_send_args,
    sent_once,
)

CDEX_TASK_CODES = "http://hl7.org/fhir/us/davinci-hrex/CodeSystem/hrex-temp"
"""The code system of CDex's ``attachment-request`` Task code and its input types."""
FHIR_JSON = "application/fhir+json"
_log = logging.getLogger("carebound.connectors")


class CdexOutreach:
    """Document requests as CDex Tasks on one FHIR endpoint (see the module docstring).

    Args:
        base_url: the office's FHIR base URL.
        store: this run's outreach state in Redis.
        resilience: retries and the breaker of the endpoint (system ``office``).
        http: the HTTP client (with the endpoint's auth); the caller closes it.
        clock: the time source for received replies without a server time.
    """

    channel: Channel = "portal"

    def __init__(
        self,
        base_url: str,
        *,
        store: OutreachStore,
        resilience: Resilience,
        http: httpx.Client,
        clock: Callable[[], dt.datetime],
    ) -> None:
        self._base = base_url.rstrip("/")
        self._store = store
        self._resilience = resilience
        self._http = http
        self._clock = clock

    def send(
        self,
        channel: Channel,
        to: str,
        *,
        subject: str,
        body: str,
        request_id: str,
        requested_codes: Sequence[str],
        idempotency_key: str,
        now: dt.datetime,
    ) -> OutreachReceipt:
        """Create the request Task (once per ``idempotency_key``, on the server too).

        Raises:
            ConnectorError: no recipient or request id, or a naive ``now``.
            SystemUnavailableError: the endpoint is down (retries spent, or its breaker open).
            SystemRefusedError: the endpoint refused the Task.
        """
        require_aware(now, "now")
        require_send_args(to, request_id)

        def create(attempt: int) -> str:
            task = _request_task(to=to, subject=subject, body=body, request_id=request_id,
                                 codes=requested_codes, key=idempotency_key, now=now)  # fmt: skip
            request = self._http.build_request(
                "POST",
                f"{self._base}/Task",
                json=task,
                headers={
                    "Content-Type": FHIR_JSON,
                    "Accept": FHIR_JSON,
                    "If-None-Exist": f"identifier={EFFECT_ID_SYSTEM}|{idempotency_key}",
                },
            )
            response = self._resilience.send(self._http, request)
            task_id = _created_id(response, "Task")
            self._store.open_request(
                f"Task/{task_id}", json.dumps({"request_id": request_id, "to": to})
            )
            return f"Task/{task_id}"

        return sent_once(self._store, idempotency_key, channel=self.channel, to=to,
                         request_id=request_id, now=now, send=create)  # fmt: skip

    def due_replies(self, now: dt.datetime) -> list[InboundDocument]:
        """The open request Tasks the office completed, each handed to one caller, once.

        A Task the office failed or cancelled is closed with no reply (the chase goes on by its
        schedule). A reply's time is the Task's ``lastModified`` (the office's own time) but no
        later than ``now`` (the run's clock); without one, ``now``. A completed Task whose
        documents cannot be read now (the endpoint fails or refuses) stays open for the next
        poll, and the other Tasks' replies are still handed out.

        Raises:
            SystemUnavailableError: the endpoint is down (nothing is taken: ask again later).
        """
        require_aware(now, "now")
        opened = self._store.open_requests()
        if not opened:
            return []
        ids = ",".join(ref.removeprefix("Task/") for ref in sorted(opened))
        bundle = self._get(f"{self._base}/Task", params={"_id": ids, "_count": "1000"})
        replies: list[InboundDocument] = []
        for task in _entries(bundle, "Task"):
            ref = f"Task/{task.get('id')}"
            status = task.get("status")
            if ref not in opened or status not in ("completed", "failed", "rejected", "cancelled"):
                continue
            meta = json.loads(opened[ref])
            reply = None
            if status == "completed":
                try:
                    documents = [self._document(out) for out in _output_refs(task)]
                except ConnectorError as exc:  # kept open: read again at the next poll
                    event(_log, "cdex.reply_unread", logging.WARNING, task=ref,
                          error=type(exc).__name__)  # fmt: skip
                    continue
                reply = InboundDocument.build(
                    inbound_id=f"cdex-{task['id']}",
                    request_id=meta["request_id"],
                    channel=self.channel,
                    sender=meta["to"],
                    received_at=_completed_at(task, now),
                    documents=[d for d in documents if d is not None],
                )
            if self._store.close_request(ref) and reply is not None and reply.documents:
                replies.append(reply)
        return sorted(replies, key=lambda r: (r.received_at, r.inbound_id))

    def _document(self, ref: str) -> ScriptedDocument | None:
        if not ref.startswith("DocumentReference/"):
            return None
        resource = self._get(f"{self._base}/{ref}")
        if resource.get("resourceType") != "DocumentReference":
            return None
        return _as_document(resource)

    def _get(self, url: str, params: dict[str, str] | None = None) -> dict[str, Any]:
        request = self._http.build_request("GET", url, params=params, headers={"Accept": FHIR_JSON})
        response = self._resilience.send(self._http, request)
        if response.status_code >= 400:
            return {}
        data = response.json()
        return data if isinstance(data, dict) else {}


def _request_task(
    *,
    to: str,
    subject: str,
    body: str,
    request_id: str,
    codes: Sequence[str],
    key: str,
    now: dt.datetime,
) -> dict[str, Any]:
    return {
        "resourceType": "Task",
        "identifier": [{"system": EFFECT_ID_SYSTEM, "value": key}],
        "groupIdentifier": {"system": REQUEST_ID_SYSTEM, "value": request_id},
        "status": "requested",
        "intent": "order",
        "code": {"coding": [{"system": CDEX_TASK_CODES, "code": "attachment-request"}]},
        "description": subject,
        "authoredOn": now.isoformat(),
        "owner": {"display": to},
        "input": [
            {
                "type": {"coding": [{"system": CDEX_TASK_CODES, "code": "attachments-needed"}]},
                "valueCodeableConcept": {"coding": [{"system": LOINC, "code": code}]},
            }
            for code in codes
        ],
        "note": [{"text": body}],
    }


def _created_id(response: httpx.Response, kind: str) -> str:
    """The id of the resource a (conditional) create made or found."""
    try:
        data = response.json()
    except ValueError:
        data = None
    if isinstance(data, dict) and data.get("resourceType") == kind and data.get("id"):
        return str(data["id"])
    location = str(
        response.headers.get("location") or response.headers.get("content-location") or ""
    )
    if location and f"{kind}/" in location:
        return location.split(f"{kind}/", 1)[1].split("/", 1)[0]
    raise ConnectorError(
        f"the server answered HTTP {response.status_code} to a {kind} create with no id",
        hint="the endpoint must return the resource or a Location header (FHIR REST create)",
    )


def _entries(bundle: dict[str, Any], kind: str) -> list[dict[str, Any]]:
    found = []
    for entry in bundle.get("entry") or []:
        resource = entry.get("resource") if isinstance(entry, dict) else None
        if isinstance(resource, dict) and resource.get("resourceType") == kind:
            found.append(resource)
    return found


def _output_refs(task: dict[str, Any]) -> list[str]:
    refs = []
    for output in task.get("output") or []:
        value = output.get("valueReference") if isinstance(output, dict) else None
        if isinstance(value, dict) and isinstance(value.get("reference"), str):
            refs.append(value["reference"])
    return refs


def _completed_at(task: dict[str, Any], now: dt.datetime) -> dt.datetime:
    """When the office says it completed the Task (``lastModified``), on the run's clock: never
    later than ``now``, the time of the poll that found it. The server's ``meta.lastUpdated`` is
    not used: it is the server's wall clock, not the run's (a scenario's clock is virtual)."""
    raw = task.get("lastModified")
    if not isinstance(raw, str):
        return now
    try:
        when = dt.datetime.fromisoformat(raw.replace("Z", "+00:00"))
    except ValueError:
        return now
    if when.tzinfo is None:
        return now
    return min(when, now)


def _as_document(resource: dict[str, Any]) -> ScriptedDocument:
    """A received DocumentReference's code, title, text and date."""
    codings = ((resource.get("type") or {}).get("coding")) or []
    loinc = next((c for c in codings if c.get("system") == LOINC and c.get("code")), None)
    content = (resource.get("content") or [{}])[0]
    attachment = content.get("attachment") or {}
    text = ""
    if isinstance(attachment.get("data"), str):
        try:
            text = base64.b64decode(attachment["data"]).decode("utf-8", errors="replace")
        except (binascii.Error, ValueError):
            text = ""
    created = attachment.get("creation") or resource.get("date")
    date = None
    if isinstance(created, str):
        try:
            date = dt.date.fromisoformat(created[:10])
        except ValueError:
            date = None
    display = (loinc or {}).get("display") or attachment.get("title") or resource.get("description")
    return ScriptedDocument(
        code=(loinc or {}).get("code"),
        display=display if isinstance(display, str) else None,
        text=text or "(no text content)",
        date=date,
    )
