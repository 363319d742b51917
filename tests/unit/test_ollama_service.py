"""deploy/ollama without building anything: the Modelfile it renders and the errors it gives."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from deploy.ollama.ollama_service import MODELFILE_TEMPLATE, OLLAMA_VERSION, OllamaService
from deploy.process import ServiceError

pytestmark = pytest.mark.unit


def test_modelfile_has_gemma_turns_stop_token_and_cap(tmp_path: Path) -> None:
    svc = OllamaService(home=tmp_path / "home", cache=tmp_path / "cache")
    text = svc.modelfile(Path("/models/g.gguf"))
    assert "FROM /models/g.gguf\n" in text and "@GGUF@" not in text
    assert "<start_of_turn>user" in text and "<start_of_turn>model" in text
    assert 'PARAMETER stop "<end_of_turn>"' in text
    assert "PARAMETER num_predict" in text and "PARAMETER temperature 0" in text
    assert MODELFILE_TEMPLATE.read_text().count("@GGUF@") == 1


def test_modelfile_refuses_a_path_with_spaces(tmp_path: Path) -> None:
    svc = OllamaService(home=tmp_path / "home", cache=tmp_path / "cache")
    with pytest.raises(ServiceError, match="whitespace"):
        svc.modelfile(Path("/my models/g.gguf"))


def test_missing_go_is_a_clear_error(tmp_path: Path) -> None:
    svc = OllamaService(home=tmp_path / "home", cache=tmp_path / "cache", go="no-such-go-binary")
    with pytest.raises(ServiceError, match=r"Go \(1.24 or newer\) is needed"):
        svc.install()


def test_failed_build_names_its_log_and_leaves_no_install(tmp_path: Path) -> None:
    fake_go = tmp_path / "go"
    fake_go.write_text("#!/bin/sh\necho 'cgo: C compiler exploded' >&2\nexit 3\n")
    fake_go.chmod(fake_go.stat().st_mode | stat.S_IEXEC)
    svc = OllamaService(home=tmp_path / "home", cache=tmp_path / "cache", go=str(fake_go))
    with pytest.raises(ServiceError) as info:
        svc.install()
    message = str(info.value)
    assert str(svc.build_log) in message and "C compiler exploded" in message
    assert "exit 3" in message
    assert not svc.binary.exists() and not (svc.bin_dir / ".complete").exists()
    assert list((tmp_path / "cache" / "ollama").glob("bin.*")) == []  # staging removed


def test_layout_is_outside_home_and_versioned(tmp_path: Path) -> None:
    svc = OllamaService(home=tmp_path / "home", cache=tmp_path / "cache", port=12345)
    assert svc.binary == tmp_path / "cache" / "ollama" / OLLAMA_VERSION / "bin" / "ollama"
    assert svc.models_dir == tmp_path / "home" / "models"
    assert svc.url == "http://127.0.0.1:12345"
    st = svc.status()
    assert st["state"] == "stopped" and st["installed"] is False
    assert svc.healthy() is False


def test_create_model_needs_a_running_server(tmp_path: Path) -> None:
    svc = OllamaService(home=tmp_path / "home", cache=tmp_path / "cache", port=9)
    svc.install_model = lambda: tmp_path / "g.gguf"  # type: ignore[method-assign]
    with pytest.raises(ServiceError, match="not running"):
        svc.create_model("m")
