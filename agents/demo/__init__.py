"""carebound.agents.demo: the smallest agent that exercises every part of the runner (a read, a
held external effect, a reviewer decision, a wait for an event or a timer).

``_agent`` is the agent (rule planner, or a chat model behind the same gate, and its definition).
"""

from ._agent import DEMO, NOTE_CODE, TOOLS, plan

__all__ = ["DEMO", "NOTE_CODE", "TOOLS", "plan"]
