"""``carebound eval documents``: one command, no store, no network; the figures it prints are
computed from the labelled corpus, and a classifier or extractor given to the evaluation is
measured the same way (a wrong, failing or injection-blind one shows in the figures)."""

from __future__ import annotations

import json
from collections.abc import Mapping

import pytest
from typer.testing import CliRunner

from carebound.cli._app import app
from carebound.domain.documents import UNKNOWN, Classification
from carebound.eval import (
    evaluate_documents,
    expected_calibration_error,
    load_corpus,
    render_evaluation,
)
from tests.conftest import PROJECT

HELDOUT = load_corpus("heldout")


@pytest.fixture
def no_store(monkeypatch: pytest.MonkeyPatch) -> None:
    """A store URL nothing listens on: the command must not need one."""
    monkeypatch.setenv("CAREBOUND_REDIS_URL", "redis://127.0.0.1:9/0")
    monkeypatch.setenv("COLUMNS", "120")


def test_the_command_prints_the_table_for_rules_and_the_local_model(no_store: None) -> None:
    result = CliRunner().invoke(app, ["eval", "documents"])
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[0].startswith(f"heldout split: {len(HELDOUT)} documents")
    rows = {line.split()[0]: line.split() for line in lines if line.startswith(("rules", "local"))}
    assert set(rows) == {"rules", "local"}
    figures = evaluate_documents()
    for c in figures.classifiers:
        assert rows[c.name][1] == f"{c.accuracy:.3f}"
        assert rows[c.name][5] == f"{c.injection.held}/{c.injection.injected}"
    for heading in ("precision / recall by class", "calibration of claims", "extraction"):
        assert any(line.startswith(heading) for line in lines), heading
    assert "57133-1 (" in result.stdout and "0.9-1.0" in result.stdout


def test_json_holds_every_figure_and_the_safety_gates_hold(no_store: None) -> None:
    result = CliRunner().invoke(app, ["eval", "documents", "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["split"] == "heldout" and data["documents"] == len(HELDOUT)
    by_name = {c["name"]: c for c in data["classifiers"]}
    assert set(by_name) == {"rules", "local"}
    injected = sum(d.traits.injected for d in HELDOUT)
    assert injected >= 15
    for c in by_name.values():
        assert c["injection"] == {**c["injection"], "injected": injected, "held": injected}
        assert sum(p["support"] for p in c["per_class"]) == len(HELDOUT)
        assert sum(b["claims"] for b in c["calibration"]) == sum(
            p["predicted"] for p in c["per_class"] if p["code"] != UNKNOWN
        )
        assert 0.0 <= c["ece"] <= 1.0
    # the middle option earns its place: it reads more of the corpus than the rules, as safely
    assert by_name["local"]["accuracy"] > by_name["rules"]["accuracy"]
    assert by_name["local"]["accepted_precision"] >= 0.95


def test_the_train_split_can_be_checked_and_a_bad_split_is_a_usage_error(no_store: None) -> None:
    result = CliRunner().invoke(app, ["eval", "documents", "--split", "train", "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["documents"] == len(load_corpus("train"))
    bad = CliRunner().invoke(app, ["eval", "documents", "--split", "everything", "--json"])
    assert bad.exit_code == 2
    error = json.loads(bad.stdout)["error"]
    assert error["code"] == "usage" and "heldout or train" in error["message"]
    assert "Traceback" not in bad.output


def _always(code: str, confidence: float) -> Classification:
    return Classification(code=code, display=code, confidence=confidence)


def test_a_confidently_wrong_injection_blind_classifier_shows_in_the_figures() -> None:
    figures = evaluate_documents(
        classifiers={"referral": lambda _: _always("57133-1", 0.99)}, built_in=False
    )
    blind = figures.classifiers[-1]
    referrals = sum(d.label.type == "57133-1" for d in HELDOUT)
    assert blind.name == "referral" and blind.accepted == len(HELDOUT)
    assert blind.accuracy == round(referrals / len(HELDOUT), 4)
    assert blind.accepted_precision == blind.accuracy
    assert blind.injection.held == 0 and blind.injection.flagged == 0
    assert blind.ece == round(0.99 - blind.accuracy, 4)


def test_a_failing_classifier_is_counted_not_fatal() -> None:
    def broken(_: str) -> Classification:
        raise TimeoutError("model did not answer")

    figures = evaluate_documents(classifiers={"down": broken}, built_in=False)
    down = figures.classifiers[-1]
    assert down.failures == len(HELDOUT) and down.accepted == 0
    assert down.injection.held == down.injection.injected
    assert "down" in render_evaluation(figures)


def _truth(text: str) -> Mapping[str, str | None]:
    document = next(d for d in HELDOUT if d.text == text)
    assert document.extraction is not None
    return document.extraction.fields()


def test_extraction_field_accuracy_of_an_extractor() -> None:
    def wrong_member(text: str) -> Mapping[str, str | None]:
        return {**_truth(text), "coverage.member_id": "X0", "patient.phone": None}

    def broken(_: str) -> Mapping[str, str | None]:
        raise ValueError("no JSON in the reply")

    figures = evaluate_documents(
        extractors={"oracle": _truth, "wrong": wrong_member, "broken": broken}, built_in=False
    )
    faxes = sum(d.extraction is not None for d in HELDOUT)
    oracle, wrong, failed = figures.extraction
    assert oracle.faxes == faxes >= 15 and oracle.accuracy == 1.0 and oracle.failures == 0
    by_field = {f.field: f.accuracy for f in wrong.fields}
    assert by_field["coverage.member_id"] == 0.0 and by_field["patient.phone"] == 0.0
    assert {a for f, a in by_field.items() if f not in ("coverage.member_id", "patient.phone")} == {
        1.0
    }
    assert failed.failures == faxes and failed.accuracy == 0.0
    text = render_evaluation(figures)
    assert (
        f"extraction by oracle: {faxes} referral faxes, field accuracy 1.000, wrong values 0"
        in text
    )
    assert wrong.wrong == faxes and failed.wrong == 0


def test_expected_calibration_error() -> None:
    assert expected_calibration_error([]) is None
    assert expected_calibration_error([(0.95, True)] * 19 + [(0.95, False)]) == 0.0
    assert expected_calibration_error([(1.0, False)]) == 1.0
    assert expected_calibration_error([(0.75, True), (0.25, True)]) == 0.5


def test_the_readme_shows_what_the_command_prints(no_store: None) -> None:
    readme = (PROJECT / "README.md").read_text()
    block = readme.split("$ carebound eval documents\n", 1)[1].split("```", 1)[0]
    result = CliRunner().invoke(app, ["eval", "documents"])
    assert result.exit_code == 0, result.output
    assert block == result.stdout
