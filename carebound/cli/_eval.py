"""``carebound eval documents``: the document classifiers measured on the labelled corpus
(:mod:`carebound.eval`). Needs no store and no network."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

from carebound.cli._group import JsonGroup
from carebound.cli._session import print_json

if TYPE_CHECKING:
    from carebound.assist import ModelConfig

eval_app = typer.Typer(
    cls=JsonGroup,
    name="eval",
    help="Measure carebound's document intelligence on its labelled corpus (no store needed).",
    no_args_is_help=True,
)

_SPLITS = ("heldout", "train")


@eval_app.command("documents")
def documents(
    split: Annotated[
        str,
        typer.Option(
            "--split",
            metavar="heldout|train",
            help="Which part of the corpus: 'heldout' (never seen by the local model; the "
            "default) or 'train' (what it learned from: a check, not a measure).",
        ),
    ] = "heldout",
    model: Annotated[
        str | None,
        typer.Option(
            "--model",
            metavar="PROVIDER:MODEL",
            help="Also measure this chat model (e.g. ollama:llama3.1; needs the models extra "
            "and the provider's package). Default: the one CAREBOUND_MODEL or "
            "CAREBOUND_MODEL_CLASSIFY names, else the connectors file's [models], if any.",
        ),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON document.")] = False,
) -> None:
    """Accuracy, per-class precision and recall, calibration, injection holds and extraction
    field accuracy of the rule classifier, the local model and a configured chat model on the
    labelled corpus."""
    if split not in _SPLITS:
        raise typer.BadParameter(
            f"{split!r} is not a split of the corpus; use heldout or train", param_hint="--split"
        )
    from carebound.eval import evaluate_documents, render_evaluation

    models = _configured_models(model)
    result = evaluate_documents(split="train" if split == "train" else "heldout", models=models)
    if as_json:
        print_json(result.model_dump(mode="json"))
        return
    typer.echo(render_evaluation(result))


def _configured_models(name: str | None) -> ModelConfig:
    """``--model``, else the environment's models, else the connectors file's ``[models]``
    (the order a Runner uses); an empty config when none names one."""
    from carebound.assist import ModelConfig, load_model

    if name:
        return ModelConfig(default=load_model(name))
    models = ModelConfig.from_env()
    if models.configured:
        return models
    from carebound.tools.connectors.config import (
        configured_connectors_file,
        load_connectors_config,
    )

    path = configured_connectors_file()
    table = load_connectors_config(path).models if path is not None else None
    return table.assist_models() if table is not None else models


def register(app: typer.Typer) -> None:
    """Add ``eval`` to the app."""
    app.add_typer(eval_app)
