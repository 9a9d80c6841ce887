"""Long-running commands (``carebound worker``, ``carebound serve``) freeze the heap they start
with, so Python's garbage collector stops walking it.

A warm process holds some 200,000 tracked objects that live for its lifetime (imported modules,
pydantic and FHIR schemas, compiled graphs, the policy pack). Every full (generation 2)
collection walks all of them: measured on a warm ``referral_intake`` start loop, one every ~300
starts, 160-170 ms each, a pause in the middle of some run's start. ``gc.freeze()`` moves them
to the permanent generation: a full collection then takes ~20-40 ms. Objects created afterwards
are collected as before. This is the process's own choice, made by the commands that are the
process; ``carebound`` used as a library never changes the collector's settings.
``CAREBOUND_GC_FREEZE=0`` turns it off.
"""

from __future__ import annotations

import gc
import os

FREEZE_VAR = "CAREBOUND_GC_FREEZE"
_OFF = frozenset({"0", "false", "no", "off"})


def freeze_startup_heap() -> bool:
    """Collect once, then move every object alive to the permanent generation
    (``gc.freeze``); return whether it did (not when ``CAREBOUND_GC_FREEZE`` is ``0``)."""
    if os.environ.get(FREEZE_VAR, "").strip().lower() in _OFF:
        return False
    gc.collect()  # garbage frozen now would never be freed
    gc.freeze()
    return True
