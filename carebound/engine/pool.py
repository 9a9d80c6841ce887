"""The worker pool: N slots that take "drive run R" messages off the work queue and drive them.

One :class:`WorkerPool` is one worker process's share of the pool (``carebound worker
--concurrency N``). Each slot is a thread that reads a message, *begins* it, takes the run's
lease, drives the run to its next stop and acknowledges the message:

* the lease is busy: another worker is driving the run; its settle sees what woke the run
  (it reads, in the same round trip that releases the lease, whether the run moved
  meanwhile), so the message is acknowledged (counted as ``busy``);
* the drive failed (an unexpected error): the message stays pending and is retried once it
  has been idle ``reclaim_idle_ms`` (the run's failures count towards its quarantine);
* the run was quarantined, or the message was begun more than ``max_tries`` times (its
  workers kept dying): it moves to the dead letters.

Beside the slots, the pool's housekeeping (in the thread that called :meth:`WorkerPool.run`)
reclaims messages left pending by dead workers (``XAUTOCLAIM``), sweeps (due timers and
overdue holds are recorded and enqueued; runs marked for driving longer than
``recover_after_ms`` ago are enqueued again: a worker died holding them) and reports its busy
and free slots. :meth:`WorkerPool.stop` (SIGTERM) drains: no slot takes a new message, each
finishes its current drive (the lease is released as the drive settles), and messages this
worker took but did not begin stay pending for the others.
"""

from __future__ import annotations

import contextlib
import logging
import os
import queue
import socket
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field

from carebound._errors import LeaseLostError, NotFoundError
from carebound.engine.core import Core
from carebound.engine.drive import Driver
from carebound.engine.results import RunView
from carebound.engine.wake import Waker
from carebound.state.errors import STORE_DOWN
from carebound.state.work_queue import Message

_log = logging.getLogger("carebound.worker")


@dataclass(kw_only=True)
class PoolSettings:
    """How one worker process takes part in the pool."""

    concurrency: int = 8
    """Slots: runs this process drives at once (threads; the work is I/O-bound)."""
    reclaim_idle_ms: int = 30_000
    """A message pending this long (its worker died or stalled) is taken over."""
    recover_after_ms: int = 60_000
    """A run marked for driving this long ago and not settled since is enqueued again."""
    sweep_interval_s: float = 5.0
    """Seconds between sweeps (timers, overdue holds, recovery) and reclaims."""
    max_tries: int = 5
    """A message begun more often than this goes to the dead letters."""
    block_ms: int = 500
    """How long a free slot waits for a message before it looks again."""
    upkeep: Callable[[], object] | None = None
    """More work for each sweep (the process figures' fold, notifications): its failure is
    logged, never stops the worker."""
    on_ready: Callable[[], object] | None = None
    """Called once, when the slots run and the pool has reported them (``carebound worker``
    starts serving its metrics then)."""


@dataclass
class PoolReport:
    """What one worker process did."""

    consumer: str
    drives: int = 0
    busy: int = 0
    failed: int = 0
    dead_lettered: int = 0
    reclaimed: int = 0
    sweeps: int = 0
    errors: list[str] = field(default_factory=list)


class WorkerPool:
    """One worker process's slots (see the module's docstring)."""

    def __init__(
        self,
        core: Core,
        driver: Driver,
        waker: Waker,
        settings: PoolSettings | None = None,
        *,
        consumer: str | None = None,
    ) -> None:
        self.core = core
        self.driver = driver
        self.waker = waker
        self.settings = settings or PoolSettings()
        self.work = core.work
        self.consumer = consumer or f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"
        self.report = PoolReport(consumer=self.consumer)
        self._stopping = threading.Event()
        self._reclaimed: queue.SimpleQueue[Message] = queue.SimpleQueue()
        self._busy = 0
        self._held: set[str] = set()
        """Ids of the messages this process has taken and not finished."""
        self._lock = threading.Lock()

    # -- lifetime ------------------------------------------------------------------------

    def stop(self) -> None:
        """Drain: take no new message, let each slot finish its drive, then :meth:`run`
        returns. Safe to call from a signal handler."""
        self._stopping.set()

    @property
    def busy_slots(self) -> int:
        """Slots driving a run now."""
        return self._busy

    def run(self) -> PoolReport:
        """Run until :meth:`stop`, then drain and return what this process did."""
        self.work.ensure_group()
        slots = [
            threading.Thread(target=self._slot, name=f"cb-slot-{i}", daemon=True)
            for i in range(self.settings.concurrency)
        ]
        for slot in slots:
            slot.start()
        try:
            self._report_slots()
            if self.settings.on_ready is not None:
                self.settings.on_ready()
            next_sweep = 0.0
            while not self._stopping.is_set():
                if time.monotonic() >= next_sweep:
                    self._housekeeping()
                    next_sweep = time.monotonic() + self.settings.sweep_interval_s
                self._report_slots()
                self._stopping.wait(min(1.0, self.settings.sweep_interval_s))
        finally:
            self._stopping.set()
            for slot in slots:
                slot.join()
            with contextlib.suppress(*STORE_DOWN):
                self.work.forget_worker(self.consumer)
        return self.report

    # -- housekeeping ----------------------------------------------------------------------

    def _housekeeping(self) -> None:
        """Reclaim what dead workers left, sweep timers and holds, re-enqueue stalled runs.
        A store outage is logged and tried again at the next interval."""
        try:
            self._reclaim()
            self.waker.sweep(recover_after_ms=self.settings.recover_after_ms)
            self.report.sweeps += 1
            if self.settings.upkeep is not None:
                self.settings.upkeep()
        except STORE_DOWN as exc:
            _log.warning("the store cannot be reached (%s); retrying", type(exc).__name__)

    def _reclaim(self) -> None:
        """Take over messages idle past ``reclaim_idle_ms``, as many as there are free slots."""
        free = self.settings.concurrency - self._busy - self._reclaimed.qsize()
        if free <= 0:
            return
        claimed = self.work.reclaim(
            self.consumer, min_idle_ms=self.settings.reclaim_idle_ms, count=free
        )
        with self._lock:  # ours already (waiting for a slot, or a long drive): not again
            taken = [m for m in claimed if m.id not in self._held]
            self._held.update(m.id for m in taken)
        for message in taken:
            self._reclaimed.put(message)
        if taken:
            self.work.count_reclaimed(len(taken))
        self.report.reclaimed += len(taken)

    def _report_slots(self) -> None:
        busy = self._busy
        info = {
            "host": socket.gethostname(),
            "pid": os.getpid(),
            "slots": self.settings.concurrency,
            "busy": busy,
            "free": self.settings.concurrency - busy,
            "draining": self._stopping.is_set(),
        }
        with contextlib.suppress(*STORE_DOWN):
            self.work.report_worker(self.consumer, info)

    # -- a slot ----------------------------------------------------------------------------

    def _slot(self) -> None:
        while not self._stopping.is_set():
            try:
                message = self._next()
                if message is not None:
                    self._handle(message)
            except STORE_DOWN as exc:
                _log.warning("the store cannot be reached (%s); retrying", type(exc).__name__)
                self._stopping.wait(1.0)

    def _next(self) -> Message | None:
        try:
            return self._reclaimed.get_nowait()
        except queue.Empty:
            pass
        found = self.work.read(self.consumer, count=1, block_ms=self.settings.block_ms)
        return found[0] if found else None

    def _handle(self, message: Message) -> None:
        """Begin, drive and settle one message (see the module's docstring)."""
        with self._lock:
            self._busy += 1
            self._held.add(message.id)
        try:
            self._drive(message)
        finally:
            with self._lock:
                self._busy -= 1
                self._held.discard(message.id)

    def _drive(self, message: Message) -> None:
        work, run_id = self.work, message.run_id
        tries = work.begin(message)
        if tries == 0:
            return  # done already (it was reclaimed twice, or late)
        if tries > self.settings.max_tries:
            reason = f"begun {tries} times without finishing (its workers stopped mid-drive)"
            self._dead_letter(message, reason, tries)
            return
        try:
            reads = self.driver.take_lease(run_id, 0)
            if reads.lease is None:
                work.ack(message, counter="busy")  # its holder's settle sees the wake-up
                self.report.busy += 1
                return
            view = self.driver.drive(run_id, lease_wait_s=0, acquired=reads)
        except NotFoundError:
            work.ack(message)  # no such run (deleted): nothing to drive
            return
        except LeaseLostError:
            work.ack(message, counter="busy")  # another worker took the run over and settles it
            self.report.busy += 1
            return
        except STORE_DOWN:
            raise
        except Exception as exc:  # left pending: retried once idle for reclaim_idle_ms
            _log.warning("run %s: drive failed with %s", run_id, type(exc).__name__)
            self.report.failed += 1
            return
        self.report.drives += 1
        if view.status == "quarantined":
            self._dead_letter(message, view.record.summary, tries)
        elif view.record.failures:
            self.report.failed += 1  # left pending: retried once idle for reclaim_idle_ms
        else:
            work.ack(message)

    def _dead_letter(self, message: Message, reason: str, tries: int) -> None:
        if self.work.dead_letter(message, reason=reason, tries=tries):
            self.report.dead_lettered += 1
            _log.warning("run %s: dead-lettered (%s)", message.run_id, reason)


def release_quarantine(core: Core, driver: Driver, run_id: str) -> None:
    """Take a quarantined run off the quarantine (an operator retries it): its status is
    ``running`` again, its failure count starts again and it is marked for driving. Nothing
    for a run that is not quarantined."""
    record = core.runs.get(run_id)
    if record is None or record.status != "quarantined":
        return
    reads = driver.take_lease(run_id, 5.0)
    if reads.lease is None or reads.record is None or reads.record.status != "quarantined":
        if reads.lease is not None:
            core.leases.release(reads.lease)
        return
    updated = reads.record.model_copy(
        update={
            "status": "running",
            "failures": 0,
            "summary": "released from the quarantine by an operator; retried",
            "updated_at": core.clock.now(),
        }
    )
    core.trips.release_quarantine(run_id, updated, reads.lease)


def wait_for_stop(core: Core, run_id: str, *, past: str | None, timeout_s: float) -> RunView:
    """See :meth:`carebound.Runner.wait`."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        record = core.record(run_id)
        parked = record.status == "paused" and past and record.pending_approval == past
        if record.status != "running" and not parked:
            break
        time.sleep(0.05)
    return core.get(run_id)
