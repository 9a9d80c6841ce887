"""carebound.agents.reconciler: the reconciler agent, which fixes low-risk mismatches between the
referral, the EHR chart, the payer's member record and the ERP, and holds the rest for a person.

``_agent`` is the agent (settings, planner, definition); its phases are private modules here:
``_demographics`` (compare the records, fix or hold), ``_invoices`` (three-way match),
``_coverage`` (coverage in force), ``_findings`` and ``_wording`` (what was found, in words
without values), ``_memory`` (what the planner remembers between turns) and ``_packet`` (the
reviewer's decision packet). The rules are pure (``carebound.domain``); the reads and writes are
tools (``carebound.tools.reconcile``).
"""

from ._agent import (
    RECONCILER,
    RECONCILER_TOOLS,
    ReconcilerSettings,
    plan_reconcile,
    reconciler_settings,
)
from ._packet import reconcile_packet

__all__ = [
    "RECONCILER",
    "RECONCILER_TOOLS",
    "ReconcilerSettings",
    "plan_reconcile",
    "reconcile_packet",
    "reconciler_settings",
]
