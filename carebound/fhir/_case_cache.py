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

import orjson

from carebound.fhir._case import ReferralCase
from carebound.fhir._parse import parse_bundle

_CACHE_SIZE = 64
_cases: OrderedDict[str, ReferralCase] = OrderedDict()
_renamed: OrderedDict[tuple[str, str], ReferralCase] = OrderedDict()
"""A parsed view under another source's name, by (digest, source)."""
_fixed: OrderedDict[int, tuple[Mapping[str, Any], str | None]] = OrderedDict()
"""Bundles declared never to change in place (:func:`fixed_case`), by identity (the object is
kept, so its id is not reused while it is here), with their content digest once computed."""
_lock = threading.Lock()


def fixed_case(case: Mapping[str, Any]) -> None:
    """Declare that ``case`` (a FHIR Bundle as JSON) is never changed in place from now on, so
    :func:`referral_case_of` hashes its content once instead of on every call.

    The engine does so for the one case object it keeps per run (its tools read the case
    about twenty times per start, and encoding it to hash it cost more than all the rest of
    those reads). Only recent declarations are kept (as many as parsed Bundles)."""
    with _lock:
        if id(case) not in _fixed or _fixed[id(case)][0] is not case:
            _fixed[id(case)] = (case, None)
        _fixed.move_to_end(id(case))
        while len(_fixed) > _CACHE_SIZE:
            _fixed.popitem(last=False)


def _digest(case: Mapping[str, Any]) -> str:
    """The content digest of ``case``: once per Bundle declared fixed, else on every call."""
    with _lock:
        fixed = _fixed.get(id(case))
    if fixed is not None and fixed[0] is case and fixed[1] is not None:
        return fixed[1]
    digest = hashlib.sha256(_sorted_json(case)).hexdigest()
    if fixed is not None and fixed[0] is case:
        with _lock:
            if id(case) in _fixed and _fixed[id(case)][0] is case:
                _fixed[id(case)] = (case, digest)
    return digest


def _sorted_json(case: Mapping[str, Any]) -> bytes:
    """The key text of a case's content: orjson's sorted JSON (a tenth of the standard
    library's time), or the standard library's, marked apart, where orjson refuses (an
    integer beyond 64 bits, a key that is not a string) or may have written a NaN as null."""
    try:
        text = orjson.dumps(case, option=orjson.OPT_SORT_KEYS, default=str)
        if b"null" not in text:
            return text
    except orjson.JSONEncodeError:
        pass
    return b"json:" + json.dumps(case, sort_keys=True, default=str).encode()


def referral_case_of(case: Mapping[str, Any], *, source: str) -> ReferralCase:
    """The referral ``case`` (a FHIR Bundle as JSON) carries, as :meth:`ReferralCase.from_bundle`
    resolves it; parsed once per distinct Bundle content, whatever the ``source`` (named in
    errors: each run names its own case, and a new run on a Bundle parsed before costs no
    parse). The view's objects are shared: treat them as read-only, as every ReferralCase.

    Raises:
        FhirInputError: the Bundle is not valid FHIR R4B or carries no single referral.
    """
    key = _digest(case)
    with _lock:
        found = _cases.get(key)
        if found is not None:
            _cases.move_to_end(key)
            if found.source == source:
                return found
            # kept: a run's tools and planners read its case many times, under two names
            named = _renamed.get((key, source))
            if named is None or named.bundle is not found.bundle:
                named = _renamed[(key, source)] = replace(found, source=source)
            _renamed.move_to_end((key, source))
            while len(_renamed) > _CACHE_SIZE:
                _renamed.popitem(last=False)
            return named
    # Parsed outside the lock: two threads may parse the same Bundle once each, never block.
    parsed = ReferralCase.from_bundle(parse_bundle(case, source=source), source=source)
    with _lock:
        _cases[key] = parsed
        while len(_cases) > _CACHE_SIZE:
            _cases.popitem(last=False)
    return parsed
