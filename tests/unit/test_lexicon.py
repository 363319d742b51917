"""The lexicon extractor: hand-written sentences for every rule it claims.

Each case is a sentence a person would label without hesitation; the
assertions check the label (and, where the rule is about strength, the
ordering of scores), the evidence that drove it, and the catalyst.
"""

from __future__ import annotations

from pathlib import Path

import msgspec
import pytest

from intelligence.extract.extraction import (
    CATALYSTS,
    Extraction,
    Extractor,
    label_for,
)
from intelligence.extract.lexicon import (
    _FILES,
    LEXICON_DIR,
    LexiconExtractor,
    forms,
    load_lexicon,
    tokenize,
)

pytestmark = pytest.mark.unit


@pytest.fixture(scope="module")
def lex() -> LexiconExtractor:
    return LexiconExtractor()


def label(lex: LexiconExtractor, text: str) -> str:
    return lex.extract(text).label


# --------------------------------------------------------------------------- direction rules


@pytest.mark.parametrize(
    ("text", "expected", "evidence"),
    [
        # the six rules named in the issue
        ("Quarterly profit rose 12%", "positive", "quarterly profit rose"),
        ("Profit fell", "negative", "profit fell"),
        ("Losses widened in the third quarter", "negative", "losses widened"),
        ("Losses narrowed", "positive", "losses narrowed"),
        ("The bank cuts 4,000 jobs", "negative", "cuts jobs"),
        ("The retailer cuts costs", "positive", "cuts costs"),
        # good metrics: up is good, down is bad
        ("Revenue jumped", "positive", "revenue jumped"),
        ("Sales declined", "negative", "sales declined"),
        ("Earnings increased", "positive", "earnings increased"),
        ("Margins shrank", "negative", "margins shrank"),
        ("Company raises guidance", "positive", "raises guidance"),
        ("Company lowers guidance", "negative", "lowers guidance"),
        ("Dividend raised", "positive", "dividend raised"),
        ("Dividend cut", "negative", "dividend cut"),
        ("Orders dropped", "negative", "orders dropped"),
        ("Market share grew", "positive", "market share grew"),
        ("Comparable sales -4%", "negative", "comparable sales -4%"),
        ("Sales +5%", "positive", "sales +5%"),
        # bad metrics: up is bad, down is good
        ("Costs soared", "negative", "costs soared"),
        ("Debt rose", "negative", "debt rose"),
        ("Debt fell", "positive", "debt fell"),
        ("Layoffs increased", "negative", "layoffs increased"),
        ("Job cuts rise", "negative", "job cuts rise"),
        ("Churn rose", "negative", "churn rose"),
        ("Churn fell", "positive", "churn fell"),
        ("Loss narrower than expected", "positive", "loss narrower"),
        ("Higher costs", "negative", "higher costs"),
        ("Lower costs", "positive", "lower costs"),
        # bad metrics alone
        ("Inventory write-down", "negative", "inventory write down"),
        ("Carmaker announces recall", "negative", "recall"),
        ("Bank posts loss", "negative", "loss"),
        # record is an up word: it follows the metric's sign
        ("Record profit", "positive", "record profit"),
        ("Record loss", "negative", "record loss"),
    ],
)
def test_direction_rules(lex: LexiconExtractor, text: str, expected: str, evidence: str) -> None:
    e = lex.extract(text)
    assert e.label == expected, (text, e)
    assert evidence in e.evidence


def test_inflections_are_found(lex: LexiconExtractor) -> None:
    for text in ("Company cutting jobs", "Company cut jobs", "Company slashed jobs"):
        assert label(lex, text) == "negative", text
    for text in ("Company slashed costs", "Company is reducing its debt"):
        assert label(lex, text) == "positive", text


def test_unpaired_direction_is_price_talk(lex: LexiconExtractor) -> None:
    assert label(lex, "Shares jump 8%") == "positive"
    assert label(lex, "Stock down 3% in early trade") == "negative"
    assert label(lex, "Shares slump") == "negative"


def test_pairing_stays_in_its_clause(lex: LexiconExtractor) -> None:
    e = lex.extract("Profit rose, while costs fell")
    assert e.label == "positive"
    assert e.evidence == ["profit rose", "costs fell"]


# --------------------------------------------------------------------------- negation


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("The results were good", "positive"),
        ("The results were not good", "negative"),
        ("The company is not profitable", "negative"),
        ("The quarter showed no growth", "negative"),
        ("Apple fails to beat estimates", "negative"),
        ("The project was completed without delays", "positive"),
        ("Profit did not fall", "positive"),
        ("The firm did not cut jobs", "positive"),
        ("The outlook isn't bad", "positive"),
        ("It's never been weaker", "positive"),  # dampened flip, as in VADER
    ],
)
def test_negation(lex: LexiconExtractor, text: str, expected: str) -> None:
    assert label(lex, text) == expected, lex.extract(text)


def test_negation_is_dampened(lex: LexiconExtractor) -> None:
    assert abs(lex.extract("not good").sentiment) < abs(lex.extract("good").sentiment)


def test_negation_scope_is_bounded(lex: LexiconExtractor) -> None:
    # a comma ends the clause; more than three tokens away is out of scope
    assert label(lex, "No comment from the company, shares rose") == "positive"
    assert label(lex, "No one at the meeting expected such strong results") == "positive"
    # the negator flips only the first term it reaches
    e = lex.extract("not a bad long chart")
    assert e.label == "positive"
    assert "not bad" in e.evidence


def test_not_only_is_not_a_negation(lex: LexiconExtractor) -> None:
    assert label(lex, "Not only did profit rise") == "positive"


def test_failure_with_nothing_in_scope_is_bad_news(lex: LexiconExtractor) -> None:
    e = lex.extract("Oil majors fail to find reserves")
    assert e.label == "negative", e
    assert "fail to" in e.evidence
    # with a scored term in scope it still only flips that term
    assert label(lex, "Apple fails to beat estimates") == "negative"
    assert label(lex, "Bank fails to avoid losses") == "negative"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Chipmaker shrugs off smartphone slowdown", "positive"),
        ("Retailer weathers downturn", "positive"),
        ("Insurer defies gloom", "positive"),
        ("Profit offsets swap losses", "positive"),
        ("Fund bucks the trend", "positive"),  # nothing scored: resilience alone
        ("Gains were offset by weaker sales", "negative"),  # passive: no flip
    ],
)
def test_resilience_flips_the_trouble_that_follows(
    lex: LexiconExtractor, text: str, expected: str
) -> None:
    assert label(lex, text) == expected, lex.extract(text)


def test_little_without_a_is_a_negation(lex: LexiconExtractor) -> None:
    assert label(lex, "Outlook holds little cheer for miners") == "negative"
    assert label(lex, "Little sign of recovery") == "negative"
    assert label(lex, "Shares a little higher") == "positive"  # "a little": a diminisher
    assert label(lex, "Stocks little changed") == "neutral"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Loss smaller than feared", "positive"),
        ("Profit falls less than feared", "positive"),
        ("Results better than feared", "positive"),
        ("Results worse than feared", "negative"),
        ("Shares hit record low", "negative"),
        ("Shares hit record high", "positive"),
        ("Sales pickup continues", "positive"),
        ("The sales pickup is not enough", "neutral"),
        ("Recall not a big deal", "negative"),  # the recall, not a negated "big deal"
    ],
)
def test_comparisons_and_idioms(lex: LexiconExtractor, text: str, expected: str) -> None:
    assert label(lex, text) == expected, lex.extract(text)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        # a disposal is cash for the seller: the sell word pairs with what is sold
        ("Acme sells its packaging unit to a rival", "positive"),
        ("Acme agrees to sell minority stake in logistics arm", "positive"),
        ("Acme plans unit sale", "positive"),
        ("Acme sold 5% more cars in May", "neutral"),  # selling goods: no disposal
        ("Acme sells cars", "neutral"),
        ("Founder sells off stake at a loss", "negative"),  # a forced sale says so
        ("Acme to spin off its chemicals division", "positive"),
        ("Regulator closes probe into Acme", "positive"),  # trouble ending
        ("Acme escapes fine over pricing", "positive"),
        ("Acme hit by one-off costs", "negative"),
        ("Acme admits mis-selling", "negative"),
    ],
)
def test_corporate_actions(lex: LexiconExtractor, text: str, expected: str) -> None:
    assert label(lex, text) == expected, lex.extract(text)


def test_phrases_skip_quantities_and_articles(lex: LexiconExtractor) -> None:
    e = lex.extract("Lloyds to close 200 branches")
    assert e.label == "negative"
    assert "close 200 branches" in e.evidence
    e = lex.extract("Investor has taken a £6m stake in the retailer")
    assert e.label == "positive"
    assert "taken a £6m stake" in e.evidence
    # at most two skipped tokens, and never at the start of a phrase
    assert label(lex, "Bank to close the 2 remaining 30 branches") == "neutral"
    assert label(lex, "A 5% stake") == "neutral"


# --------------------------------------------------------------------------- intensity


@pytest.mark.parametrize(
    ("stronger", "weaker"),
    [
        ("Profit fell sharply", "Profit fell"),  # adverb after the term
        ("Significantly higher sales", "Higher sales"),  # adverb before the term
        ("Huge loss", "Loss"),  # adjective before the noun
        ("Record profit", "Profit"),
        ("Shares lower", "Shares slightly lower"),  # diminisher inside a pair
        ("Shares gain", "Modest gain in shares"),
    ],
)
def test_intensity(lex: LexiconExtractor, stronger: str, weaker: str) -> None:
    s, w = lex.extract(stronger), lex.extract(weaker)
    assert s.label == w.label != "neutral", (s, w)
    assert abs(s.sentiment) > abs(w.sentiment), (s, w)


def test_adjectives_do_not_reach_back(lex: LexiconExtractor) -> None:
    # "huge" belongs to "run", not to "slowing" before it
    e = lex.extract("Momentum slowing after a huge run")
    assert all("huge" not in ev for ev in e.evidence)


def test_contrast_and_concession(lex: LexiconExtractor) -> None:
    assert label(lex, "Revenue missed estimates but profit beat") == "positive"
    assert label(lex, "Profit beat estimates but revenue fell sharply") == "negative"
    assert label(lex, "Despite weak sales, shares rise") == "positive"


# --------------------------------------------------------------------------- catalysts


@pytest.mark.parametrize(
    ("text", "catalyst"),
    [
        ("Quarterly profit rose", "earnings"),
        ("Company raises its outlook for the year", "guidance"),
        ("Company agrees takeover of rival", "m_and_a"),
        ("SEC opens probe into accounting", "legal_regulatory"),
        ("Company launches new smartphone", "product"),
        ("Chief executive resigns", "management"),
        ("Fed raises interest rates as inflation climbs", "macro"),
        ("Analyst upgrades the stock to buy", "analyst_rating"),
        ("Company plans IPO", "capital_markets"),
        ("The weather was nice", "other"),
    ],
)
def test_catalyst(lex: LexiconExtractor, text: str, catalyst: str) -> None:
    assert lex.extract(text).catalyst == catalyst


def test_catalyst_families_are_known() -> None:
    lex = load_lexicon()
    assert {"earnings", "guidance", "m_and_a", "legal_regulatory"} <= set(CATALYSTS)
    assert lex.catalysts.get(("merger",)) == "m_and_a"


# --------------------------------------------------------------------------- output


def test_tickers_pass_through_and_cashtags(lex: LexiconExtractor) -> None:
    e = lex.extract("$msft and $AAPL rally, $MSFT leads", tickers=["AAPL", " GOOG "])
    assert e.tickers == ["AAPL", "GOOG", "MSFT"]
    assert lex.extract("Shares rose").tickers == []
    assert lex.extract("Shares rose", tickers=("XYZ",)).tickers == ["XYZ"]


def test_neutral_text(lex: LexiconExtractor) -> None:
    e = lex.extract("The company will hold its annual meeting on Tuesday")
    assert e.label == "neutral"
    assert e.sentiment == 0.0
    assert e.evidence == []
    assert e.impact == "low"
    assert e.confidence <= 0.2


def test_ranges_impact_and_confidence(lex: LexiconExtractor) -> None:
    strong = lex.extract("Profit surged to a record, beating forecasts; shares soared")
    mixed = lex.extract("Profit rose but sales fell")
    assert strong.label == "positive"
    assert strong.impact == "high"
    assert strong.confidence > mixed.confidence
    for e in (strong, mixed):
        assert -1.0 <= e.sentiment <= 1.0
        assert 0.0 <= e.confidence <= 1.0
        assert e.label == label_for(e.sentiment)


def test_deterministic(lex: LexiconExtractor) -> None:
    text = "Barclays shares slump as bad loans rise; $BARC cut to sell"
    first = lex.extract(text, ["BARC"])
    again = LexiconExtractor().extract(text, ["BARC"])
    assert first == again
    assert msgspec.json.encode(first) == msgspec.json.encode(again)
    assert [lex.extract(text, ["BARC"]) for _ in range(3)] == [first] * 3


def test_is_an_extractor(lex: LexiconExtractor) -> None:
    assert isinstance(lex, Extractor)
    assert lex.name == "lexicon"


# --------------------------------------------------------------------------- extraction type


def test_extraction_validates() -> None:
    ok = Extraction(sentiment=0.5, label="positive", impact="low", catalyst="other", confidence=0.5)
    assert ok.tickers == [] and ok.evidence == []
    with pytest.raises(ValueError, match="outside"):
        Extraction(sentiment=1.5, label="positive", impact="low", catalyst="other", confidence=0.5)
    with pytest.raises(ValueError, match="outside"):
        Extraction(sentiment=0.5, label="positive", impact="low", catalyst="other", confidence=2)
    with pytest.raises(ValueError, match="disagrees"):
        Extraction(sentiment=0.05, label="positive", impact="low", catalyst="other", confidence=0.5)


@pytest.mark.parametrize(
    ("score", "expected"),
    [
        (0.1, "neutral"),
        (0.1001, "positive"),
        (-0.1, "neutral"),
        (-0.1001, "negative"),
        (0.0, "neutral"),
    ],
)
def test_label_thresholds(score: float, expected: str) -> None:
    assert label_for(score) == expected


# --------------------------------------------------------------------------- tokens and lists


def test_tokenize() -> None:
    norms = [
        t.norm
        for t in tokenize("Can't: $AAPL +5%, -4% 5% $1.2bn £3m 2012 write-down :) http://x.y @bob")
    ]
    assert norms == [
        "can", "not", "<b>", "<ticker>", "<pct_up>", "<b>", "<pct_down>", "<pct>", "<money>",
        "<money>", "<num>", "write", "down", "<smile>",
    ]  # fmt: skip
    assert [t.norm for t in tokenize("won't, U.S. firm's")] == ["will", "not", "<b>", "us", "firm"]
    assert [t.joined for t in tokenize("low-cost car")] == [True, False, False]


def test_forms() -> None:
    assert "cut" in forms("cutting")
    assert "rise" in forms("rising")
    assert "slip" in forms("slipped")
    assert "company" in forms("companies")
    assert forms("<num>") == ("<num>",)


def test_hyphenated_compound_is_not_split_by_a_phrase(lex: LexiconExtractor) -> None:
    # "new low" is a negative phrase; "new low-cost laptop" is not a new low
    assert label(lex, "Shares hit a new low") == "negative"
    assert label(lex, "Apple shows a new low-cost laptop") == "neutral"
    assert label(lex, "Apple unveils a new low-cost laptop") == "positive"  # unveils, not a low


def test_word_lists_are_consistent() -> None:
    lex = load_lexicon(LEXICON_DIR)
    assert lex.size > 1500
    for name in ("positive", "negative", "uncertainty", "litigious", "good_metrics", "bad_metrics"):
        assert (LEXICON_DIR / f"{name}.txt").is_file()


def _write_lists(folder: Path, **extra: str) -> None:
    for stem in [*_FILES, "catalysts"]:
        (folder / f"{stem}.txt").write_text(extra.get(stem, "# empty\n"), encoding="utf-8")


def test_custom_lists_and_conflicts(tmp_path: Path) -> None:
    _write_lists(tmp_path, positive="# comment\n@weight 2\nsplendid   # inline comment\n")
    e = LexiconExtractor(tmp_path).extract("A splendid quarter")
    assert e.label == "positive" and e.evidence == ["splendid"]

    clash = tmp_path / "clash"
    clash.mkdir()
    _write_lists(clash, positive="splendid\n", negative="splendid\n")
    with pytest.raises(ValueError, match="both positive and negative"):
        load_lexicon(clash)

    bad = tmp_path / "bad"
    bad.mkdir()
    _write_lists(bad, up="@speed 2\nrise\n")
    with pytest.raises(ValueError, match="unknown directive"):
        load_lexicon(bad)

    family = tmp_path / "family"
    family.mkdir()
    _write_lists(family, catalysts="[weather]\nrain\n")
    with pytest.raises(ValueError, match="unknown family"):
        load_lexicon(family)
