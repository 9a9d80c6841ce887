"""Hostile input through the real CLI and Runner on a real Redis: every malformed, oversized,
too-deep or out-of-range file is refused with exit 2 and a message naming the file and the
limit, never exit 70, and a refused start leaves no key behind."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest
import redis
import yaml
from typer.testing import CliRunner, Result

from carebound import _limits
from carebound.cli import ExitCode, app

PROJECT = Path(__file__).resolve().parents[1]
HELLO = (PROJECT / "scenarios" / "hello_hold.yaml").read_text(encoding="utf-8")
DEFAULT_PACK = PROJECT / "guardrails" / "packs" / "default.yaml"


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    """A scenario folder: the hello scenario's case beside the files a test writes."""
    shutil.copytree(PROJECT / "scenarios" / "cases", tmp_path / "cases")
    return tmp_path


def keys(client: redis.Redis, prefix: str) -> set[bytes]:
    return set(client.scan_iter(match=f"{prefix}:*", count=1000))


def run_cli(*args: str) -> Result:
    result = CliRunner().invoke(app, list(args))
    both = result.stdout + result.stderr
    assert "Traceback" not in both, both
    assert result.exception is None or isinstance(result.exception, SystemExit), both
    return result


def refused(path: Path, *needles: str) -> Result:
    """Run the scenario; it must be refused (exit 2) with every needle in the message."""
    result = run_cli("run", str(path))
    assert result.exit_code == ExitCode.BAD_INPUT, (result.exit_code, result.stderr)
    for needle in needles:
        assert needle in result.stderr, (needle, result.stderr)
    return result


def scenario(folder: Path, name: str, text: str) -> Path:
    path = folder / name
    path.write_text(text, encoding="utf-8")
    return path


def nested(depth: int) -> Any:
    value: Any = "x"
    for _ in range(depth):
        value = [value]
    return value


# -- exit 70 from input: each finding of issue 12 --------------------------------------------


def test_start_without_time_zone_is_refused(env: str, folder: Path) -> None:
    path = scenario(
        folder,
        "naive.yaml",
        HELLO.replace("requester: sam", "requester: sam\nstart: 2026-03-02T09:00:00"),
    )
    refused(path, "naive.yaml", "start", "timezone")


@pytest.mark.parametrize(
    ("old", "new"),
    [("requester: sam", "requester: sam\nuntil: P100000Y"), ("after: PT6H", "after: P100000Y")],
    ids=["until", "reply-after"],
)
def test_huge_durations_are_refused(env: str, folder: Path, old: str, new: str) -> None:
    path = scenario(folder, "long.yaml", HELLO.replace(old, new))
    refused(path, "long.yaml", "3660 days")


def test_start_beyond_the_calendar_is_refused(env: str, folder: Path) -> None:
    path = scenario(
        folder,
        "late.yaml",
        HELLO.replace("requester: sam", "requester: sam\nstart: 9999-12-31T00:00:00Z"),
    )
    refused(path, "late.yaml", "start")


def test_deeply_nested_scenario_yaml_is_refused(env: str, folder: Path) -> None:
    path = scenario(folder, "deep.yaml", HELLO + "\nextra: " + "[" * 1000 + "]" * 1000 + "\n")
    refused(path, "deep.yaml", f"nested deeper than {_limits.MAX_DEPTH} levels")


def test_deeply_nested_pack_is_refused(env: str, folder: Path) -> None:
    pack = DEFAULT_PACK.read_text(encoding="utf-8") + "\nextra: " + "[" * 1000 + "]" * 1000 + "\n"
    (folder / "pack.yaml").write_text(pack, encoding="utf-8")
    path = scenario(
        folder, "s.yaml", HELLO.replace("requester: sam", "requester: sam\npolicy: pack.yaml")
    )
    refused(path, "pack.yaml", f"nested deeper than {_limits.MAX_DEPTH} levels")


def test_deeply_nested_erp_file_is_refused(env: str, folder: Path) -> None:
    (folder / "erp.json").write_text(json.dumps({"purchase_orders": nested(900)}), encoding="utf-8")
    text = HELLO.replace(
        "  ehr: cases/hello_referral.json", "  ehr: cases/hello_referral.json\n  erp: erp.json"
    )
    refused(
        scenario(folder, "s.yaml", text),
        "erp.json",
        f"nested deeper than {_limits.MAX_DEPTH} levels",
    )


def test_deeply_nested_case_bundle_is_refused(env: str, folder: Path) -> None:
    bundle = json.loads((folder / "cases" / "hello_referral.json").read_text(encoding="utf-8"))
    bundle["entry"][0]["resource"]["extension"] = nested(900)
    (folder / "cases" / "deep.json").write_text(json.dumps(bundle), encoding="utf-8")
    text = HELLO.replace("case: cases/hello_referral.json", "case: cases/deep.json")
    refused(
        scenario(folder, "s.yaml", text),
        "deep.json",
        f"nested deeper than {_limits.MAX_DEPTH} levels",
    )
    result = run_cli("run", "--agent", "demo", "--case", str(folder / "cases" / "deep.json"))
    assert result.exit_code == ExitCode.BAD_INPUT and "deep.json" in result.stderr


def test_oversized_file_is_refused(env: str, folder: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_limits, "MAX_FILE_BYTES", 2_000)
    refused(
        scenario(folder, "big.yaml", HELLO + "\n# " + "x" * 3_000 + "\n"), "big.yaml", "2,000 bytes"
    )


def test_yaml_alias_bomb_is_refused(env: str, folder: Path) -> None:
    bomb = ["a: &a [x, x, x, x, x, x, x, x, x, x]"]
    for i, name in enumerate("bcdefgh"):
        prev = "abcdefgh"[i]
        bomb.append(f"{name}: &{name} [" + ", ".join([f"*{prev}"] * 10) + "]")
    text = HELLO + "\n" + "\n".join(bomb) + "\n"
    refused(scenario(folder, "bomb.yaml", text), "bomb.yaml", "values (the limit)")


def test_control_characters_in_a_scenario_are_refused(env: str, folder: Path) -> None:
    path = scenario(folder, "ctl.yaml", HELLO.replace("requester: sam", 'requester: "sam\\e[2J"'))
    result = refused(path, "ctl.yaml", "requester", "control character (U+001B)")
    assert "\x1b" not in result.stderr


def test_lone_surrogate_in_pack_reviewer_is_refused_before_any_write(
    env: str, folder: Path, redis_client: redis.Redis
) -> None:
    pack = yaml.safe_load(DEFAULT_PACK.read_text(encoding="utf-8"))
    pack["reviewers"][0]["name"] = "Casey \udc80"
    (folder / "pack.yaml").write_text(yaml.safe_dump(pack, allow_unicode=False), encoding="utf-8")
    path = scenario(
        folder, "s.yaml", HELLO.replace("requester: sam", "requester: sam\npolicy: pack.yaml")
    )
    before = keys(redis_client, env)
    err = refused(path, "pack.yaml").stderr
    # libyaml refuses the escape itself (with line and column); PyYAML's loader parses it and
    # the tree check names the field: either way the file and the place are named.
    assert "invalid Unicode character escape" in err or "reviewers[0].name" in err, err
    assert keys(redis_client, env) == before


def test_lone_surrogate_in_a_json_world_file_is_refused(
    env: str, folder: Path, redis_client: redis.Redis
) -> None:
    bundle = (folder / "cases" / "hello_referral.json").read_text(encoding="utf-8")
    (folder / "ehr.json").write_text(bundle.replace("Okafor", "Oka\\udc80for"), encoding="utf-8")
    text = HELLO.replace("  ehr: cases/hello_referral.json", "  ehr: ehr.json")
    before = keys(redis_client, env)
    refused(
        scenario(folder, "s.yaml", text),
        "ehr.json",
        "entry[1].resource.name[0].family",
        "lone surrogate",
    )
    assert keys(redis_client, env) == before


def test_runner_start_refuses_unstorable_input_before_writing(
    make_runner: Any,
    redis_client: redis.Redis,
    key_prefix: str,
    demo_case: dict[str, Any],
    demo_world: Any,
) -> None:
    """A library caller's pack and case are checked before the world, the drive mark, the
    audit event or the record is written: the refused start leaves the key space as it was."""
    from carebound import CareboundError
    from carebound.guardrails import load_policy_pack

    runner = make_runner()
    pack = load_policy_pack("default")
    bad_pack = pack.model_copy(
        update={"reviewers": [pack.reviewers[0].model_copy(update={"name": "Casey \udc80"})]}
    )
    bad_case = json.loads(json.dumps(demo_case))
    bad_case["entry"][0]["resource"]["note"] = [{"text": "a \ud800 b"}]
    deep_case = {**demo_case, "meta": {"extension": nested(900)}}
    attempts: list[dict[str, Any]] = [
        {"case": demo_case, "policy": bad_pack},
        {"case": bad_case},
        {"case": deep_case},
        {"case": demo_case, "requester": "sam\udc00"},
        {"case": demo_case, "run_id": "r1}:evil"},
    ]
    before = keys(redis_client, key_prefix)
    for attempt in attempts:
        kwargs = {"requester": "sam", "world": demo_world, **attempt}
        case = kwargs.pop("case")
        with pytest.raises(CareboundError) as info:
            runner.start("demo", case, **kwargs)
        assert info.value.hint, info.value
        assert keys(redis_client, key_prefix) == before, attempt
    # and a good start still works on the same runner
    assert runner.start("demo", demo_case, requester="sam", world=demo_world).status == "paused"


# -- terminal escape injection -----------------------------------------------------------------

CLEAR = "\x1b[2J\x1b[H"
LINK = "\x1b]8;;https://evil.example/\x1b\\click\x1b]8;;\x1b\\"
TITLE = "\x1b]0;pwned\x07"
C1_CSI = "\x9b31m"
BIDI = "\u202egnp.exe"
HOSTILE = (CLEAR, LINK, TITLE, C1_CSI, BIDI)
ROLE = "intake_coordinator"
FORBIDDEN = ("\x1b", "\x9b", "\x9d", "\x07", "\u202e")


def hostile_case() -> dict[str, Any]:
    """The complete-packet referral with escape sequences in every free-text FHIR field: names,
    displays, descriptions (what the decision packet shows, masked or revealed)."""
    case = json.loads((PROJECT / "scenarios" / "cases" / "packet_complete.json").read_text())
    payloads = iter(HOSTILE * 100)

    def poison(value: Any) -> Any:
        if isinstance(value, dict):
            return {
                k: (f"{v}{next(payloads)}" if k in FREE_TEXT and isinstance(v, str) else poison(v))
                for k, v in value.items()
            }
        if isinstance(value, list):
            return [poison(v) for v in value]
        return value

    for entry in case["entry"]:
        resource = entry["resource"]
        if resource["resourceType"] == "Patient":
            resource["name"][0]["given"] = [f"Rosa{CLEAR}{LINK}"]
        entry["resource"] = poison(resource)
    return case


FREE_TEXT = {"family", "display", "description", "text"}


def test_terminal_safe_strips_every_kind_of_sequence() -> None:
    from carebound.cli._terminal import terminal_safe

    assert terminal_safe(f"a{CLEAR}b") == "ab"
    assert terminal_safe(f"a{LINK}b") == "aclickb"
    assert terminal_safe(f"a{TITLE}b") == "ab"
    assert terminal_safe(f"a{C1_CSI}b") == "ab"
    assert terminal_safe(f"a{BIDI}b") == "agnp.exeb"
    assert terminal_safe("a\x1bPq#0;2;0;0;0\x1b\\b\x00\x7f\x85\r") == "ab"
    assert terminal_safe("unterminated \x1b]8;;https://evil") == "unterminated "
    assert terminal_safe("tabs\tand\nlines stay, é 名前 too") == "tabs\tand\nlines stay, é 名前 too"


def test_cli_output_carries_no_terminal_control(env: str, make_runner: Any) -> None:
    """`carebound show` (masked and revealed), inbox, status, audit and runs, in rich and JSON
    form, print no escape sequence, C1 control or bidi override from the case's FHIR fields."""
    from carebound.tools.connectors import WorldSpec

    case = hostile_case()
    runner = make_runner()
    world = WorldSpec.from_bundles(case, None)
    run = runner.start("packet_builder", case, requester="sam", world=world)
    assert run.pending is not None, run.status
    approval = run.pending.request.approval_id
    outputs = [
        run_cli("show", approval),
        run_cli("show", approval, "--reveal", "--reviewer", "casey", "--role", ROLE),
        run_cli("show", approval, "--json"),
        run_cli("inbox"),
        run_cli("status", run.run_id),
        run_cli("status", run.run_id, "--json"),
        run_cli("audit", run.run_id),
        run_cli("runs"),
    ]
    revealed = outputs[1]
    assert revealed.exit_code == 0, revealed.stderr
    assert "Rosa" in revealed.stdout  # the value itself is shown, only the control removed
    for result in outputs:
        printed = result.stdout + result.stderr
        for char in FORBIDDEN:
            assert char not in printed, (result, repr(char), printed)


def test_error_messages_carry_no_terminal_control(env: str, folder: Path) -> None:
    name = f"x{CLEAR}{LINK}{BIDI}.yaml"
    result = run_cli("run", str(folder / name))
    assert result.exit_code == ExitCode.BAD_INPUT
    for char in FORBIDDEN:
        assert char not in result.stderr, repr(result.stderr)


# -- command-line values -----------------------------------------------------------------------


def test_hostile_command_line_values_are_refused(
    env: str, make_runner: Any, demo_case: dict[str, Any], demo_world: Any, tmp_path: Path
) -> None:
    """A --set value nested 100,000 deep, and arguments holding bytes that are not UTF-8
    (Python hands them over as lone surrogates), exit 2 with a message; never 70."""
    run = make_runner().start("demo", demo_case, requester="sam", world=demo_world)
    assert run.pending is not None
    approval = run.pending.request.approval_id
    deep = "[" * 100_000 + "]" * 100_000
    edit = run_cli("edit", approval, "--reviewer", "casey", "--role", ROLE, "--set", f"note={deep}")
    assert edit.exit_code == ExitCode.BAD_INPUT, edit.stderr
    assert "--set note" in edit.stderr and "nested deeper" in edit.stderr
    case = tmp_path / "case.json"
    case.write_text(json.dumps(demo_case), encoding="utf-8")
    undecodable = [
        ("run", "--agent", "demo", "--case", str(case), "--requester", "sam\udcff"),
        ("show", "r\udcff-1"),
        ("status", "r\udcff"),
        ("audit", "r\udcff"),
        ("inbox", "--role", "\udcff"),
        ("approve", approval, "--reviewer", "casey", "--role", ROLE, "--note", "\udcff"),
    ]
    for args in undecodable:
        result = run_cli(*args)
        assert result.exit_code == ExitCode.BAD_INPUT, (args, result.exit_code, result.stderr)
        assert "is not UTF-8 text" in result.stderr, result.stderr


@pytest.mark.parametrize(
    ("old", "new", "needle"),
    [
        ("agent: demo", "agent: nobody", "unknown agent 'nobody'"),
        ("    role: intake_coordinator", "    role: billing_reviewer", "decisions[0]"),
        ("    reviewer: casey", "    reviewer: sam", "decisions[0]"),
    ],
    ids=["unknown-agent", "role-not-held", "own-run"],
)
def test_scenario_mistakes_are_bad_input(
    env: str, folder: Path, old: str, new: str, needle: str
) -> None:
    """Found by the long fuzz: a scenario naming an unknown agent exited 5 (not found), one
    whose scripted decision is refused exited 3; both are mistakes in the file: exit 2."""
    assert old in HELLO
    refused(scenario(folder, "s.yaml", HELLO.replace(old, new)), "s.yaml", needle)


def test_safe_console_on_a_real_terminal_keeps_only_its_own_styling() -> None:
    """On a terminal rich adds its own SGR styling; nothing else may reach it, in plain text,
    styled text or a table cell, and columns stay aligned (text is cleaned before layout)."""
    import io
    import re

    from rich.table import Table
    from rich.text import Text

    from carebound.cli._terminal import SafeConsole

    out = io.StringIO()
    console = SafeConsole(file=out, force_terminal=True, width=60, color_system="standard")
    table = Table("name", "value")
    for payload in HOSTILE:
        table.add_row(Text(f"a{payload}b", style="bold"), f"x{payload}y")
    console.print(table)
    console.print(Text.assemble(("left", "red"), f"mid{LINK}", ("right", "green")))
    console.print(f"plain {CLEAR} and [bold]markup[/bold] {TITLE}")
    printed = re.sub(r"\x1b\[[0-9;]*m", "", out.getvalue())  # rich's own styling
    for char in (*FORBIDDEN, "\x9c", "\x90"):
        assert char not in printed, (repr(char), printed)
    widths = {len(line) for line in printed.splitlines() if line.strip()}
    assert max(widths) <= 60


def test_deliver_refuses_unstorable_events_before_writing(
    make_runner: Any,
    redis_client: redis.Redis,
    key_prefix: str,
    demo_case: dict[str, Any],
    demo_world: Any,
) -> None:
    """An event payload nested 5,000 deep (was RecursionError) or holding a lone surrogate
    (was a serialisation error after the drive mark was written) is refused before any
    write; the waiting run still takes the real reply afterwards."""
    from carebound import Approve, CareboundError

    runner = make_runner()
    run = runner.start("demo", demo_case, requester="sam", world=demo_world)
    assert run.pending is not None
    hold = run.pending.request
    decision = Approve(reviewer="casey", role=ROLE, args_hash=hold.args_hash)
    assert runner.decide(hold.approval_id, decision).run.status == "waiting"
    match = f"request:{run.run_id}:11506-3"
    before = keys(redis_client, key_prefix)
    snapshot = {key: redis_client.dump(key) for key in before}
    for payload in ({"document": nested(5_000)}, {"document": "a\udc80"}, {"\ud800": 1}):
        with pytest.raises(CareboundError) as info:
            runner.deliver(match, payload)
        assert "event payload" in info.value.message and info.value.hint
        assert {key: redis_client.dump(key) for key in keys(redis_client, key_prefix)} == snapshot
    with pytest.raises(CareboundError):
        runner.deliver("request:\udc80", {"document": "progress note"})
    assert runner.deliver(match, {"document": "progress note"}) == [run.run_id]
    assert runner.get(run.run_id).status == "completed"
