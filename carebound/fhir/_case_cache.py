"""The referral a case Bundle (JSON) carries, parsed once per distinct Bundle.

A run's tools, facts and planners read its case many times per drive; validating the Bundle
through the fhir.resources models each time was a large share of a worker's CPU. The cache is
small (the Bundles of the runs a process drives now) and shared by the threads of a worker pool.
"""

from __future__ import annotations

import hashlib
import json
import threading
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import replace
from typing import Any

from carebound.fhir._case import ReferralCase
from carebound.fhir._parse import parse_bundle

_CACHE_SIZE = 64
_cases: OrderedDict[str, ReferralCase] = OrderedDict()
_lock = threading.Lock()


def referral_case_of(case: Mapping[str, Any], *, source: str) -> ReferralCase:
    """The referral ``case`` (a FHIR Bundle as JSON) carries, as :meth:`ReferralCase.from_bundle`
    resolves it; parsed once per distinct Bundle content, whatever the ``source`` (named in
    errors: each run names its own case, and a new run on a Bundle parsed before costs no
    parse). The view's objects are shared: treat them as read-only, as every ReferralCase.

    Raises:
        FhirInputError: the Bundle is not valid FHIR R4B or carries no single referral.
    """
    digest = hashlib.sha256(json.dumps(case, sort_keys=True, default=str).encode()).hexdigest()
    key = digest
    with _lock:
        found = _cases.get(key)
        if found is not None:
            _cases.move_to_end(key)
            return found if found.source == source else replace(found, source=source)
    # Parsed outside the lock: two threads may parse the same Bundle once each, never block.
    parsed = ReferralCase.from_bundle(parse_bundle(case, source=source), source=source)
    with _lock:
        _cases[key] = parsed
        while len(_cases) > _CACHE_SIZE:
            _cases.popitem(last=False)
    return parsed
