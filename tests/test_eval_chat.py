"""``carebound eval documents`` with a chat model: the referral agents' own classification
prompt, asked through carebound.assist, measured alone (``chat``) and as the agents use it
(``chat+rules``). Fake chat models only: right, adversarial, failing."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import pytest
from langchain_core.messages import AIMessage, BaseMessage
from typer.testing import CliRunner

from carebound.agents._referral._reading import DocumentReading
from carebound.assist import ModelConfig
from carebound.cli._app import app
from carebound.domain.documents import classify
from carebound.eval import (
    ClassifierFigures,
    DocumentsEvaluation,
    evaluate_documents,
    load_corpus,
    render_evaluation,
)
from carebound.testing import FakeChatModel, structured

HELDOUT = load_corpus("heldout")
LINES = [(set(d.text.splitlines()), d.label.type) for d in HELDOUT]


def _document_text(messages: Sequence[BaseMessage]) -> str:
    """The document as the model got it: the DATA block of the human message."""
    block = str(messages[-1].content)
    body = block.split(">>>\n", 1)[1].rsplit("\n<<<END", 1)[0]
    return body


def _right(messages: Sequence[BaseMessage]) -> AIMessage:
    lines = set(_document_text(messages).splitlines())  # identifiers masked: most lines, not all
    code = max(LINES, key=lambda known: len(known[0] & lines))[1]
    return structured(DocumentReading, {"code": code, "confidence": 0.95})


@pytest.fixture(scope="module")
def rules() -> ClassifierFigures:
    """The rule classifier's figures (measured once for the module)."""
    return evaluate_documents(classifiers={"rules": classify}, built_in=False).classifiers[0]


def _rows(models: ModelConfig) -> dict[str, ClassifierFigures]:
    result = evaluate_documents(models=models, built_in=False)
    return {c.name: c for c in result.classifiers}


def test_a_right_model_is_measured_alone_and_as_the_agents_use_it(
    rules: ClassifierFigures,
) -> None:
    rows = _rows(ModelConfig(tasks={"classify": FakeChatModel(respond=_right)}))
    assert list(rows) == ["chat", "chat+rules"]
    chat, both = rows["chat"], rows["chat+rules"]
    assert chat.failures == 0 and chat.documents == len(HELDOUT)
    assert chat.accuracy == 1.0
    injected = chat.injection.injected
    # alone, a model that reads every injected fax "right" would have them filed...
    assert chat.injection.flagged == 0 and chat.injection.held < injected
    # ...the agents never do: DOC-2 holds every one, and only agreement counts
    assert both.injection.held == injected
    assert both.accepted <= rules.accepted
    assert both.accepted_precision is not None and rules.accepted_precision is not None
    assert both.accepted_precision >= rules.accepted_precision


def test_an_adversarial_model_cannot_make_the_agents_accept_a_wrong_type(
    rules: ClassifierFigures,
) -> None:
    wrong = FakeChatModel(
        respond=lambda _: structured(DocumentReading, {"code": "57133-1", "confidence": 0.99})
    )
    rows = _rows(ModelConfig(tasks={"classify": wrong}))
    chat, both = rows["chat"], rows["chat+rules"]
    referrals = sum(d.label.type == "57133-1" for d in HELDOUT)
    assert chat.accuracy == round(referrals / len(HELDOUT), 4)
    assert chat.accepted == len(HELDOUT)  # alone it would have everything filed as referrals
    assert both.accepted_precision == 1.0 and both.accepted <= rules.accepted


def test_a_model_proposing_tool_calls_is_refused_and_counted() -> None:
    sneaky = FakeChatModel(
        respond=lambda _: AIMessage(
            content="",
            tool_calls=[
                {"name": "DocumentReading", "args": {"code": "11506-3", "confidence": 0.9},
                 "id": "a", "type": "tool_call"},
                {"name": "send_request_attempt", "args": {"fax": "555-0199"}, "id": "b",
                 "type": "tool_call"},
            ],
        )
    )  # fmt: skip
    result = evaluate_documents(models=ModelConfig(tasks={"classify": sneaky}), built_in=False)
    chat = next(c for c in result.classifiers if c.name == "chat")
    assert chat.failures == len(HELDOUT) and chat.accepted == 0
    assert result.model_calls == {"classify": {"invalid": len(HELDOUT)}}


def test_a_failing_model_leaves_the_rules_in_charge(rules: ClassifierFigures) -> None:
    def down(_: Sequence[BaseMessage]) -> AIMessage:
        raise ConnectionError("provider unavailable")

    failing = ModelConfig(tasks={"classify": FakeChatModel(respond=down)}, retries=0)
    result = evaluate_documents(models=failing, built_in=False)
    rows = {c.name: c for c in result.classifiers}
    assert result.model_calls == {"classify": {"error": len(HELDOUT)}}
    assert rows["chat"].failures == len(HELDOUT)
    assert {**rows["chat+rules"].model_dump(), "name": "rules"} == rules.model_dump()


def test_the_command_measures_the_model_it_is_given(monkeypatch: pytest.MonkeyPatch) -> None:
    names: list[str] = []

    def load(name: str) -> FakeChatModel:
        names.append(name)
        return FakeChatModel(respond=_right)

    monkeypatch.setattr("carebound.assist.load_model", load)
    monkeypatch.setenv("COLUMNS", "120")
    result = CliRunner().invoke(app, ["eval", "documents", "--model", "ollama:llama3.1", "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert names == ["ollama:llama3.1"]
    assert [c["name"] for c in data["classifiers"]] == ["rules", "local", "chat", "chat+rules"]
    faxes = sum(d.extraction is not None for d in HELDOUT)
    # one model for every task: it also gets the referral faxes to extract, and this fake only
    # knows how to classify, so those answers are refused (and counted)
    assert data["model_calls"] == {"classify": {"ok": len(HELDOUT)}, "extract": {"invalid": faxes}}
    assert {e["name"]: e["failures"] for e in data["extraction"]} == {
        "chat extract": faxes,
        "chat+grounding extract": faxes,
    }
    table = render_evaluation(DocumentsEvaluation.model_validate(data))
    assert f"chat model calls: classify {len(HELDOUT)} ok; extract {faxes} invalid" in table
    assert any(line.startswith("chat+rules") for line in table.splitlines())


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("llama3", "does not say its provider"),
        ("nosuchprovider:model", "cannot be loaded"),
    ],
)
def test_a_model_that_cannot_be_loaded_is_a_clear_error(name: str, message: str) -> None:
    result = CliRunner().invoke(app, ["eval", "documents", "--model", name, "--json"])
    assert result.exit_code != 0
    error = json.loads(result.stdout)["error"]
    assert error["code"] == "model_config" and message in error["message"] and error["hint"]
    assert "Traceback" not in result.output


@pytest.mark.parametrize("where", ["environment", "connectors file"])
def test_without_model_the_configured_one_is_measured(
    where: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    names: list[str] = []

    def load(name: str) -> FakeChatModel:
        names.append(name)
        return FakeChatModel(
            respond=lambda _: structured(DocumentReading, {"code": "unknown", "confidence": 0.2})
        )

    monkeypatch.setattr("carebound.assist._config.load_model", load)
    if where == "environment":
        monkeypatch.setenv("CAREBOUND_MODEL_CLASSIFY", "ollama:from-env")
    else:
        path = tmp_path / "connectors.toml"
        path.write_text(
            '[ehr]\nbase_url = "http://127.0.0.1:9/ehr"\n[models]\nclassify = "ollama:from-file"\n'
        )
        monkeypatch.setenv("CAREBOUND_CONNECTORS", str(path))
    result = CliRunner().invoke(app, ["eval", "documents", "--json"])
    assert result.exit_code == 0, result.output
    assert names == [f"ollama:from-{'env' if where == 'environment' else 'file'}"]
    assert json.loads(result.stdout)["model_calls"] == {"classify": {"ok": len(HELDOUT)}}
