"""What ``carebound worker`` does besides driving runs: it folds the process figures, sends
notifications, serves ``--metrics-port`` and logs its start and stop (one JSON line each)."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from carebound.logs import event

if TYPE_CHECKING:
    from wsgiref.simple_server import WSGIServer

    from carebound.engine.runner import Runner
    from carebound.notify import Notifier
    from carebound.state.kpi import KpiStore

_log = logging.getLogger("carebound.worker")

FOLD_PER_SWEEP = 20_000
"""Most audit events one sweep folds into the process figures (the rest: next sweep)."""


class Upkeep:
    """Called once per sweep; every part of it is optional and none of it stops the worker."""

    def __init__(
        self,
        runner: Runner,
        *,
        metrics_port: int | None,
        pool: bool,
        metrics_addr: str = "127.0.0.1",
    ) -> None:
        from carebound.kpi import REFERRAL_AGENTS
        from carebound.logs import configure
        from carebound.state.kpi import KpiStore

        configure()
        self._kpi: KpiStore = KpiStore(
            runner.client, prefix=runner.prefix, referral_agents=REFERRAL_AGENTS
        )
        self._notifier = _notifier(runner)
        self._runner = runner
        self._metrics_port = metrics_port
        self._metrics_addr = metrics_addr
        self._pool = pool
        self._metrics: WSGIServer | None = None
        event(_log, "worker.start", metrics_port=metrics_port, pool=pool,
              notifications=self._notifier is not None)  # fmt: skip

    def serve_metrics(self) -> None:
        """Start answering ``--metrics-port`` (if given). A pool calls this once its slots run
        and are reported (``PoolSettings.on_ready``), so the first scrape already counts them
        and a SIGTERM sent once the port answers finds the draining handler installed."""
        if self._metrics_port is None:
            return
        from prometheus_client import start_http_server

        from carebound.metrics import pool_metrics, registry

        runner = self._runner
        extra = [pool_metrics(runner.work.stats)] if self._pool else []
        self._metrics, _ = start_http_server(
            self._metrics_port,
            addr=self._metrics_addr,
            registry=registry(runner.client, prefix=runner.prefix, extra=extra),
        )

    @property
    def metrics_address(self) -> tuple[str, int] | None:
        """Where the metrics are served (address, port); None: not served."""
        if self._metrics is None:
            return None
        host, port = self._metrics.server_address[:2]
        return str(host), int(port)

    def __call__(self) -> None:
        try:
            folded = self._kpi.catch_up(limit=FOLD_PER_SWEEP)
            sent = self._notifier.sweep().sent if self._notifier is not None else 0
        except Exception as exc:
            event(_log, "worker.upkeep_failed", logging.WARNING, error=type(exc).__name__)
            return
        if folded or sent:
            event(_log, "worker.upkeep", folded=folded, notified=sent)

    def stop(self) -> None:
        """Close the notifier's connections and the metrics port, and log the stop."""
        if self._notifier is not None:
            self._notifier.close()
        if self._metrics is not None:
            self._metrics.shutdown()
            self._metrics.server_close()
        event(_log, "worker.stop")


def _notifier(runner: Runner) -> Notifier | None:
    """The notifier of the connectors file's ``[notify]`` table (None: not configured)."""
    from carebound.tools.connectors.config import configured_connectors_file, load_notify_config

    path = configured_connectors_file()
    config = load_notify_config(path) if path is not None else None
    if config is None:
        return None
    from carebound.notify import Notifier

    return Notifier(runner.client, config, prefix=runner.prefix, clock=runner.clock)
