"""carebound: bounded LangGraph agents for healthcare operations.

Agents propose tool calls; a gate outside the model checks every call against the agent's
typed grant and the organisation's hold policy, parks the run for a human reviewer when a
guardrail fires, and keeps the run's state in Redis so it can wait for days and resume anywhere.
"""

from carebound._errors import CareboundError, StoreUnavailableError

__all__ = [
    "CareboundError",
    "StoreUnavailableError",
]
