"""A small local document-type classifier: no LLM, no network, no third-party model.

A multinomial logistic regression over hashed features of the text: words, word pairs and
character 4-grams of words (which survive OCR damage such as ``Hlstory`` or ``exom``). The
weights ship inside the package (``local_model.json``: int8 per class with a scale, base64; never
pickle) and were trained by ``scripts/train_local_model.py`` on the ``train`` split of
``carebound/eval/corpus`` only; ``carebound eval documents`` measures it on the held-out split.

``classify_local(text)`` returns the same ``Classification`` as the rule classifier: the LOINC
code (or ``unknown``), the model's probability for it as the confidence, the words that weighed
most for it as evidence, and the same injection handling (flagged lines are dropped before
reading; the confidence is capped at ``INJECTION_CONFIDENCE_CAP``).

Training is plain Python arithmetic in a fixed order, so the same corpus gives the same weights
on every machine (a test retrains and compares).
"""

from __future__ import annotations

import base64
import json
import math
import random
import re
import unicodedata
import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources

from ._classify import (
    DOCUMENT_TYPES,
    INJECTION_CONFIDENCE_CAP,
    UNKNOWN,
    Classification,
)
from ._injection import detect_injection

FORMAT = "carebound-local-document-classifier/1"
#: The classes, in the order of the stored weights.
CLASSES: tuple[str, ...] = (*(t.code for t in DOCUMENT_TYPES), UNKNOWN)
_DISPLAY = {t.code: t.display for t in DOCUMENT_TYPES} | {UNKNOWN: "Unknown document type"}
BUCKETS = 1 << 13
_WORD = re.compile(r"[a-z]{2,}")
_MAX_EVIDENCE = 6
_WEIGHTS_FILE = "local_model.json"


def _bucket(feature: str) -> int:
    return zlib.crc32(feature.encode()) % BUCKETS


def _words(text: str) -> list[str]:
    folded = unicodedata.normalize("NFKD", text.lower())
    return _WORD.findall("".join(c for c in folded if not unicodedata.combining(c)))


def features(text: str) -> dict[int, float]:
    """The text's hashed features (bucket -> value), L2-normalised; empty for no words."""
    words = _words(text)
    found: set[int] = set()
    for i, word in enumerate(words):
        found.add(_bucket("w:" + word))
        if i:
            found.add(_bucket(f"b:{words[i - 1]} {word}"))
        padded = f"<{word}>"
        found.update(_bucket("c:" + padded[j : j + 4]) for j in range(len(padded) - 3))
    if not found:
        return {}
    value = 1.0 / math.sqrt(len(found))
    return dict.fromkeys(sorted(found), value)


@dataclass(frozen=True)
class LocalModel:
    """Weights of the classifier: ``weights[bucket][class]`` and one bias per class."""

    weights: tuple[tuple[float, ...], ...]
    bias: tuple[float, ...]
    trained_on: dict[str, object]

    def probabilities(self, text: str) -> list[float]:
        """P(class | text) for each of ``CLASSES``."""
        scores = list(self.bias)
        for bucket, value in features(text).items():
            row = self.weights[bucket]
            for c in range(len(CLASSES)):
                scores[c] += row[c] * value
        top = max(scores)
        exps = [math.exp(s - top) for s in scores]
        total = sum(exps)
        return [e / total for e in exps]

    def to_json(self) -> str:
        """The stored form: per class, int8 weights scaled to the class's largest, base64."""
        scales, columns = [], []
        for c in range(len(CLASSES)):
            column = [row[c] for row in self.weights]
            scale = max(abs(w) for w in column) / 127 or 1.0
            scales.append(round(scale, 9))
            raw = bytes(round(w / scales[-1]) & 0xFF for w in column)
            columns.append(base64.b64encode(zlib.compress(raw, 9)).decode())
        return (
            json.dumps(
                {
                    "format": FORMAT,
                    "classes": list(CLASSES),
                    "buckets": BUCKETS,
                    "trained_on": self.trained_on,
                    "bias": [round(b, 6) for b in self.bias],
                    "scales": scales,
                    "weights": columns,
                },
                indent=1,
                sort_keys=True,
            )
            + "\n"
        )

    @classmethod
    def from_json(cls, text: str) -> LocalModel:
        """Read the stored form back (weights as stored: dequantised int8)."""
        data = json.loads(text)
        if data.get("format") != FORMAT or tuple(data["classes"]) != CLASSES:
            raise ValueError(f"not a {FORMAT} model for classes {CLASSES}")
        columns = []
        for scale, packed in zip(data["scales"], data["weights"], strict=True):
            raw = zlib.decompress(base64.b64decode(packed))
            columns.append([(b - 256 if b > 127 else b) * scale for b in raw])
        rows = tuple(tuple(col[i] for col in columns) for i in range(data["buckets"]))
        return cls(weights=rows, bias=tuple(data["bias"]), trained_on=data["trained_on"])


def train(
    texts: Sequence[str],
    labels: Sequence[str],
    *,
    trained_on: dict[str, object],
    epochs: int = 12,
    learning_rate: float = 0.6,
    l2: float = 1e-4,
    seed: int = 7,
) -> LocalModel:
    """Fit the weights by stochastic gradient descent on (text, label) pairs, in a seeded
    order. Texts are read as ``classify_local`` reads them (flagged lines dropped)."""
    data = [(features(_readable(t)), CLASSES.index(y)) for t, y in zip(texts, labels, strict=True)]
    k = len(CLASSES)
    weights = [[0.0] * k for _ in range(BUCKETS)]
    bias = [0.0] * k
    order = list(range(len(data)))
    rng = random.Random(seed)
    for epoch in range(epochs):
        rng.shuffle(order)
        rate = learning_rate / (1 + epoch)
        for n in order:
            x, y = data[n]
            scores = list(bias)
            for bucket, value in x.items():
                row = weights[bucket]
                for c in range(k):
                    scores[c] += row[c] * value
            top = max(scores)
            exps = [math.exp(s - top) for s in scores]
            total = sum(exps)
            grads = [e / total - (c == y) for c, e in enumerate(exps)]
            for c in range(k):
                bias[c] -= rate * grads[c]
            for bucket, value in x.items():
                row = weights[bucket]
                for c in range(k):
                    row[c] -= rate * (grads[c] * value + l2 * row[c])
    stored = LocalModel(tuple(map(tuple, weights)), tuple(bias), trained_on).to_json()
    return LocalModel.from_json(stored)  # what ships is the quantised model


def _readable(text: str) -> str:
    report = detect_injection(text)
    if not report.flagged:
        return text
    lines = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    return "\n".join(line for n, line in enumerate(lines) if n not in report.flagged_lines)


@lru_cache(maxsize=1)
def shipped_model() -> LocalModel:
    """The model that ships with carebound (read once per process)."""
    stored = resources.files(__package__).joinpath(_WEIGHTS_FILE).read_text(encoding="utf-8")
    return LocalModel.from_json(stored)


def classify_local(text: str, model: LocalModel | None = None) -> Classification:
    """Classify a document's text with the local model (``shipped_model()`` by default).

    Deterministic. The confidence is the model's probability of the type it names; a text
    carrying instructions aimed at software or staff is read without them, flagged, and capped.
    """
    model = model or shipped_model()
    report = detect_injection(text)
    readable = _readable(text) if report.flagged else text
    probabilities = model.probabilities(readable)
    best = max(range(len(CLASSES)), key=lambda c: probabilities[c])
    code = CLASSES[best]
    confidence = min(0.99, probabilities[best])
    if report.flagged:
        confidence = min(confidence, INJECTION_CONFIDENCE_CAP)
    return Classification(
        code=code,
        display=_DISPLAY[code],
        confidence=round(confidence, 2),
        evidence=_evidence(model, readable, best),
        injection_suspected=report.flagged,
        injection=report if report.findings else None,
    )


def _evidence(model: LocalModel, text: str, best: int) -> list[str]:
    """The words of the text whose own weight pulls hardest towards class ``best``."""
    pull: dict[str, float] = {}
    for word in _words(text):
        if word not in pull:
            row = model.weights[_bucket("w:" + word)]
            pull[word] = row[best] - max(w for c, w in enumerate(row) if c != best)
    ranked = sorted((w for w in pull if pull[w] > 0), key=lambda w: (-pull[w], w))
    return ranked[:_MAX_EVIDENCE]


__all__ = [
    "BUCKETS",
    "CLASSES",
    "LocalModel",
    "classify_local",
    "features",
    "shipped_model",
    "train",
]
