"""An effect's record (the ledger's result and its audit event) rides the run's next round trip
(issue 17: one round trip less per effect), and a SIGKILL before it lands loses nothing.

The record rides on the caller's own client, the wire the run's checkpoints go on too, and
riders are sent first and in order: no checkpoint past the effect's step lands before it. A
process that dies while the record still waits leaves the step's ledger entry ``reserved``
and no ``effect`` audit event; recovery replays the step from its checkpoint, calls the
connector again with the same key (its de-duplication returns the first fax's receipt) and
records the effect then: one fax, a ``done`` ledger entry, a verified audit trail with the
effect in it.
"""

from __future__ import annotations

import redis

from tests.crashworker import KILL_ENV, check_runs, fired_hooks, killed, worker_argv
from tests.test_crash import assert_all_safe, cli_worker


def test_a_kill_while_the_effect_record_rides_loses_nothing(
    redis_url: str, key_prefix: str
) -> None:
    runs = 2
    client = redis.Redis.from_url(redis_url)
    # The worker decides the first hold, sends the fax and dies as the next plan is made, in
    # the step that made the effect: before any round trip after the connector call.
    code = cli_worker(worker_argv(redis_url, key_prefix, runs), env={KILL_ENV: "plan"})
    assert killed(code), f"worker exited with {code}, expected SIGKILL"
    (dead_run,) = fired_hooks(client, key_prefix)["plan"]
    dead = next(c for c in check_runs(client, key_prefix, runs) if c.run_id == dead_run)
    assert dead.ledger == ("reserved",), "the effect's record had not landed when it died"
    assert "effect" not in dead.audit_actions
    assert (dead.effects, dead.attempts) == (1, 1)

    assert cli_worker(worker_argv(redis_url, key_prefix, runs, exit_when_done=True)) == 0
    checks = check_runs(client, key_prefix, runs)
    assert_all_safe(checks)
    replayed = next(c for c in checks if c.run_id == dead_run)
    assert replayed.attempts == 2  # called again with its key: de-duplicated, one fax
    assert replayed.audit_actions.count("effect") == 1
    client.close()
