"""Train carebound's local document classifier on the corpus's ``train`` split only.

Run from the repository root after ``scripts/make_document_corpus.py``:
``python scripts/train_local_model.py`` writes ``carebound/domain/documents/local_model.json``
(``--out FILE`` writes elsewhere). Deterministic: a test retrains and compares with the file.
The held-out split is never read here; ``carebound eval documents`` measures on it.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from carebound.domain.documents._local_model import train
from carebound.eval._corpus import corpus_sha256, load_corpus

DEFAULT_OUT = (
    Path(__file__).resolve().parents[1] / "carebound" / "domain" / "documents" / "local_model.json"
)


def main(argv: list[str] | None = None) -> int:
    """Train on the train split and write the model."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="file to write")
    args = parser.parse_args(argv)
    documents = load_corpus("train")
    model = train(
        [d.text for d in documents],
        [d.label.type for d in documents],
        trained_on={
            "corpus_sha256": corpus_sha256(),
            "split": "train",
            "documents": len(documents),
        },
    )
    args.out.write_text(model.to_json(), encoding="utf-8")
    print(f"trained on {len(documents)} documents of the train split; wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
