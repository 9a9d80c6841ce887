"""``carebound worker --metrics-port``: the pool's and the process figures' metrics from a real
worker process, its start and stop as JSON log lines, and no traceback on SIGTERM."""

from __future__ import annotations

import json
import signal
import threading
import time
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
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


def test_a_pool_workers_metrics_answer_once_its_slots_are_reported(
    redis_url: str, redis_client: redis.Redis, key_prefix: str, demo_case: Any, demo_world: Any,
    tmp_path: Path,
) -> None:  # fmt: skip
    """The first scrape counts the slots, and a SIGTERM sent once the port answers drains: the
    port opens only when the pool runs (its first sweep here hangs on a webhook that answers
    when the test says, so a port opened earlier is scraped with no slot reported)."""
    Runner(redis_client, prefix=key_prefix).start("demo", demo_case, requester="sam",
                                                   world=demo_world)  # fmt: skip
    entered, release = threading.Event(), threading.Event()

    class Hook(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            self.rfile.read(int(self.headers["Content-Length"]))
            entered.set()
            release.wait(60)
            self.send_response(200)
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    hook = ThreadingHTTPServer(("127.0.0.1", free_port()), Hook)
    threading.Thread(target=hook.serve_forever, daemon=True).start()
    notify = tmp_path / "notify.toml"
    notify.write_text(
        '[notify]\nbase_url = "https://inbox.clinic.test"\n[[notify.webhooks]]\n'
        f'role = "intake_coordinator"\nurl = "http://127.0.0.1:{hook.server_port}/hook"\n'
        'secret_env = "CB_HOOK"\n'
    )
    port = free_port()
    worker = worker_process(redis_url, key_prefix, "--concurrency", "2", "--interval", "0.2",
                            "--metrics-port", str(port), CAREBOUND_CONNECTORS=str(notify),
                            CB_HOOK="hook-secret-for-tests")  # fmt: skip
    try:
        assert entered.wait(60), "the worker's first sweep never notified the webhook"
        families = _scrape(port)
        release.set()
        worker.send_signal(signal.SIGTERM)
        _, err = worker.communicate(timeout=30)
    finally:
        release.set()
        if worker.poll() is None:
            worker.kill()
        hook.shutdown()
        hook.server_close()
    slots = {s.labels["state"]: s.value for s in families["carebound_worker_slots"].samples}
    assert slots["busy"] + slots["free"] == 2
    assert worker.returncode == 0, err
