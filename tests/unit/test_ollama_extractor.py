"""The Ollama extractor's schema, prompt and answer validation, without a server.

The schema sent as ``format`` and the Structs the answer is decoded with must
stay in step with extraction.py's vocabularies and the registry's names; these
tests fail the moment one side changes without the other.
"""

from __future__ import annotations

import json
from typing import Any

import msgspec
import pytest

from intelligence.extract.extraction import (
    CATALYSTS,
    DURATIONS,
    IMPACTS,
    MACRO_KINDS,
    SEVERITIES,
    Extraction,
    MacroEvent,
)
from intelligence.extract.lexicon import LexiconExtractor
from intelligence.extract.ollama_extractor import (
    _EXAMPLES,
    MAX_CHARS,
    SYSTEM_PROMPT,
    OllamaExtractor,
    Vocabulary,
    _Answer,
    _decode,
    _Failure,
    _MacroAnswer,
    answer_schema,
    build_messages,
    default_vocabulary,
    extractor_from_settings,
)
from intelligence.registry import load_registry
from settings import Settings
from tests.support.ollama_replay import FIXTURES

pytestmark = pytest.mark.unit


@pytest.fixture(scope="module")
def schema() -> dict[str, Any]:
    return answer_schema(default_vocabulary())


def _refs(node: Any) -> list[str]:
    if isinstance(node, dict):
        return [node["$ref"]] if "$ref" in node else [r for v in node.values() for r in _refs(v)]
    if isinstance(node, list):
        return [r for v in node for r in _refs(v)]
    return []


def test_schema_vocabularies_are_extractions(schema: dict[str, Any]) -> None:
    props = schema["properties"]
    event = props["macro_events"]["items"]["properties"]
    assert sorted(props["catalyst"]["enum"]) == sorted(CATALYSTS)
    assert sorted(props["impact"]["enum"]) == sorted(IMPACTS)
    assert sorted(event["kind"]["enum"]) == sorted(MACRO_KINDS)
    assert sorted(event["severity"]["enum"]) == sorted(SEVERITIES)
    assert sorted(event["expected_duration"]["enum"]) == sorted(DURATIONS)
    assert "description" not in schema and "title" not in schema


def test_schema_names_are_the_registrys(schema: dict[str, Any]) -> None:
    reg = load_registry()
    props = schema["properties"]
    event = props["macro_events"]["items"]["properties"]
    assert props["tickers"]["items"]["enum"] == list(reg.tickers)
    assert event["regions"]["items"]["enum"] == list(reg.regions)
    assert event["commodities"]["items"]["enum"] == list(reg.commodities)
    assert set(event["sectors"]["items"]["enum"]) == {c.sector for c in reg.companies}


def test_schema_bounds_and_shape(schema: dict[str, Any]) -> None:
    props = schema["properties"]
    assert (props["sentiment"]["minimum"], props["sentiment"]["maximum"]) == (-1.0, 1.0)
    assert (props["confidence"]["minimum"], props["confidence"]["maximum"]) == (0.0, 1.0)
    event = props["macro_events"]["items"]
    assert (
        event["properties"]["direction"]["minimum"],
        event["properties"]["direction"]["maximum"],
    ) == (-1.0, 1.0)
    # every field is required and nothing else is allowed: the grammar makes the model write all
    assert set(schema["required"]) == set(props) and schema["additionalProperties"] is False
    assert (
        set(event["required"]) == set(event["properties"])
        and event["additionalProperties"] is False
    )
    assert _refs(schema) == []  # self-contained
    json.dumps(schema)  # JSON-able as sent


def test_answer_fields_are_extraction_fields() -> None:
    """Everything the model answers has a place in the Extraction (nothing is asked for nothing)."""
    assert set(_Answer.__struct_fields__) <= set(Extraction.__struct_fields__)
    assert set(_MacroAnswer.__struct_fields__) <= set(MacroEvent.__struct_fields__)


def test_empty_vocabulary_leaves_names_free() -> None:
    props = answer_schema(Vocabulary())["properties"]
    assert props["tickers"]["items"] == {"type": "string"}


def test_prompt_examples_are_valid_answers() -> None:
    for _, answer in _EXAMPLES:
        decoded = _decode(json.dumps(answer), "stop")
        assert decoded.sentiment == answer["sentiment"]
    for name in CATALYSTS:
        assert name in SYSTEM_PROMPT


def test_messages_end_with_the_text_and_the_callers_tickers() -> None:
    msgs = build_messages("Apple beats", ["AAPL"])
    assert msgs[0]["role"] == "system" and msgs[-1]["role"] == "user"
    assert msgs[-1]["content"].startswith("Apple beats") and "AAPL" in msgs[-1]["content"]
    long = build_messages("x" * (MAX_CHARS * 2))
    assert len(long[-1]["content"]) < MAX_CHARS + 10


@pytest.mark.parametrize(
    ("content", "code", "where"),
    [
        ("not json at all", "invalid_json", ""),
        ('{"catalyst":"earnings"', "invalid_json", ""),
        ('{"catalyst":"earnings","sentiment":3.0,"impact":"high","confidence":0.5,'
         '"tickers":[],"macro_events":[]}', "schema", "$.sentiment"),
        ('{"catalyst":"rumour","sentiment":0.3,"impact":"high","confidence":0.5,'
         '"tickers":[],"macro_events":[]}', "schema", "$.catalyst"),
        ('{"catalyst":"other","sentiment":0.3,"impact":"high","confidence":1.5,'
         '"tickers":[],"macro_events":[]}', "schema", "$.confidence"),
        ('{"catalyst":"other","sentiment":0.3,"impact":"high","confidence":0.5,'
         '"tickers":[]}', "schema", "macro_events"),
        ('{"catalyst":"other","sentiment":0.3,"impact":"high","confidence":0.5,'
         '"tickers":[],"macro_events":[],"label":"positive"}', "schema", "label"),
    ],
)  # fmt: skip
def test_bad_answers_fail_with_a_reason(content: str, code: str, where: str) -> None:
    with pytest.raises(_Failure) as info:
        _decode(content, "stop")
    assert info.value.code == code
    assert info.value.reason.startswith(f"{code}: ") and where in info.value.reason


def test_cut_off_answer_is_truncated_not_invalid() -> None:
    with pytest.raises(_Failure) as info:
        _decode('{"catalyst":"other","sentiment":0.', "length")
    assert info.value.code == "truncated"


def test_recorded_answers_validate() -> None:
    files = sorted(FIXTURES.glob("chat_*.json"))
    assert files
    for path in files:
        content = json.loads(path.read_text())["response"]["message"]["content"]
        answer = _decode(content, "stop")
        assert -1.0 <= answer.sentiment <= 1.0


def test_factory_picks_from_settings() -> None:
    assert isinstance(extractor_from_settings(Settings(extractor="lexicon")), LexiconExtractor)
    assert isinstance(
        extractor_from_settings(Settings(extractor="ollama", ollama_host=None)), LexiconExtractor
    )
    chosen = extractor_from_settings(
        Settings(
            extractor="ollama", ollama_host="http://127.0.0.1:9", ollama_model="m", ollama_retries=1
        )
    )
    assert isinstance(chosen, OllamaExtractor)
    assert chosen.name == "ollama:m" and chosen.retries == 1
    assert chosen.vocabulary.tickers == load_registry().tickers


def test_answers_decode_into_frozen_values() -> None:
    answer = msgspec.json.decode(
        json.dumps(_EXAMPLES[0][1]), type=_Answer
    )  # the Struct decodes what the examples show
    assert answer.tickers == ["MSFT"]
