"""Scoring an extractor against labelled financial text.

Pure functions: metrics over label sequences, loaders for the public
financial sentiment sets (read in place, never copied into the repository),
and :func:`evaluate`, which runs an extractor over a dataset and times it.

Loaders return :class:`LabelledText` rows with a three-way label. Sets that
publish a continuous score in [-1, 1] (SemEval-2017 Task 5, FiQA 2018) are
cut with the same thresholds as the extractors' own output
(:func:`~intelligence.extract.extraction.label_for`: positive above 0.1,
negative below -0.1), so the comparison is like for like.
"""

from __future__ import annotations

import csv
import io
import json
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from intelligence.extract.extraction import LABELS, Extractor, Label, label_for

DatasetFormat = Literal["semeval", "fiqa", "csv", "lines"]


@dataclass(frozen=True, slots=True)
class LabelledText:
    """One evaluation example: the text, its gold label, and the entities it is about."""

    text: str
    label: Label
    targets: tuple[str, ...] = ()
    score: float | None = None  # the gold continuous score, where the set has one


# --------------------------------------------------------------------------- metrics


@dataclass(frozen=True, slots=True)
class ClassScores:
    """Precision, recall and F1 of one class; ``support`` is its gold count."""

    precision: float
    recall: float
    f1: float
    support: int


@dataclass(frozen=True, slots=True)
class Report:
    """Every figure of one evaluation, ready for a table or JSON."""

    n: int
    accuracy: float
    macro_f1: float
    per_class: dict[str, ClassScores]
    labels: tuple[str, ...]
    confusion: list[list[int]]  # rows: gold, columns: predicted, in ``labels`` order
    docs_per_s: float | None = None
    extractor: str = ""
    dataset: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        return {
            "dataset": self.dataset,
            "extractor": self.extractor,
            "n": self.n,
            "accuracy": self.accuracy,
            "macro_f1": self.macro_f1,
            "per_class": {
                k: {"precision": v.precision, "recall": v.recall, "f1": v.f1, "support": v.support}
                for k, v in self.per_class.items()
            },
            "labels": list(self.labels),
            "confusion": self.confusion,
            "docs_per_s": self.docs_per_s,
            **self.extra,
        }


def confusion_matrix(
    gold: Sequence[str], pred: Sequence[str], labels: Sequence[str] = LABELS
) -> list[list[int]]:
    """Counts with gold labels as rows and predictions as columns, in ``labels`` order."""
    if len(gold) != len(pred):
        raise ValueError(f"{len(gold)} gold labels but {len(pred)} predictions")
    index = {label: i for i, label in enumerate(labels)}
    m = [[0] * len(labels) for _ in labels]
    for g, p in zip(gold, pred, strict=True):
        if g not in index or p not in index:
            raise ValueError(f"label {g if g not in index else p!r} is not one of {list(labels)}")
        m[index[g]][index[p]] += 1
    return m


def accuracy(gold: Sequence[str], pred: Sequence[str]) -> float:
    """Share of predictions equal to the gold label (0.0 for no examples)."""
    if len(gold) != len(pred):
        raise ValueError(f"{len(gold)} gold labels but {len(pred)} predictions")
    if not gold:
        return 0.0
    return sum(g == p for g, p in zip(gold, pred, strict=True)) / len(gold)


def per_class_scores(
    gold: Sequence[str], pred: Sequence[str], labels: Sequence[str] = LABELS
) -> dict[str, ClassScores]:
    """Precision, recall and F1 per class; a zero denominator gives 0.0 (as scikit-learn)."""
    m = confusion_matrix(gold, pred, labels)
    out: dict[str, ClassScores] = {}
    for i, label in enumerate(labels):
        tp = m[i][i]
        predicted = sum(row[i] for row in m)
        support = sum(m[i])
        precision = tp / predicted if predicted else 0.0
        recall = tp / support if support else 0.0
        f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
        out[label] = ClassScores(precision, recall, f1, support)
    return out


def macro_f1(gold: Sequence[str], pred: Sequence[str], labels: Sequence[str] = LABELS) -> float:
    """Unweighted mean of the per-class F1 over ``labels`` (every class counts the same)."""
    scores = per_class_scores(gold, pred, labels)
    return sum(s.f1 for s in scores.values()) / len(labels)


def report(
    gold: Sequence[str], pred: Sequence[str], labels: Sequence[str] = LABELS, **kwargs: Any
) -> Report:
    """All metrics at once; ``kwargs`` fill the descriptive fields of :class:`Report`."""
    return Report(
        n=len(gold),
        accuracy=accuracy(gold, pred),
        macro_f1=macro_f1(gold, pred, labels),
        per_class=per_class_scores(gold, pred, labels),
        labels=tuple(labels),
        confusion=confusion_matrix(gold, pred, labels),
        **kwargs,
    )


# --------------------------------------------------------------------------- loaders


def _check_label(raw: str, where: str) -> Label:
    label = raw.strip().lower()
    for known in LABELS:  # narrows the string to the Label it equals
        if label == known:
            return known
    raise ValueError(f"{where}: label {raw!r} is not one of {list(LABELS)}")


def load_semeval_headlines(path: Path) -> list[LabelledText]:
    """SemEval-2017 Task 5 subtask 2: a JSON list of {id, company, title, sentiment}."""
    data = json.loads(path.read_text(encoding="utf-8"))
    return parse_semeval_headlines(data)


def parse_semeval_headlines(data: Any) -> list[LabelledText]:
    """The SemEval headline items, labelled with :func:`label_for` on their score."""
    if not isinstance(data, list):
        raise ValueError("SemEval headlines: expected a JSON list of items")
    out = []
    for i, item in enumerate(data):
        try:
            score = float(item["sentiment"])
            text = str(item["title"])
        except (KeyError, TypeError, ValueError) as exc:
            raise ValueError(f"SemEval headlines: item {i} lacks title/sentiment") from exc
        company = str(item.get("company") or "").strip()
        out.append(LabelledText(text, label_for(score), (company,) if company else (), score))
    return out


def load_fiqa_posts(path: Path) -> list[LabelledText]:
    """FiQA 2018 task 1 posts: {id: {sentence, info: [{sentiment_score, target, ...}]}}."""
    data = json.loads(path.read_text(encoding="utf-8"))
    return parse_fiqa_posts(data)


def parse_fiqa_posts(data: Any) -> list[LabelledText]:
    """The FiQA posts, labelled on the first ``info`` entry's score, in key order."""
    if not isinstance(data, dict):
        raise ValueError("FiQA posts: expected a JSON object keyed by id")
    out = []
    for key, post in data.items():
        try:
            info = post["info"][0]
            score = float(info["sentiment_score"])
            text = str(post["sentence"])
        except (KeyError, IndexError, TypeError, ValueError) as exc:
            raise ValueError(f"FiQA posts: post {key} lacks sentence/info/sentiment_score") from exc
        target = str(info.get("target") or "").strip()
        out.append(LabelledText(text, label_for(score), (target,) if target else (), score))
    return out


def parse_csv(text: str) -> list[LabelledText]:
    """A CSV with a header holding ``label`` and ``text`` columns (any order, others ignored)."""
    reader = csv.DictReader(io.StringIO(text))
    fields = [f.strip().lower() for f in reader.fieldnames or []]
    if "label" not in fields or "text" not in fields:
        raise ValueError(f"CSV: expected a header with label and text, got {reader.fieldnames}")
    reader.fieldnames = fields
    return [
        LabelledText(row["text"], _check_label(row["label"] or "", f"CSV line {n}"))
        for n, row in enumerate(reader, 2)
    ]


def parse_lines(text: str) -> list[LabelledText]:
    """``sentence@label`` lines (the Financial PhraseBank format); blank lines skipped.

    The label is after the last ``@``, so sentences may contain ``@`` themselves.
    """
    out = []
    for n, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        sentence, sep, label = line.rpartition("@")
        if not sep:
            raise ValueError(f"line {n}: expected sentence@label")
        out.append(LabelledText(sentence.strip(), _check_label(label, f"line {n}")))
    return out


def detect_format(path: Path) -> DatasetFormat:
    """Which loader fits a file: JSON list (SemEval), JSON object (FiQA), CSV, or lines."""
    text = _read_text(path)
    head = text.lstrip()[:1]
    if head in "[{" and head:
        try:
            data = json.loads(text)
        except json.JSONDecodeError:
            data = None
        if isinstance(data, list):
            return "semeval"
        if isinstance(data, dict):
            return "fiqa"
    first = next((line for line in text.splitlines() if line.strip()), "")
    header = {c.strip().strip('"').lower() for c in first.split(",")}
    if {"label", "text"} <= header:
        return "csv"
    if first.rpartition("@")[2].strip().lower() in LABELS:
        return "lines"
    raise ValueError(
        f"{path}: not a known dataset format (SemEval JSON list, FiQA JSON object, "
        "CSV with a label,text header, or sentence@label lines)"
    )


def _read_text(path: Path) -> str:
    """UTF-8 (with or without BOM); Latin-1 as a fallback (the PhraseBank files use it)."""
    raw = path.read_bytes()
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        return raw.decode("latin-1")


_PARSERS: dict[DatasetFormat, Callable[[str], list[LabelledText]]] = {
    "semeval": lambda t: parse_semeval_headlines(json.loads(t)),
    "fiqa": lambda t: parse_fiqa_posts(json.loads(t)),
    "csv": parse_csv,
    "lines": parse_lines,
}


def load_dataset(path: Path, fmt: DatasetFormat | None = None) -> list[LabelledText]:
    """Load any supported set; the format is detected from the content unless given."""
    return _PARSERS[fmt or detect_format(path)](_read_text(path))


# --------------------------------------------------------------------------- evaluation


def predict(extractor: Extractor, rows: Iterable[LabelledText]) -> tuple[list[str], float]:
    """The extractor's labels for ``rows`` and the documents per second it took."""
    rows = list(rows)
    start = time.perf_counter()
    pred: list[str] = [extractor.extract(r.text, r.targets).label for r in rows]
    elapsed = time.perf_counter() - start
    return pred, (len(rows) / elapsed if elapsed > 0 else float("inf"))


def evaluate(extractor: Extractor, rows: Sequence[LabelledText], dataset: str = "") -> Report:
    """Run ``extractor`` over ``rows``; the report includes documents per second."""
    pred, rate = predict(extractor, rows)
    gold = [r.label for r in rows]
    return report(gold, pred, docs_per_s=rate, extractor=extractor.name, dataset=dataset)
