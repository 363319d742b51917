"""The Ollama extractor through the real ``ollama`` client against a local replaying server.

Answers recorded from the server deploy/ollama builds, plus the failures a
served model has in practice: content that is not JSON, JSON outside the
schema, a 500 then success, a hang past the timeout, a refused connection.
Every case must end in a valid Extraction: the model's, or the lexicon's with
``fallback_reason`` saying why.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import msgspec
import pytest

from intelligence.extract.extraction import Extraction, label_for
from intelligence.extract.lexicon import LexiconExtractor
from intelligence.extract.ollama_extractor import OllamaExtractor, answer_schema, default_vocabulary
from tests.support import free_port
from tests.support.ollama_replay import OllamaReplay, Reply, chat_reply, recorded

pytestmark = pytest.mark.integration

MODEL = "marketlake-gemma3"
APPLE = "Apple shares jump after record iPhone sales beat estimates"
TESLA = "Tesla recalls 2 million cars over autopilot defect"


def _answer(**overrides: Any) -> str:
    base: dict[str, Any] = {
        "catalyst": "earnings", "sentiment": 0.5, "impact": "medium", "confidence": 0.7,
        "tickers": [], "macro_events": [],
    }  # fmt: skip
    return json.dumps({**base, **overrides})


def _extractor(url: str, **kw: Any) -> OllamaExtractor:
    kw.setdefault("retries", 2)
    kw.setdefault("timeout_s", 5.0)
    return OllamaExtractor(host=url, model=MODEL, backoff_s=0.0, **kw)


def _lexicon(text: str, tickers: Sequence[str] = ()) -> Extraction:
    return LexiconExtractor().extract(text, tickers)


def _assert_fell_back(ex: Extraction, text: str, code: str, tickers: Sequence[str] = ()) -> None:
    assert ex.extractor == "lexicon"
    assert ex.fallback_reason is not None and ex.fallback_reason.split(":")[0] == code
    assert msgspec.structs.replace(ex, fallback_reason=None) == _lexicon(text, tickers)


def test_recorded_answer_is_used_and_request_carries_schema_and_model() -> None:
    with OllamaReplay([Reply(200, recorded("chat_company_positive"))]) as server:
        ex = _extractor(server.url).extract(APPLE)
        sent = server.chats()
    assert ex.extractor == f"ollama:{MODEL}" and ex.fallback_reason is None
    # the recording: the tiny model said -0.6 "product" and named AAPL five times
    assert ex.sentiment == -0.6 and ex.label == label_for(-0.6) == "negative"
    assert ex.catalyst == "product" and ex.impact == "high" and ex.confidence == 0.8
    assert ex.tickers == ["AAPL"]
    assert len(sent) == 1
    body = sent[0]
    assert body["model"] == MODEL and body["stream"] is False
    assert body["format"] == answer_schema(default_vocabulary())
    assert body["options"]["temperature"] == 0 and "seed" in body["options"]
    assert body["options"]["num_predict"] > 0
    assert body["messages"][0]["role"] == "system"
    assert body["messages"][-1] == {"role": "user", "content": APPLE}


def test_callers_tickers_come_first_and_invented_ones_are_dropped() -> None:
    with OllamaReplay([Reply(200, recorded("chat_company_negative"))]) as server:
        ex = _extractor(server.url).extract(TESLA, ["TSLA", "XYZ"])
        sent = server.chats()
    assert ex.extractor == f"ollama:{MODEL}"
    assert ex.tickers == ["TSLA", "XYZ"]  # the model's AAPL is not mentioned: dropped
    assert "TSLA" in sent[0]["messages"][-1]["content"]


def test_tracked_tickers_the_text_does_not_mention_are_dropped() -> None:
    recording = recorded("chat_macro")  # a Fed headline; the model named AAPL, TSLA, GOOGL
    assert "AAPL" in recording["message"]["content"]
    with OllamaReplay([Reply(200, recording)]) as server:
        ex = _extractor(server.url).extract("Fed raises interest rates by half a point")
    assert ex.extractor == f"ollama:{MODEL}" and ex.tickers == []


def test_macro_events_keep_registry_names_only() -> None:
    event = {
        "kind": "monetary_policy", "severity": "high", "direction": -0.5,
        "regions": ["north_america", "atlantis"], "sectors": ["Financials", "Wizardry"],
        "commodities": ["crude_oil", "unobtainium"], "expected_duration": "months",
    }  # fmt: skip
    content = _answer(catalyst="macro", sentiment=-0.3, macro_events=[event])
    with OllamaReplay([chat_reply(content)]) as server:
        ex = _extractor(server.url).extract("Fed raises rates by half a point")
    assert ex.extractor == f"ollama:{MODEL}" and ex.catalyst == "macro"
    (m,) = ex.macro_events
    assert (m.kind, m.severity, m.direction, m.expected_duration) == (
        "monetary_policy", "high", -0.5, "months",
    )  # fmt: skip
    assert m.regions == ["north_america"] and m.sectors == ["Financials"]
    assert m.commodities == ["crude_oil"]


def test_not_json_is_retried_with_sampling_then_falls_back() -> None:
    with OllamaReplay([chat_reply("Sure! The sentiment is positive.")]) as server:
        extractor = _extractor(server.url, retries=2)
        ex = extractor.extract(APPLE)
        sent = server.chats()
    _assert_fell_back(ex, APPLE, "invalid_json")
    assert "Sure! The sentiment" in (ex.fallback_reason or "")
    assert len(sent) == 3  # one try and two retries
    seeds = [b["options"]["seed"] for b in sent]
    assert len(set(seeds)) == 3 and sent[0]["options"]["temperature"] == 0
    assert all(b["options"]["temperature"] > 0 for b in sent[1:])
    stats = extractor.stats()
    assert stats["calls"] == 1 and stats["attempts"] == 3 and stats["retries"] == 2
    assert stats["fallback:invalid_json"] == 1 and "ok" not in stats


@pytest.mark.parametrize(
    ("content", "where"),
    [
        (_answer(sentiment=3.0), "$.sentiment"),
        (_answer(catalyst="rumour"), "$.catalyst"),
        (_answer(confidence=-0.1), "$.confidence"),
        (_answer(tickers="AAPL"), "$.tickers"),
    ],
)
def test_schema_violations_fall_back_with_the_path(content: str, where: str) -> None:
    with OllamaReplay([chat_reply(content)]) as server:
        ex = _extractor(server.url, retries=1).extract(APPLE)
        assert len(server.chats()) == 2
    _assert_fell_back(ex, APPLE, "schema")
    assert where in (ex.fallback_reason or "")


def test_bad_answer_then_good_answer_uses_the_good_one() -> None:
    replies = [chat_reply(_answer(sentiment=7.0)), chat_reply(_answer(sentiment=0.4))]
    with OllamaReplay(replies) as server:
        extractor = _extractor(server.url)
        ex = extractor.extract(APPLE)
    assert ex.extractor == f"ollama:{MODEL}" and ex.sentiment == 0.4 and ex.label == "positive"
    assert extractor.stats()["attempt_failed:schema"] == 1


def test_server_error_then_success_is_retried() -> None:
    replies = [Reply(500, {"error": "llama runner process has terminated"}),
               Reply(200, recorded("chat_company_positive"))]  # fmt: skip
    with OllamaReplay(replies) as server:
        extractor = _extractor(server.url)
        ex = extractor.extract(APPLE)
        assert len(server.chats()) == 2
    assert ex.extractor == f"ollama:{MODEL}" and ex.fallback_reason is None
    assert extractor.stats()["attempt_failed:http_500"] == 1


def test_persistent_server_error_falls_back() -> None:
    with OllamaReplay([Reply(500, {"error": "out of memory"})]) as server:
        ex = _extractor(server.url, retries=1).extract(TESLA, ["TSLA"])
        assert len(server.chats()) == 2
    _assert_fell_back(ex, TESLA, "http_500", ["TSLA"])
    assert "out of memory" in (ex.fallback_reason or "")


def test_missing_model_is_not_retried() -> None:
    with OllamaReplay([Reply(404, {"error": f"model '{MODEL}' not found"})]) as server:
        ex = _extractor(server.url).extract(APPLE)
        assert len(server.chats()) == 1
    _assert_fell_back(ex, APPLE, "http_404")


def test_hanging_server_times_out_and_falls_back() -> None:
    with OllamaReplay([Reply(200, recorded("chat_company_positive"), delay_s=30)]) as server:
        ex = _extractor(server.url, timeout_s=0.5, retries=1).extract(APPLE)
        assert len(server.chats()) == 2
    _assert_fell_back(ex, APPLE, "timeout")


def test_refused_connection_falls_back() -> None:
    url = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    ex = _extractor(url, retries=1).extract(APPLE)
    _assert_fell_back(ex, APPLE, "connection_refused")


def test_answer_cut_off_by_the_token_cap_is_truncated() -> None:
    with OllamaReplay([chat_reply('{"catalyst":"earnings","sent', done_reason="length")]) as server:
        ex = _extractor(server.url, retries=0).extract(APPLE)
        assert len(server.chats()) == 1
    _assert_fell_back(ex, APPLE, "truncated")


def test_a_body_that_is_not_a_chat_response_falls_back() -> None:
    with OllamaReplay([Reply(200, b"<html>proxy login</html>")]) as server:
        ex = _extractor(server.url, retries=0).extract(APPLE)
    _assert_fell_back(ex, APPLE, "bad_response")


def test_breaker_stops_asking_a_dead_server() -> None:
    with OllamaReplay([Reply(503, {"error": "busy"})]) as server:
        extractor = _extractor(server.url, retries=0, breaker_after=2)
        results = [extractor.extract(APPLE) for _ in range(4)]
        assert len(server.chats()) == 2  # the third and fourth never reach the server
    assert [r.fallback_reason.split(":")[0] for r in results if r.fallback_reason] == [
        "http_503", "http_503", "unavailable", "unavailable",
    ]  # fmt: skip
    assert results[-1].fallback_reason == "unavailable: http_503"
    assert extractor.stats()["fallback:unavailable"] == 2


def test_breaker_closes_again_after_the_cooldown() -> None:
    now = [0.0]
    replies = [Reply(503, {"error": "busy"}), Reply(200, recorded("chat_company_positive"))]
    with OllamaReplay(replies) as server:
        extractor = _extractor(
            server.url, retries=0, breaker_after=1, breaker_cooldown_s=60, clock=lambda: now[0]
        )
        assert extractor.extract(APPLE).fallback_reason == "http_503: busy"
        assert extractor.extract(APPLE).fallback_reason == "unavailable: http_503"
        now[0] = 61.0
        ex = extractor.extract(APPLE)
    assert ex.extractor == f"ollama:{MODEL}"


def test_check_reports_server_and_model() -> None:
    with OllamaReplay([chat_reply(_answer())]) as server:
        assert _extractor(server.url).check() is None
        missing = OllamaExtractor(host=server.url, model="nope").check()
    assert missing is not None and "nope" in missing
    down = _extractor(f"http://127.0.0.1:{free_port()}").check()
    assert down is not None and "connection_refused" in down


# --- the CLI -------------------------------------------------------------------------------------


def _cli(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "orchestration.cli", *args],
        capture_output=True, text=True, env={**os.environ, **env}, timeout=300,
    )  # fmt: skip


def _dataset(tmp_path: Path) -> Path:
    path = tmp_path / "headlines.csv"
    path.write_text(f"label,text\npositive,{APPLE}\nnegative,{TESLA}\nneutral,Apple holds AGM\n")
    return path


def test_cli_eval_extraction_with_ollama(tmp_path: Path) -> None:
    replies = [Reply(200, recorded("chat_company_positive")), chat_reply("no json here")]
    with OllamaReplay(replies) as server:
        env = {"MARKETLAKE_OLLAMA_HOST": server.url, "MARKETLAKE_OLLAMA_MODEL": MODEL,
               "MARKETLAKE_OLLAMA_RETRIES": "0"}  # fmt: skip
        proc = _cli(env, "eval", "extraction", "--dataset", str(_dataset(tmp_path)),
                    "--extractor", "ollama", "--json", "--limit", "2")  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    assert out["extractor"] == f"ollama:{MODEL}" and out["n"] == 2
    stats = out["extractor_stats"]
    assert stats["calls"] == 2 and stats["ok"] == 1 and stats["fallback:invalid_json"] == 1
    # recorded answer (negative) for the positive headline, lexicon (negative) for the second
    assert out["confusion"][2][0] == 1 and out["confusion"][0][0] == 1


def test_cli_eval_extraction_without_a_server_exits_2(tmp_path: Path) -> None:
    dataset = _dataset(tmp_path)
    unset = _cli({"MARKETLAKE_OLLAMA_HOST": ""}, "eval", "extraction", "--dataset", str(dataset),
                 "--extractor", "ollama")  # fmt: skip
    assert unset.returncode == 2 and "MARKETLAKE_OLLAMA_HOST" in unset.stderr
    down = _cli({"MARKETLAKE_OLLAMA_HOST": f"http://127.0.0.1:{free_port()}"}, "eval",
                "extraction", "--dataset", str(dataset), "--extractor", "ollama")  # fmt: skip
    assert down.returncode == 2 and "does not answer" in down.stderr
