"""The ``eval`` commands: score intelligence components against labelled public data.

A group of their own so that further evaluations (beyond ``extraction``) sit
beside it; the Ollama extractor's set-up check lives here too.
"""

from __future__ import annotations

import json
import sys
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from orchestration.cli.cli_shared import console, err
from settings import get_settings

eval_app = typer.Typer(help="Score intelligence components against labelled public data.")


class ExtractorName(StrEnum):
    lexicon = "lexicon"
    ollama = "ollama"


@eval_app.command("extraction")
def eval_extraction(
    dataset: Annotated[
        Path,
        typer.Option(
            help="Labelled set: SemEval headlines or FiQA posts (JSON), a CSV with a "
            "label,text header, or sentence@label lines.",
            exists=True,
            dir_okay=False,
        ),
    ],
    extractor: Annotated[
        ExtractorName, typer.Option(help="Which extractor to score.")
    ] = ExtractorName.lexicon,
    as_json: Annotated[bool, typer.Option("--json", help="Print the figures as JSON.")] = False,
    limit: Annotated[
        int | None,
        typer.Option(min=1, help="Score only the first N examples (a served model is slow)."),
    ] = None,
) -> None:
    """Score a sentiment extractor: accuracy, macro-F1, per-class P/R/F1, confusion, docs/s.

    The format is detected from the file. SemEval and FiQA publish scores in
    [-1, 1]; they are labelled positive above 0.1 and negative below -0.1,
    the same cut the extractors apply to their own scores. ``--extractor ollama``
    uses the server of MARKETLAKE_OLLAMA_HOST and model MARKETLAKE_OLLAMA_MODEL;
    documents where it fell back to the lexicon are counted by reason.
    """
    from intelligence.extract.evaluation import detect_format, evaluate, load_dataset
    from intelligence.extract.extraction import Extractor
    from intelligence.extract.lexicon import LexiconExtractor

    chosen: Extractor = LexiconExtractor()
    if extractor is ExtractorName.ollama:
        chosen = _ollama_extractor()
    try:
        fmt = detect_format(dataset)
        rows = load_dataset(dataset, fmt)
    except (OSError, ValueError) as exc:
        err.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(2) from None
    if not rows:
        err.print(f"[red]error:[/red] no labelled examples in {dataset}")
        raise typer.Exit(2)
    rows = rows[:limit] if limit else rows
    result = evaluate(chosen, rows, dataset=str(dataset))
    stats: dict[str, int] = getattr(chosen, "stats", dict)()
    fallbacks = {k.split(":", 1)[1]: v for k, v in stats.items() if k.startswith("fallback:")}
    if as_json:
        extra = {"extractor_stats": stats} if stats else {}
        sys.stdout.write(json.dumps({**result.as_dict(), "format": fmt, **extra}) + "\n")
        return
    console.print(
        f"{result.extractor} on {dataset.name} ({fmt}, {result.n:,} documents): "
        f"accuracy {result.accuracy:.3f}, macro-F1 {result.macro_f1:.3f}, "
        f"{result.docs_per_s or 0:,.{0 if (result.docs_per_s or 0) >= 10 else 2}f} documents/s"
    )
    if stats:
        console.print(
            f"model answered {stats.get('ok', 0):,} of {stats.get('calls', 0):,}; "
            f"fallbacks to lexicon: {fallbacks or 'none'}"
        )
    t = Table(title="per class")
    for col in ("class", "precision", "recall", "F1", "support"):
        t.add_column(col, justify="left" if col == "class" else "right")
    for label, s in result.per_class.items():
        t.add_row(label, f"{s.precision:.3f}", f"{s.recall:.3f}", f"{s.f1:.3f}", str(s.support))
    console.print(t)
    c = Table(title="confusion (rows: gold, columns: predicted)")
    c.add_column("gold")
    for label in result.labels:
        c.add_column(label, justify="right")
    for label, row in zip(result.labels, result.confusion, strict=True):
        c.add_row(label, *(str(v) for v in row))
    console.print(c)


def _ollama_extractor() -> Any:
    """The Ollama extractor from settings; exit 2 with the reason if it cannot be used."""
    from intelligence.extract.ollama_extractor import OllamaExtractor

    settings = get_settings()
    if not settings.ollama_host:
        err.print(
            "[red]error:[/red] --extractor ollama needs a server: set MARKETLAKE_OLLAMA_HOST "
            "(e.g. http://127.0.0.1:11434) and MARKETLAKE_OLLAMA_MODEL"
        )
        raise typer.Exit(2)
    ollama_extractor = OllamaExtractor.from_settings(settings)
    problem = ollama_extractor.check()
    if problem:
        err.print(f"[red]error:[/red] {problem}")
        raise typer.Exit(2)
    return ollama_extractor
