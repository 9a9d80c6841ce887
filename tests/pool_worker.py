"""``carebound worker`` in a child process that also knows the test agents
(tests/isolation_agents.py): ``python -m tests.pool_worker worker --concurrency 2 ...``.

The run's policy pack is pinned at start, so only the agent registry needs the test agents.
"""

from __future__ import annotations

import carebound.agents
from tests import isolation_agents

carebound.agents.registry = isolation_agents.registry  # type: ignore[assignment]

if __name__ == "__main__":
    from carebound.cli import main

    main()
