"""``carebound worker --metrics-port``: the pool's and the process figures' metrics from a real
worker process, its start and stop as JSON log lines, and no traceback on SIGTERM."""

from __future__ import annotations

import json
import signal
import time
import urllib.request
from typing import Any

import redis
from prometheus_client.parser import text_string_to_metric_families

from carebound import Runner
from tests.servers import free_port
from tests.test_workers import worker_process


def _scrape(port: int, deadline_s: float = 30.0) -> dict[str, Any]:
    end = time.monotonic() + deadline_s
    while True:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as answer:
                return {f.name: f for f in text_string_to_metric_families(answer.read().decode())}
        except OSError:
            if time.monotonic() > end:
                raise
            time.sleep(0.2)


def test_a_worker_serves_the_pools_metrics_and_logs_start_and_stop(
    redis_url: str, redis_client: redis.Redis, key_prefix: str, demo_case: Any, demo_world: Any
) -> None:
    Runner(redis_client, prefix=key_prefix).start("demo", demo_case, requester="sam",
                                                   world=demo_world)  # fmt: skip
    port = free_port()
    worker = worker_process(redis_url, key_prefix, "--concurrency", "2", "--interval", "0.2",
                            "--metrics-port", str(port))  # fmt: skip
    try:
        families = _scrape(port)
        worker.send_signal(signal.SIGTERM)
        _, err = worker.communicate(timeout=30)
    finally:
        if worker.poll() is None:
            worker.kill()
    assert worker.returncode == 0, err
    assert "Traceback" not in err
    for name in ("carebound_work_queue_depth", "carebound_work_oldest_pending_seconds",
                 "carebound_work_messages", "carebound_worker_slots", "carebound_runs_started",
                 "carebound_inbox_pending"):  # fmt: skip
        assert name in families, name
    slots = {s.labels["state"]: s.value for s in families["carebound_worker_slots"].samples}
    assert slots["busy"] + slots["free"] == 2
    started = [s.value for s in families["carebound_runs_started"].samples
               if s.name.endswith("_total")]  # fmt: skip
    assert started == [1]
    events = [json.loads(line)["event"] for line in err.splitlines() if line.startswith("{")]
    assert events[0] == "worker.start" and events[-1] == "worker.stop"
