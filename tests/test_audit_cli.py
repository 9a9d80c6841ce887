"""``carebound audit`` through the real CLI and ``GET /api/runs/{id}/audit`` through the real
app, on real Redis: an unreadable entry is a broken chain (exit 1; 200 with ``ok: false``),
and ``audit export`` / ``audit RUN --verify --anchors FILE`` catch what Redis alone cannot.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import redis
from fastapi.testclient import TestClient
from typer.testing import CliRunner, Result

from carebound import Approve, Runner
from carebound.cli import app
from carebound.guardrails import load_policy_pack
from carebound.state.audit_codec import unpack_event
from carebound.state.keys import run_key
from carebound.web import UserStore, WebSettings, create_app


@dataclass
class Store:
    """A runner on the test Redis, and the CLI pointed at the same key space."""

    runner: Runner
    client: redis.Redis
    prefix: str
    case: Any
    world: Any

    def decided_run(self) -> str:
        """A demo run whose fax hold casey approved (create ... decision, effect)."""
        run = self.runner.start("demo", self.case, requester="sam", world=self.world)
        assert run.pending is not None
        hold = run.pending.request
        decision = Approve(reviewer="casey", role="intake_coordinator", args_hash=hold.args_hash)
        self.runner.decide(hold.approval_id, decision)
        return run.run_id

    def stream(self, run_id: str) -> str:
        return run_key(self.prefix, run_id, "audit")

    def payloads(self, run_id: str) -> list[bytes]:
        """The run's events as plain JSON (inflated from how they are stored)."""
        return [
            bytes(unpack_event(f[b"event"]))
            for _, f in self.client.xrange(self.stream(run_id)) or []
        ]

    def replace(self, run_id: str, payloads: list[bytes]) -> None:
        self.client.delete(self.stream(run_id))
        for payload in payloads:
            self.client.xadd(self.stream(run_id), {"event": payload})


@pytest.fixture
def store(
    make_runner: Any,
    redis_client: redis.Redis,
    redis_url: str,
    key_prefix: str,
    demo_case: Any,
    demo_world: Any,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> Iterator[Store]:
    monkeypatch.setenv("CAREBOUND_REDIS_URL", redis_url)
    monkeypatch.setenv("CAREBOUND_PREFIX", key_prefix)
    monkeypatch.setenv("CAREBOUND_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("COLUMNS", "200")
    monkeypatch.delenv("CAREBOUND_DEBUG", raising=False)
    yield Store(make_runner(), redis_client, key_prefix, demo_case, demo_world)


def cli(*args: str, code: int = 0) -> Result:
    """Invoke the CLI; check the exit code and that no traceback ever shows."""
    result = CliRunner().invoke(app, list(args))
    both = result.stdout + result.stderr
    assert "Traceback" not in both
    assert result.exception is None or isinstance(result.exception, SystemExit), both
    assert result.exit_code == code, f"exit {result.exit_code}, wanted {code}:\n{both}"
    return result


def corrupt_second_entry(store: Store, run_id: str) -> None:
    items = store.payloads(run_id)
    items[1] = b"{not json"
    store.replace(run_id, items)


# -- an unreadable entry ----------------------------------------------------------------------


def test_unreadable_entry_is_a_broken_chain_in_the_cli(store: Store) -> None:
    run_id = store.decided_run()
    corrupt_second_entry(store, run_id)

    verified = cli("audit", run_id, "--verify", code=1)

    assert "BROKEN" in verified.stdout
    assert "unparseable" in verified.stdout and "seq 2: missing" in verified.stdout
    as_json = json.loads(cli("audit", run_id, "--verify", "--json", code=1).stdout)
    assert as_json["verify"]["ok"] is False
    assert [e["seq"] for e in as_json["events"]][:2] == [1, 3]  # the readable events
    listing = cli("audit", run_id)  # listing alone still works, and warns
    assert "cannot be read" in listing.stderr and "--verify" in listing.stderr


def test_unreadable_entry_is_a_broken_chain_in_the_api(store: Store) -> None:
    run_id = store.decided_run()
    corrupt_second_entry(store, run_id)
    users = UserStore(store.client, load_policy_pack("default"), prefix=store.prefix)
    token = users.create_token("auditor", ("intake_coordinator",))
    api = TestClient(
        create_app(store.runner, users=users, settings=WebSettings()),
        headers={"Authorization": f"Bearer {token}"},
    )

    answer = api.get(f"/api/runs/{run_id}/audit")

    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["verify"]["ok"] is False
    assert any("unparseable" in p for p in body["verify"]["problems"])
    assert [e["seq"] for e in body["events"]][:2] == [1, 3]


def test_unreadable_entry_is_a_broken_chain_on_the_audit_page(store: Store) -> None:
    run_id = store.decided_run()
    corrupt_second_entry(store, run_id)
    users = UserStore(store.client, load_policy_pack("default"), prefix=store.prefix)
    users.set_password("casey", "correct horse battery staple")
    browser = TestClient(create_app(store.runner, users=users, settings=WebSettings()))
    form = browser.get("/login").text
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', form)
    assert csrf is not None
    signed_in = browser.post(
        "/login",
        data={"user": "casey", "password": "correct horse battery staple", "csrf_token": csrf[1]},
        follow_redirects=False,
    )
    assert signed_in.status_code == 303, signed_in.text

    page = browser.get(f"/runs/{run_id}/audit")

    assert page.status_code == 200, page.text
    assert "Hash chain BROKEN" in page.text and "unparseable" in page.text


# -- export and anchors -----------------------------------------------------------------------


def test_export_catches_a_tail_cut_with_head_and_anchor_reset(store: Store, tmp_path: Path) -> None:
    run_id = store.decided_run()
    anchors = tmp_path / "anchors.jsonl"

    exported = cli("audit", "export", run_id, "--out", str(anchors))

    assert "checkpoint at seq" in exported.stdout
    [line] = anchors.read_text().splitlines()
    point = json.loads(line)
    assert (point["run_id"], point["kind"]) == (run_id, "audit-checkpoint")
    assert (
        "holds every one of the 1 checkpoint"
        in cli("audit", run_id, "--anchors", str(anchors)).stdout
    )

    # an attacker with the whole store, but not the file: cut the tail, reset head and anchor
    items = store.payloads(run_id)[:-2]
    store.replace(run_id, items)
    last = json.loads(items[-1])
    head = run_key(store.prefix, run_id, "audit", "head")
    store.client.hset(head, mapping={"seq": last["seq"], "hash": last["hash"]})
    store.client.hset(f"{store.prefix}:audit:anchors", run_id, f"{last['seq']}:{last['hash']}")

    verified = cli("audit", run_id, "--verify", "--anchors", str(anchors), code=1)

    assert f"records seq {point['seq']} but the chain ends at seq {last['seq']}" in (
        verified.stdout
    )
    result = json.loads(cli("audit", run_id, "--anchors", str(anchors), "--json", code=1).stdout)[
        "verify"
    ]
    assert (result["ok"], result["checkpoints"]) == (False, 1)


def test_export_appends_and_edits_of_the_file_are_detected(store: Store, tmp_path: Path) -> None:
    first, second = store.decided_run(), store.decided_run()
    anchors = tmp_path / "anchors.jsonl"

    report = json.loads(cli("audit", "export", "--out", str(anchors), "--json").stdout)
    assert sorted(c["run_id"] for c in report["written"]) == sorted([first, second])
    before = anchors.read_text()
    cli("audit", "export", first, "--out", str(anchors))
    assert anchors.read_text().startswith(before)  # appended, never rewritten
    lines = anchors.read_text().splitlines()
    assert len(lines) == 3
    cli("audit", first, "--anchors", str(anchors))

    edited = json.loads(lines[0])
    edited["seq"] = 1  # pretend the chain was shorter at export
    anchors.write_text("\n".join([json.dumps(edited), *lines[1:]]) + "\n")
    out = cli("audit", first, "--anchors", str(anchors), code=1).stdout
    assert "line 1" in out and "MAC mismatch" in out

    anchors.write_text("\n".join(lines[1:]) + "\n")  # the first line removed
    out = cli("audit", first, "--anchors", str(anchors), code=1).stdout
    assert "does not follow the line before it" in out


def test_export_refuses_a_broken_chain(store: Store, tmp_path: Path) -> None:
    good, bad = store.decided_run(), store.decided_run()
    corrupt_second_entry(store, bad)
    anchors = tmp_path / "anchors.jsonl"

    refused = cli("audit", "export", "--out", str(anchors), code=1)

    assert f"{bad}: not exported" in refused.stdout and "unparseable" in refused.stdout
    assert [json.loads(x)["run_id"] for x in anchors.read_text().splitlines()] == [good]


def test_export_errors_are_clear(store: Store, tmp_path: Path) -> None:
    missing = cli("audit", "export", "rnope", "--out", str(tmp_path / "a.jsonl"), code=5)
    assert "no run 'rnope'" in missing.stderr
    run_id = store.decided_run()
    nowhere = cli("audit", "export", run_id, "--out", str(tmp_path / "no" / "a.jsonl"), code=2)
    assert "cannot open the anchors file" in nowhere.stderr and "hint:" in nowhere.stderr
    unreadable = cli("audit", run_id, "--anchors", str(tmp_path / "absent.jsonl"), code=2)
    assert "cannot read the anchors file" in unreadable.stderr
    usage = cli("audit", "export", run_id, code=2)  # --out is required
    assert "--out" in usage.stderr
