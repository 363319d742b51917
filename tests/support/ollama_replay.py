"""A local HTTP server that speaks enough of Ollama's API to replay recorded answers.

Built on :class:`deploy.recorded_http.ReplayServer`. The real
``ollama`` client talks to it over real sockets, so the tests exercise
what breaks in practice (a refused connection, a read timeout, a 500, a body
that is not what the schema says) without a model. ``/api/chat`` answers come
from a queue (the last one repeats); every request body is kept so a test can
assert what the client sent (model, messages, the ``format`` schema, options).

The recordings under ``tests/fixtures/ollama/`` came from the server that
``deploy/ollama`` builds; ``python -m tests.support.ollama_replay URL DIR``
records them again against a running server.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any

from deploy.recorded_http import Handler, ReplayServer, Request, Response

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "ollama"


@dataclass(frozen=True)
class Reply:
    """One answer: status, JSON-able body (or raw bytes), and a delay before sending it."""

    status: int = 200
    body: Any = None
    delay_s: float = 0.0

    def payload(self) -> bytes:
        if isinstance(self.body, bytes):
            return self.body
        return json.dumps(self.body).encode()


@dataclass(frozen=True)
class Received:
    """A request the server got: method, path and the decoded JSON body (None if not JSON)."""

    method: str
    path: str
    body: Any


def recorded(name: str) -> dict[str, Any]:
    """A recorded ``/api/chat`` response from ``tests/fixtures/ollama/<name>.json``."""
    data: dict[str, Any] = json.loads((FIXTURES / f"{name}.json").read_text())["response"]
    return data


def chat_reply(
    content: str, *, model: str = "marketlake-gemma3", done_reason: str = "stop"
) -> Reply:
    """A well-formed ``/api/chat`` response whose message content is ``content``."""
    return Reply(
        200,
        {
            "model": model,
            "created_at": "2026-01-02T03:04:05.000000Z",
            "message": {"role": "assistant", "content": content},
            "done_reason": done_reason,
            "done": True,
        },
    )


def _json(reply: Reply) -> Response:
    headers = {"Content-Type": "application/json; charset=utf-8"}
    return Response(reply.status, reply.payload(), headers, delay_s=reply.delay_s)


def _received(request: Request) -> Received:
    try:
        body = json.loads(request.body) if request.body else None
    except ValueError:
        body = None
    return Received(request.method, request.path, body)


@dataclass
class OllamaReplay:
    """Ollama's ``/api/version``, ``/api/tags`` and ``/api/chat`` on a :class:`ReplayServer`.

    ``chat`` replies are served in turn (the last repeats); a callable gets the
    request and answers it. A context manager, like the server underneath.
    """

    chat: Sequence[Reply | Callable[[Received], Reply]] = ()
    models: tuple[str, ...] = ("marketlake-gemma3",)

    def __post_init__(self) -> None:
        self._server = ReplayServer()
        self._server.add("/api/version", _json(Reply(200, {"version": "0.11.4"})))
        tags = [{"name": f"{m}:latest", "model": f"{m}:latest"} for m in self.models]
        self._server.add("/api/tags", _json(Reply(200, {"models": tags})))
        replies = [self._handler(item) for item in self.chat] or [
            _json(Reply(404, {"error": "not found"}))
        ]
        self._server.add("/api/chat", *replies)

    @staticmethod
    def _handler(item: Reply | Callable[[Received], Reply]) -> Response | Handler:
        if isinstance(item, Reply):
            return _json(item)
        return lambda request: _json(item(_received(request)))

    def __enter__(self) -> OllamaReplay:
        self._server.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._server.stop()

    @property
    def url(self) -> str:
        return self._server.base_url

    @property
    def received(self) -> list[Received]:
        """Every request received, oldest first, with its JSON body decoded."""
        return [_received(r) for r in self._server.requests()]

    def chats(self) -> list[Any]:
        """Bodies of the ``/api/chat`` requests received, oldest first."""
        return [_received(r).body for r in self._server.requests("/api/chat")]


# --- recording ---------------------------------------------------------------------------------

RECORD_TEXTS = {
    "chat_company_positive": ("Apple shares jump after record iPhone sales beat estimates", ()),
    "chat_company_negative": ("Tesla recalls 2 million cars over autopilot defect", ("TSLA",)),
    "chat_macro": ("Fed raises interest rates by half a point to fight inflation", ()),
}


def record(host: str, directory: Path, model: str = "marketlake-gemma3") -> list[Path]:
    """POST the extractor's own requests to a real server and keep request and response."""
    import httpx

    from intelligence.extract.ollama_extractor import (
        KEEP_ALIVE,
        NUM_PREDICT,
        SEED,
        answer_schema,
        build_messages,
        default_vocabulary,
    )

    directory.mkdir(parents=True, exist_ok=True)
    written = []
    with httpx.Client(base_url=host, timeout=300, trust_env=False) as client:
        version = client.get("/api/version").json()["version"]
        for name, (text, tickers) in RECORD_TEXTS.items():
            request = {
                "model": model,
                "messages": build_messages(text, tickers),
                "format": answer_schema(default_vocabulary()),
                "options": {"temperature": 0.0, "seed": SEED, "num_predict": NUM_PREDICT},
                "keep_alive": KEEP_ALIVE,
                "stream": False,
            }
            response = client.post("/api/chat", json=request)
            response.raise_for_status()
            path = directory / f"{name}.json"
            path.write_text(
                json.dumps(
                    {"server_version": version, "text": text, "tickers": list(tickers),
                     "response": response.json()},
                    indent=2,
                )
                + "\n"
            )  # fmt: skip
            written.append(path)
    return written


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit("usage: python -m tests.support.ollama_replay OLLAMA_URL OUT_DIR")
    for p in record(sys.argv[1], Path(sys.argv[2])):
        print(p)
