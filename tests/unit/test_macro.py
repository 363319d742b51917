"""Macro event detection: hand-written headlines for every kind, and the rules file.

Each headline is one a reader would classify without hesitation; the
assertions check the kind, the sign of the direction (for commodities the
sign of the *price* move), the regions, sectors and commodities in the
registry's vocabulary, and that company news yields nothing.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from intelligence.extract.extraction import MACRO_KINDS, MacroEvent
from intelligence.extract.lexicon import _FILES, LexiconExtractor
from intelligence.extract.macro import (
    MACRO_YML,
    MacroDetector,
    Role,
    detect_macro_events,
    forms,
    inflections,
    load_rules,
    parse_rules,
)
from intelligence.registry import load_registry
from streaming.refdata import load_securities

pytestmark = pytest.mark.unit


def only(text: str) -> MacroEvent:
    events = detect_macro_events(text)
    assert len(events) == 1, (text, events)
    return events[0]


def sign(x: float) -> int:
    return (x > 0) - (x < 0)


# text, kind, sign of direction, regions that must be named, commodities, sectors
CASES: list[tuple[str, str, int, set[str], list[str], set[str]]] = [
    # monetary policy: a hike is negative for the economy, a cut positive, a hold 0
    ("Fed raises interest rates by 75 basis points", "monetary_policy", -1, {"north_america"}, [], set()),
    ("ECB unexpectedly cuts rates", "monetary_policy", 1, {"europe"}, [], set()),
    ("Bank of Japan keeps policy unchanged", "monetary_policy", 0, {"japan"}, [], set()),
    ("PBoC cuts reserve requirement ratio", "monetary_policy", 1, {"china"}, [], set()),
    ("Bank of England delivers surprise rate hike", "monetary_policy", -1, {"europe"}, [], set()),
    # inflation: hotter is negative, cooler positive
    ("US inflation hotter than expected", "inflation", -1, {"north_america"}, [], set()),
    ("US consumer prices rise more than expected in March", "inflation", -1, {"north_america"}, [], set()),
    ("Euro zone inflation cools to 2.4%", "inflation", 1, {"europe"}, [], set()),
    # growth
    ("China GDP grows 5.3% in first quarter", "growth", 1, {"china"}, [], set()),
    ("Euro zone economy contracts", "growth", -1, {"europe"}, [], set()),
    ("Germany slips into recession", "growth", -1, {"europe"}, [], set()),
    ("US economy climbs out of recession", "growth", 1, {"north_america"}, [], set()),
    ("China factory activity shrinks for third month", "growth", -1, {"china"}, [], set()),
    # employment
    ("US payrolls beat forecasts as hiring accelerates", "employment", 1, {"north_america"}, [], set()),
    ("US jobless claims jump to highest since 2021", "employment", -1, {"north_america"}, [], set()),
    ("US unemployment rate falls to 3.5%", "employment", 1, {"north_america"}, [], set()),
    # trade policy: the target of a measure is its region
    ("US slaps new tariffs on Chinese goods", "trade_policy", -1, {"china"}, [], set()),
    ("US lifts tariffs on Mexican steel", "trade_policy", 1, {"latin_america"}, [], set()),
    ("US and China reach trade deal", "trade_policy", 1, {"north_america", "china"}, [], set()),
    ("US tightens chip export curbs on China", "trade_policy", -1, {"china"}, [],
     {"Information Technology"}),
    # geopolitical
    ("Russia invades Ukraine", "geopolitical", -1, {"europe"}, [], set()),
    ("US imposes new sanctions on Iran", "geopolitical", -1, {"middle_east_africa"}, [], set()),
    ("Israel and Hamas agree ceasefire", "geopolitical", 1, {"middle_east_africa"}, [], set()),
    # commodity supply: the direction is the sign of the PRICE move
    ("OPEC cuts output", "commodity_supply", 1, set(), ["crude_oil"], set()),
    ("Saudi Arabia extends oil production cuts", "commodity_supply", 1, set(), ["crude_oil"], set()),
    ("Oil prices slump on supply glut", "commodity_supply", -1, set(), ["crude_oil"], set()),
    ("Crude oil tumbles after US inventories build", "commodity_supply", -1, set(), ["crude_oil"], set()),
    ("Natural gas prices soar in Europe", "commodity_supply", 1, {"europe"}, ["natural_gas"], set()),
    ("Jet fuel prices soar", "commodity_supply", 1, set(), ["jet_fuel"], set()),
    ("Copper slides on weak China demand", "commodity_supply", -1, set(), ["copper"], set()),
    # currency: the sign of the currency's move
    ("Dollar rallies to 20-year high", "currency", 1, {"north_america"}, [], set()),
    ("Yen slumps to record low against the dollar", "currency", -1, {"japan"}, [], set()),
    # broad regulation needs a sector
    ("Regulators tighten capital rules for banks", "regulation", -1, set(), [], {"Financials"}),
    ("EU unveils crackdown on big tech", "regulation", -1, {"europe"}, [],
     {"Information Technology", "Communication Services"}),
]  # fmt: skip


@pytest.mark.parametrize(("text", "kind", "direction", "regions", "commodities", "sectors"), CASES)
def test_headlines(
    text: str,
    kind: str,
    direction: int,
    regions: set[str],
    commodities: list[str],
    sectors: set[str],
) -> None:
    e = only(text)
    assert e.kind == kind
    assert sign(e.direction) == direction, e
    assert regions <= set(e.regions), e
    assert e.commodities == commodities, e
    assert sectors <= set(e.sectors), e
    assert e.evidence, "every event says which words made it"


def test_every_kind_is_covered() -> None:
    assert {c[1] for c in CASES} == set(MACRO_KINDS) - {"other"}


def test_commodity_price_and_supply_directions() -> None:
    # supply down -> price up; supply up -> price down; demand down -> price down
    assert only("OPEC cuts output").direction > 0
    assert only("US crude output rises to record").direction < 0
    assert only("China oil demand slumps").direction < 0
    assert only("Oil jumps after pipeline attack").direction > 0
    # a commodity move and a supply cut in one headline agree
    e = only("Oil prices surge as OPEC cuts output")
    assert e.direction == 1.0 and e.commodities == ["crude_oil"]


@pytest.mark.parametrize(
    "text",
    [
        "Apple beats earnings",
        "Apple revenue growth slows",
        "Microsoft shares jump on cloud growth",
        "Tesla cuts prices in China",
        "Tesla cuts output at Shanghai plant",
        "Nvidia hits record high",
        "Amazon to cut 10,000 jobs",
        "Boeing deliveries fall",
        "Netflix raises subscription prices",
        "JPMorgan profit rises on higher interest rates",
        "Coca-Cola sales growth slows",
        "Intel to cut output of older chips",
        "Barclays raises 603 million pounds from share sale",
        "Wood Group wins multi-million dollar contract with BP",
        "Berkshire raises oil bet with Kinder Morgan stake",
        "WPP, World's Largest Ad Agency, Reports Strong 2015 Growth",
        "Disney's streaming price war heats up",
        "",
    ],
)
def test_company_news_gives_no_macro_event(text: str) -> None:
    assert detect_macro_events(text) == []


def test_negation_cancels_the_move() -> None:
    e = only("Fed holds rates, no hike")
    assert (e.kind, e.direction, e.regions) == ("monetary_policy", 0.0, ["north_america"])
    assert only("Fed won't cut rates this year, Powell says").direction == 0.0
    e = only("ECB rules out rate cuts")
    assert (e.direction, e.regions) == (0.0, ["europe"])
    assert only("No recession in sight").direction == 0.0
    # without the negator the same words move
    assert only("Fed cuts rates this year").direction == 1.0


def test_severity_from_intensity_words() -> None:
    assert only("Fed raises rates").severity == "medium"
    assert only("Fed delivers surprise emergency rate cut").severity == "high"
    assert only("Federal Reserve cuts rates by a quarter point").severity == "low"
    assert only("Oil plunges").severity == "high"
    assert only("Russia invades Ukraine").severity == "high"


def test_expected_duration_by_kind() -> None:
    assert only("Fed raises rates").expected_duration == "quarters"
    assert only("Oil prices slump").expected_duration == "weeks"
    assert only("US slaps new tariffs on Chinese goods").expected_duration == "months"


def test_several_events_in_one_text() -> None:
    events = detect_macro_events(
        "Oil surges to highest since 2008 as Middle East tensions escalate"
    )
    assert [(e.kind, sign(e.direction)) for e in events] == [
        ("commodity_supply", 1),
        ("geopolitical", -1),
    ]
    assert events[0].severity == "high"  # "highest since 2008"
    assert all("middle_east_africa" in e.regions for e in events)


def test_evidence_is_the_matched_words_as_written() -> None:
    assert only("OPEC cuts output").evidence == ["OPEC cuts"]
    assert only("US tightens chip export curbs on China").evidence == ["tightens chip export curbs"]


def test_deterministic() -> None:
    text = "Yen slumps to record low as BoJ holds rates"
    assert detect_macro_events(text) == detect_macro_events(text)
    assert [e.kind for e in detect_macro_events(text)] == ["currency", "monetary_policy"]


# --------------------------------------------------------------------------- the rules file


def test_vocabulary_is_the_registry_and_securities_vocabulary() -> None:
    registry = load_registry()
    rules = load_rules()
    assert set(rules.region_order) == set(registry.regions)
    assert set(rules.commodity_order) == set(registry.commodities)
    assert set(rules.sector_order) <= {s.sector for s in load_securities()}
    for entry in rules.phrases.values():
        if entry.topic is not None:
            assert set(entry.topic.regions) <= set(registry.regions)
            assert set(entry.topic.commodities) <= set(registry.commodities)


def test_prefilter_never_refuses_a_topic() -> None:
    detector = MacroDetector()
    for key, entry in detector.rules.phrases.items():
        if entry.role in (Role.TOPIC, Role.COMMODITY):
            assert detector.might_match(" ".join(key) + " surges"), key


@given(st.text(alphabet="abcdefghilnorstuy", min_size=1, max_size=9))
def test_inflections_invert_forms(word: str) -> None:
    # the prefilter and the phrase index rely on this: every base a word may
    # hide is one whose inflections include the word
    for base in forms(word):
        assert word in inflections(base)


def test_extractor_fills_macro_events_and_keeps_the_tone() -> None:
    lex = LexiconExtractor()
    plain = LexiconExtractor()
    plain._macro = MacroDetector(parse_rules(_MINIMAL))  # knows no topic at all
    for text, *_ in CASES:
        with_macro = lex.extract(text)
        assert with_macro.macro_events == detect_macro_events(text)
        without = plain.extract(text)
        assert without.macro_events == []
        # macro detection adds events; the sentiment reading is untouched
        assert (with_macro.sentiment, with_macro.label, with_macro.evidence) == (
            without.sentiment,
            without.label,
            without.evidence,
        )


def test_extractor_uses_a_macro_file_next_to_custom_lists(tmp_path: Path) -> None:
    for stem in [*_FILES, "catalysts"]:
        (tmp_path / f"{stem}.txt").write_text("# empty\n", encoding="utf-8")
    assert LexiconExtractor(tmp_path).extract("OPEC cuts output").macro_events  # bundled rules
    (tmp_path / "macro.yml").write_text(_MINIMAL, encoding="utf-8")
    assert LexiconExtractor(tmp_path).extract("OPEC cuts output").macro_events == []


_MINIMAL = """
version: 1
pair_gap: 1
negation_scope: 3
clause_words: [as]
amount_words: [million]
places: {europe: [europe]}
target_markers: [on]
sectors: {Financials: [banks]}
commodities: {copper: [copper]}
negators: [no]
intensity: {up: [surprise], down: [slightly]}
moves: {up: [rise], down: [fall], hold: [hold]}
fillers: [the]
kinds:
  growth:
    duration: quarters
    topics:
      - phrases: [gdp]
"""


def test_minimal_rules_work() -> None:
    detector = MacroDetector(parse_rules(_MINIMAL))
    (e,) = detector.detect("Europe GDP rises")
    assert (e.kind, e.direction, e.regions) == ("growth", 1.0, ["europe"])
    (c,) = detector.detect("Copper falls")
    assert (c.kind, c.direction, c.commodities) == ("commodity_supply", -1.0, ["copper"])
    # the YAML words "no" and "on" stay words
    assert detector.rules.phrases[("no",)].role is Role.NEGATOR
    assert "on" in detector.rules.target_markers


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ("negators: [no, rise]", "both"),  # a phrase with two roles
        ("kinds: {growth: {duration: quarters, topics: [{phrases: [gdp], regions: [mars]}]}}",
         "unknown"),
        ("kinds: {weather: {duration: days, topics: [{phrases: [storm]}]}}", "weather"),
        ("moves: {up: [rise], down: [fall], hold: [hold], strong: [soar]}", "not moves"),
    ],
)  # fmt: skip
def test_bad_rules_are_refused(change: str, message: str) -> None:
    key = change.split(":", 1)[0]
    lines = _MINIMAL.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith(f"{key}:"))
    end = start + 1
    while end < len(lines) and lines[end].startswith(" "):
        end += 1
    text = "\n".join([*lines[:start], change, *lines[end:]])
    with pytest.raises(ValueError, match=message):
        parse_rules(text)


def test_bundled_rules_file_exists() -> None:
    assert MACRO_YML.is_file()
