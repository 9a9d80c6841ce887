"""How the larger JSON values of a run are stored: deflated (:mod:`carebound.state.deflate`)
against a preset dictionary of what every value of that kind repeats, behind a marker of its own.

A hold's request (its packet included), a run's case (a FHIR Bundle) and a completed effect's
ledger entry are a few hundred bytes to a few KB of JSON each, mostly field names and fixed
wording that zlib cannot find again within one short value; a dictionary of them halves what
is left after plain deflate. The dictionaries hold field names, code systems and the engine's
own wording, never a case's data. A dictionary is part of the stored format: a new one needs a
new marker, and values written before still read (the ``older`` markers: deflated without a
dictionary; no marker at all: plain JSON).
"""

from __future__ import annotations

import base64
import hashlib
from dataclasses import dataclass
from functools import lru_cache

from carebound.state import deflate

__all__ = ["CASE", "LEDGER_ENTRY", "REQUEST", "StoredJson", "pack_digest"]


@dataclass(frozen=True)
class StoredJson:
    """One kind of stored JSON value: the marker and dictionary it is written with, and the
    markers of the forms written before (read, never written)."""

    marker: str
    """Starts a value written in this form (``~`` first: no JSON text starts with it)."""
    dictionary: bytes
    """The preset dictionary (part of the format: change it only with a new marker)."""
    older: tuple[str, ...] = ()
    """Markers of earlier forms, deflated without a dictionary."""

    def pack(self, text: str) -> str:
        """``text`` as stored (itself when deflating does not make it shorter)."""
        return deflate.pack(text, marker=self.marker, dictionary=self.dictionary)

    def unpack(self, stored: bytes | str) -> bytes | str:
        """The JSON text of a stored value of any form, as bytes or text like ``stored``.

        Raises:
            ValueError: the value carries a marker but does not inflate.
        """
        head = self.marker.encode() if isinstance(stored, bytes) else self.marker
        if stored.startswith(head):  # type: ignore[arg-type]
            return deflate.unpack(stored, marker=self.marker, dictionary=self.dictionary)
        for marker in self.older:
            stored = deflate.unpack(stored, marker=marker)
        return stored


_REQUEST_DICTIONARY = (
    b'"source":{"resource":"Patient/","field":null,"document":null},"phi":false,"id":"F1"},'
    b'{"label":"","value":"","source":{"resource":"","field":"","document":""},"phi":true,'
    b'"sentences":[{"text":"","cites":["F1"]}],"dropped":0,"model":"",'
    b'{"name":"","passed":true,"detail":"","rule_id":null,"rule_text":null},'
    b'"recommendation":"approve","recommendation":"edit","risk":"high","risk":"medium",'
    b'"on_timeout":"expire","required_role":"billing_specialist","escalate_to":"supervisor",'
    b'{"approval_id":"r","run_id":"r","agent":"referral_intake","tool":"send_request_attempt",'
    b'"args":{"to":"","document_code":"","note":""},"args_hash":"","original_args":null,'
    b'"rule_id":"","rule_text":"","reason":"","packet":{"summary":" proposes ","facts":[],'
    b'"checks":[{"name":"hold policy","passed":false,"detail":"held for role ","rule_id":"",'
    b'"rule_text":""}],"missing":[],"recommendation":"none","recommendation_text":"",'
    b'"confidence":0.0,"on_approve":" runs with the arguments shown","on_reject":'
    b'"the call is not made; the agent is told why","model_summary":null},"risk":"low",'
    b'"required_role":"intake_coordinator","deadline":"2026-01-01T00:00:00.000000Z",'
    b'"two_person":false,"on_timeout":"escalate","escalate_to":"supervisor","pinned":{'
    b'"agent":"","agent_version":"1","policy":"default","policy_version":"2026.",'
    b'"policy_fingerprint":"","tool_schema":""},"requester":"","patient_ref":"Patient/",'
    b'"created_at":"2026-01-01T00:00:00.000000Z","trace":null}'
)

_CASE_DICTIONARY = (
    b'{"resourceType":"DocumentReference","id":"","status":"current","type":{"coding":[{"syste'
    b'm":"http://loinc.org","code":"","display":""}]},"content":[{"attachment":{"contentType":'
    b'"application/pdf","title":""}}]}},{"fullUrl":"","resource":{"resourceType":"Task","id":"'
    b'","status":"requested","intent":"order","focus":{"reference":"ServiceRequest/"},"for":{"'
    b'reference":"Patient/"},"owner":{"reference":"Organization/"}}},{"fullUrl":"","resource":'
    b'{"resourceType":"Coverage","id":"","status":"active","subscriberId":"","beneficiary":{"r'
    b'eference":"Patient/"},"relationship":{"coding":[{"system":"http://terminology.hl7.org/Co'
    b'deSystem/subscriber-relationship","code":"self"}]},"payor":[{"reference":"Organization/"'
    b'}]}},{"fullUrl":"","resource":{"resourceType":"Organization","id":"","identifier":[{"sys'
    b'tem":"http://hl7.org/fhir/sid/us-npi","value":""}],"name":""}},{"fullUrl":"","resource":'
    b'{"resourceType":"Practitioner","id":"","identifier":[{"system":"http://hl7.org/fhir/sid/'
    b'us-npi","value":""}],"name":[{"family":"","given":[""],"prefix":["Dr."]}],"telecom":[{"s'
    b'ystem":"fax","value":""},{"system":"phone","value":""}]}},{"resourceType":"Bundle","id":'
    b'"","type":"collection","entry":[{"fullUrl":"","resource":{"resourceType":"ServiceRequest'
    b'","id":"","status":"active","intent":"order","code":{"coding":[{"system":"http://snomed.'
    b'info/sct","code":"","display":"Referral to "}]},"subject":{"reference":"Patient/"},"auth'
    b'oredOn":"","requester":{"reference":"Practitioner/"},"performer":[{"reference":"Organiza'
    b'tion/"}],"reasonCode":[{"coding":[{"system":"http://snomed.info/sct","code":"","display"'
    b':""}]}],"insurance":[{"reference":"Coverage/"}]}},{"fullUrl":"","resource":{"resourceTyp'
    b'e":"Patient","id":"","identifier":[{"system":"","value":"MRN-"}],"name":[{"use":"officia'
    b'l","family":"","given":[""]}],"telecom":[{"system":"phone","value":"","use":"home"}],"ge'
    b'nder":"female","birthDate":"","address":[{"use":"home","line":[""],"city":"","state":"",'
    b'"postalCode":""}]}}'
)

_LEDGER_DICTIONARY = (
    b'"result":{"target":"Patient/","field":"","before":"","after":"","paths":[""]},'
    b'"result":{"message_id":"msg-","attempt":1,"channel":"fax","sent_at":"2026-01-01T00:00:00'
    b'.000000+00:00","communication":"Communication/"},"result":{"task":"Task/docreq-r",'
    b'"items":[""]},"result":{"resource":"","version":""},'
    b'{"key":"r:send_request_attempt:","tool":"reconcile_fix_demographic","status":"done",'
    b'"attempts":1,"result":{},"error":null,"error_class":null,'
    b'"reserved_at":"2026-01-01T00:00:00.000000Z","done_at":"2026-01-01T00:00:00.000000Z"}'
)

REQUEST = StoredJson("~r1:", _REQUEST_DICTIONARY, older=("~z:",))
"""A hold's request (``ApprovalRequest`` JSON, its packet included)."""

CASE = StoredJson("~c1:", _CASE_DICTIONARY, older=("~z:",))
"""A run's case (its FHIR Bundle as JSON)."""

LEDGER_ENTRY = StoredJson("~l1:", _LEDGER_DICTIONARY, older=("~z:",))
"""A completed effect's ledger entry (a reserved one stays plain: the reserve script reads it)."""


@lru_cache(maxsize=64)
def pack_digest(policy_json: str | bytes) -> str:
    """The content digest a pinned pack or PHI table is stored under: sha256, in unpadded
    base64url (43 characters where hex takes 64: every run hash holds two). Kept for the texts
    digested lately: every start digests its pack's JSON (about 16 KB, one str object while the
    pack is the same), and a str keeps its own hash."""
    data = policy_json.encode() if isinstance(policy_json, str) else policy_json
    return base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
