"""The lexicon extractor: financial word lists and a few rules, no model.

It is the embedded default extractor: deterministic, fast (tens of thousands
of headlines a second on one core), explainable (every score comes with the
terms that drove it) and free of any download. An LLM does better on
subtle text; this gives the pipeline a working, testable baseline everywhere.

How a text is scored:

1. **Tokens.** Lower case; URLs and @mentions dropped; cashtags (``$AAPL``)
   become tickers; money (``$5bn``), numbers, percentages and signed
   percentages (``+4%`` reads as a rise, ``-4%`` as a fall) become
   placeholders; hyphens split words (``write-down`` = ``write down``), but
   no phrase may end inside a hyphenated compound (``new low-cost`` is not
   ``new low``); ``n't`` becomes ``not``; ``:)`` and ``:(`` count as tone.
   Punctuation and ``but``, ``however``, ``while``, ``whereas``, ``as``,
   ``amid``, ``despite``, ``although``, ``after`` end a clause.
2. **Terms.** The word lists in ``lexicon/`` (see its README) are matched
   longest first, each token also under its regular inflections (``cuts`` ->
   ``cut``), so the lists hold base forms. Inside a phrase up to two
   quantities or articles may come between its words (``close stores``
   matches ``close 23 stores``, ``takes stake`` ``takes a 5% stake``). Every term has one role: tone
   (positive, negative, uncertainty, litigious), modifier (intensifier,
   diminisher, negator), metric, direction, or neutral (a phrase such as
   ``long term`` that silences its words).
3. **Direction rules.** A direction word (``rose``, ``cut``, ``narrowed``)
   pairs with the nearest metric in its clause (at most two content words
   apart) and scores metric sign x direction: ``profit rose`` and ``losses
   narrowed`` are positive, ``profit fell``, ``losses widened`` and ``cuts
   jobs`` negative, ``cuts costs`` positive. Unpaired, a direction word is
   price talk (``shares jump``, ``down 3%``) and a metric scores its prior
   (``posts loss`` -, ``dividend`` +). ``record`` is an up word with no
   score of its own: ``record profit`` +, ``record loss`` -.
4. **Modifiers.** A negator flips and dampens (x -0.75) the first scored
   term in the next three tokens of its clause (``not profitable``, ``fails
   to beat``, ``no growth``, ``little cheer``); with nothing in scope some
   score on their own (``fails to find`` -); resilience verbs are negators
   too (``shrugs off slowdown``, ``profit offsets losses`` +). An
   intensifier or diminisher scales the nearest scored term, the one after
   it first (``sharply lower``, ``huge loss``, ``slightly lower``); adverbs
   may also reach back (``fell sharply``).
   Before ``but``/``however`` a sentence counts half, after it one and a
   half times (the point usually comes after ``but``); a clause opened by
   ``despite``/``although``/``after`` counts half (background, not news).
5. **Score.** The sum ``S`` becomes ``S / sqrt(S^2 + 4)`` in [-1, 1]; one
   ordinary word (weight 1) gives 0.45, a single weak one (0.25) just
   crosses the neutral band. Confidence grows with the evidence and shrinks
   with contradiction and hedging; the catalyst is the keyword family with
   the most hits.
6. **Macro events.** Economy-wide events (rate decisions, tariffs, oil
   shocks) are read by :mod:`intelligence.extract.macro` from ``macro.yml``;
   they do not change the sentiment score.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from enum import IntEnum
from functools import lru_cache
from pathlib import Path
from typing import Final, Generic, TypeVar

from intelligence.extract.extraction import CATALYSTS, Catalyst, Extraction, Impact, label_for
from intelligence.extract.macro import MACRO_YML, MacroDetector, forms, load_rules

LEXICON_DIR: Final = Path(__file__).with_name("lexicon")
V = TypeVar("V")

ALPHA: Final = 4.0  # S / sqrt(S^2 + ALPHA)
NEGATION_SCALE: Final = -0.75
NEGATION_SCOPE: Final = 3  # tokens after the negator
MODIFIER_REACH: Final = 2  # tokens between a modifier and its term
PAIR_GAP: Final = 2  # content words allowed between a metric and its direction word
BEFORE_CONTRAST: Final = 0.5
AFTER_CONTRAST: Final = 1.5
CONCESSIVE: Final = 0.5

BOUNDARY: Final = "<b>"
# Inside a phrase, up to PHRASE_SKIP quantities and articles may come between
# its words: "cut jobs" matches "cut 600 jobs", "takes stake" "takes a 5% stake".
PHRASE_SKIP: Final = 2
_SKIPPABLE: Final = frozenset({"<num>", "<money>", "<pct>", "a", "an", "the", "its", "their"})
# Words that end a clause (pairing and negation stop there); contrast words
# also reweigh the sentence, concessive words the clause they open.
_CLAUSE_WORDS: Final = frozenset({"while", "whereas", "but", "however", "as", "amid"})
_CONTRAST_WORDS: Final = frozenset({"but", "however"})
_CONCESSIVE_WORDS: Final = frozenset({"despite", "although", "though", "notwithstanding", "after"})
_SENTENCE_END: Final = frozenset({".", "!", "?", ";"})
# Tokens that do not count as distance between a metric and its direction
# word ("profit for the first quarter rose 5%").
_FILLER: Final = frozenset(
    {
        "<num>", "<money>", "<pct>", "<ticker>", "a", "an", "the", "its", "their", "his", "her",
        "our", "of", "in", "for", "by", "to", "on", "at", "from", "per", "cent", "and",
        "bn", "billion", "mn", "mln", "million", "m", "trillion", "tn", "k", "year", "years",
        "quarter", "quarterly", "annual", "half", "first", "second", "third", "fourth", "full",
        "q1", "q2", "q3", "q4", "net", "pre", "pretax", "tax", "operating", "core", "underlying",
        "adjusted", "group", "company", "firm", "sharply", "significantly", "slightly",
        "has", "have", "had", "is", "are", "was", "were", "be", "been", "will", "would", "again",
        "than", "expected", "also", "further", "over", "about", "some", "all",
    }
)  # fmt: skip


class Role(IntEnum):
    """What a matched term does."""

    TONE = 0  # positive, negative, uncertainty, litigious
    INTENSIFIER = 1  # intensifiers and diminishers (a factor)
    NEGATOR = 2
    METRIC = 3
    DIRECTION = 4
    NEUTRAL = 5


@dataclass(frozen=True, slots=True)
class Term:
    """One entry of the word lists.

    ``value``: signed weight (tone), factor (intensifier), sign +-1 (metric)
    or signed strength (direction). ``prior``: the metric's score alone, or
    the direction word's score alone. ``source`` is the file it came from.
    Only adverbs (``sharply``, ``slightly``) modify backwards; adjectives
    (``record``, ``huge``) modify the noun after them.
    """

    role: Role
    value: float
    prior: float
    source: str
    backward: bool = False  # a modifier that may also scale the term before it ("fell sharply")


# file stem -> (role, sign of its values)
_FILES: Final[dict[str, tuple[Role, float]]] = {
    "positive": (Role.TONE, 1.0),
    "negative": (Role.TONE, -1.0),
    "uncertainty": (Role.TONE, -1.0),
    "litigious": (Role.TONE, -1.0),
    "intensifiers": (Role.INTENSIFIER, 1.0),
    "diminishers": (Role.INTENSIFIER, 1.0),
    "negators": (Role.NEGATOR, 1.0),
    "good_metrics": (Role.METRIC, 1.0),
    "bad_metrics": (Role.METRIC, -1.0),
    "up": (Role.DIRECTION, 1.0),
    "down": (Role.DIRECTION, -1.0),
    "neutral": (Role.NEUTRAL, 1.0),
}
_DEFAULTS: Final = {"weight": 1.0, "factor": 1.5, "strength": 1.0, "unpaired": 1.0, "prior": 0.0}

# --------------------------------------------------------------------------- tokens

_TOKEN_RE: Final = re.compile(
    r"""
    (?P<url>https?://\S+|www\.\S+)
  | (?P<smile>(?<!\w)[:;=]-?[)\]dp](?![\w)]))
  | (?P<frown>(?<!\w)[:;=]-?[(\[/](?![\w(/]))
  | (?P<mention>@\w+)
  | (?P<cashtag>\$[a-z][a-z0-9]{0,5}(?:[._][a-z]{1,2})?)(?![a-z0-9])
  | (?P<pct_up>\+\s?\d[\d,]*(?:\.\d+)?\s?(?:%|percent\b|pct\b))
  | (?P<pct_down>(?<![\w.])-\s?\d[\d,]*(?:\.\d+)?\s?(?:%|percent\b|pct\b))
  | (?P<money>[$€£¥]\s?\d[\d,]*(?:\.\d+)?(?:\s?(?:bn|billion|mn|mln|million|m|k|b|tn|trillion)\b)?)
  | (?P<pct>\d[\d,]*(?:\.\d+)?\s?(?:%|percent\b|pct\b|per\scent\b))
  | (?P<num>\d[\d,]*(?:\.\d+)?[a-z]{0,3}\b)
  | (?P<word>[a-z][a-z0-9&]*(?:'[a-z]+)?)
  | (?P<punct>[.!?;:,|()\[\]"]|\s-+\s(?!\d)|--+|\u2014)
    """,
    re.VERBOSE,
)
_PLACEHOLDER: Final = {
    "money": "<money>",
    "pct": "<pct>",
    "num": "<num>",
    "pct_up": "<pct_up>",
    "pct_down": "<pct_down>",
    "cashtag": "<ticker>",
    "smile": "<smile>",
    "frown": "<frown>",
}
_PLACEHOLDERS: Final = frozenset(_PLACEHOLDER.values())
_TRANSLATE: Final = str.maketrans(
    {"\u2019": "'", "\u2018": "'", "\u201c": '"', "\u201d": '"', "\u2013": " - ", "\u00a0": " "}
)
_NOT_RE: Final = re.compile(r"\b(?:(wo)|(ca)|(ai))n't\b|n't\b")
_POSSESSIVE_RE: Final = re.compile(r"'s\b")
_ACRONYM_RE: Final = re.compile(r"\b(?:[a-z]\.){2,}")


def _expand_not(m: re.Match[str]) -> str:
    if m.group(1):
        return "will not"
    if m.group(2):
        return "can not"
    if m.group(3):
        return "is not"
    return " not"


@dataclass(frozen=True, slots=True)
class Token:
    """A normalised token (``norm``), the text it came from, and whether a hyphen
    joins it to the next word (``low-cost``): a phrase may not end inside such a
    compound, so ``new low-cost`` is not ``new low``."""

    norm: str
    text: str
    joined: bool = False


def tokenize(text: str) -> list[Token]:
    """Split a text into normalised tokens; punctuation becomes ``<b>`` (a boundary)."""
    s = text.translate(_TRANSLATE).replace("&amp;", "&").lower()
    s = _ACRONYM_RE.sub(lambda m: m.group().replace(".", ""), s)  # u.s. -> us
    s = _POSSESSIVE_RE.sub("", _NOT_RE.sub(_expand_not, s))
    out: list[Token] = []
    for m in _TOKEN_RE.finditer(s):
        kind = m.lastgroup
        raw = m.group()
        if kind == "word":
            end = m.end()
            joined = s[end : end + 1] == "-" and s[end + 1 : end + 2].isalnum()
            out.append(Token(raw.replace("'", ""), raw, joined))
        elif kind == "punct":
            out.append(Token(BOUNDARY, raw.strip()))
        elif kind in _PLACEHOLDER:
            out.append(Token(_PLACEHOLDER[kind], raw.strip()))
        # urls and mentions carry no tone
    return out


# --------------------------------------------------------------------------- lexicon


class _Node(Generic[V]):
    """A trie node: children by token, and the entry ending here (if any)."""

    __slots__ = ("children", "value")

    def __init__(self) -> None:
        self.children: dict[str, _Node[V]] = {}
        self.value: V | None = None


class _Trie(Generic[V]):
    """Phrases (token tuples) to values, matched longest first over inflected forms."""

    def __init__(self) -> None:
        self.root: _Node[V] = _Node()

    def get(self, key: Sequence[str]) -> V | None:
        node = self.root
        for tok in key:
            child = node.children.get(tok)
            if child is None:
                return None
            node = child
        return node.value

    def put(self, key: Sequence[str], value: V) -> None:
        node = self.root
        for tok in key:
            node = node.children.setdefault(tok, _Node())
        node.value = value

    def longest(
        self, toks: Sequence[str], i: int, joined: Sequence[bool] = ()
    ) -> tuple[V | None, int]:
        """The longest entry starting at token ``i``: (value, end), or (None, i).

        ``joined[j]`` true: no entry may end at token ``j`` (it is the first
        half of a hyphenated compound).
        """
        best: V | None = None
        best_end = i
        n = len(toks)
        stack = [(self.root, i, 0)]
        while stack:
            node, j, skipped = stack.pop()
            if j >= n:
                continue
            tok = toks[j]
            for f in forms(tok):
                child = node.children.get(f)
                if child is None:
                    continue
                if child.value is not None and j + 1 > best_end and not (joined and joined[j]):
                    best, best_end = child.value, j + 1
                if child.children:
                    stack.append((child, j + 1, skipped))
            if node is not self.root and skipped < PHRASE_SKIP and tok in _SKIPPABLE:
                stack.append((node, j + 1, skipped + 1))  # "cut 600 jobs", "takes a 5% stake"
        return best, best_end


def _key(phrase: str) -> tuple[str, ...]:
    """A list entry as tokens; placeholders such as ``<num>`` are kept as written."""
    key: list[str] = []
    for part in phrase.split():
        if part in _PLACEHOLDERS:
            key.append(part)
        else:
            key += [t.norm for t in tokenize(part) if t.norm != BOUNDARY]
    return tuple(key)


def _entries(path: Path) -> Iterable[tuple[str, dict[str, float], str]]:
    """Yield (phrase, directives in force, section) for each entry of a list file."""
    directives = dict(_DEFAULTS)
    section = ""
    for lineno, raw in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        if line.startswith("@"):
            name, _, value = line[1:].partition(" ")
            if name not in _DEFAULTS:
                raise ValueError(f"{path.name}:{lineno}: unknown directive @{name}")
            directives[name] = float(value)
        elif line.startswith("[") and line.endswith("]"):
            section = line[1:-1].strip()
        else:
            yield line, dict(directives), section


class Lexicon:
    """The word lists compiled into two tries: terms by role, and catalyst keywords."""

    def __init__(self) -> None:
        self.terms: _Trie[Term] = _Trie()
        self.catalysts: _Trie[str] = _Trie()
        self.size = 0

    def add(self, phrase: str, term: Term) -> None:
        """Add a term; a phrase may have one role only (same entry twice is fine)."""
        key = _key(phrase)
        if not key:
            raise ValueError(f"{term.source}: empty entry {phrase!r}")
        old = self.terms.get(key)
        if old is not None and old != term:
            raise ValueError(f"{phrase!r} is in both {old.source} and {term.source}")
        if old is None:
            self.size += 1
            self.terms.put(key, term)

    def add_catalyst(self, phrase: str, family: str) -> None:
        """Add a catalyst keyword; a keyword may belong to one family only."""
        if family not in CATALYSTS:
            raise ValueError(f"catalysts.txt: unknown family [{family}]")
        key = _key(phrase)
        old = self.catalysts.get(key)
        if old is not None and old != family:
            raise ValueError(f"catalyst keyword {phrase!r} is in both {old} and {family}")
        self.catalysts.put(key, family)


@lru_cache(maxsize=8)
def load_lexicon(directory: Path = LEXICON_DIR) -> Lexicon:
    """Read and compile the word lists of ``directory`` (once per directory)."""
    lex = Lexicon()
    for stem, (role, sign) in _FILES.items():
        for phrase, d, _ in _entries(directory / f"{stem}.txt"):
            if role is Role.TONE:
                term = Term(role, sign * d["weight"], 0.0, stem)
            elif role is Role.INTENSIFIER:
                adverb = phrase.endswith("ly") or phrase == "further"
                term = Term(role, d["factor"], 0.0, stem, backward=adverb)
            elif role is Role.METRIC:
                term = Term(role, sign, d["prior"], stem)
            elif role is Role.DIRECTION:
                strength = sign * d["strength"]
                term = Term(role, strength, strength * d["unpaired"], stem)
            elif role is Role.NEGATOR:
                term = Term(role, 0.0, d["prior"], stem)  # prior: its score with nothing in scope
            else:
                term = Term(role, 0.0, 0.0, stem)
            lex.add(phrase, term)
    for phrase, _, section in _entries(directory / "catalysts.txt"):
        lex.add_catalyst(phrase, section)
    return lex


# --------------------------------------------------------------------------- scoring


@dataclass(slots=True)
class _Match:
    start: int
    end: int
    term: Term


@dataclass(slots=True)
class _Item:
    """A scored unit: a tone word, a metric-direction pair, or a lone metric or direction."""

    value: float
    positions: list[int]  # tokens that make it up (for evidence and modifier reach)
    start: int
    end: int
    hedge: bool = False


HIGH_IMPACT: Final = frozenset({"earnings", "guidance", "m_and_a", "legal_regulatory"})


class LexiconExtractor:
    """The embedded extractor: word lists plus negation, intensity and direction rules.

    Construct once and reuse; the word lists are loaded once per directory.
    Deterministic: the same text always gives the same :class:`Extraction`.
    """

    name = "lexicon"

    def __init__(self, lexicon_dir: Path | None = None) -> None:
        directory = lexicon_dir or LEXICON_DIR
        self._lex = load_lexicon(directory)
        macro_yml = directory / MACRO_YML.name
        self._macro = MacroDetector(load_rules(macro_yml if macro_yml.is_file() else MACRO_YML))

    @property
    def size(self) -> int:
        """Number of distinct terms (words and phrases) in the role lists."""
        return self._lex.size

    def extract(self, text: str, tickers: Sequence[str] = ()) -> Extraction:
        """Score ``text``; ``tickers`` are passed through, cashtags found in it appended."""
        tokens = tokenize(text)
        norms = [t.norm for t in tokens]
        items = self._score(tokens, norms)
        total = sum(it.value for it in items)
        sentiment = round(total / math.sqrt(total * total + ALPHA), 4)
        pos = sum(it.value for it in items if it.value > 0)
        neg = -sum(it.value for it in items if it.value < 0)
        hedges = sum(1 for it in items if it.hedge)
        catalyst = self._catalyst(norms, [t.joined for t in tokens])
        evidence = [
            " ".join(tokens[p].text for p in sorted(set(it.positions)))
            for it in sorted(items, key=lambda it: (it.start, it.end))
            if it.value != 0.0
        ]
        found = [t.text[1:].upper() for t in tokens if t.norm == "<ticker>"]  # $aapl -> AAPL
        affected = list(dict.fromkeys([*(t.strip() for t in tickers if t.strip()), *found]))
        return Extraction(
            sentiment=sentiment,
            label=label_for(sentiment),
            impact=_impact(sentiment, catalyst),
            catalyst=catalyst,
            confidence=_confidence(pos, neg, hedges),
            tickers=affected,
            evidence=list(dict.fromkeys(evidence)),
            macro_events=self._macro.detect(text, norms),
        )

    # -- internals ----------------------------------------------------------------

    def _matches(self, norms: Sequence[str], joined: Sequence[bool]) -> list[_Match]:
        out: list[_Match] = []
        i, n = 0, len(norms)
        while i < n:
            if norms[i] == BOUNDARY:
                i += 1
                continue
            value, end = self._lex.terms.longest(norms, i, joined)
            if value is not None:
                out.append(_Match(i, end, value))
                i = end
            else:
                i += 1
        return out

    def _catalyst(self, norms: Sequence[str], joined: Sequence[bool]) -> Catalyst:
        counts: dict[str, int] = {}
        i, n = 0, len(norms)
        while i < n:
            value, end = self._lex.catalysts.longest(norms, i, joined)
            if value is not None:
                counts[value] = counts.get(value, 0) + 1
                i = end
            else:
                i += 1
        if not counts:
            return "other"
        return max(CATALYSTS, key=lambda c: (counts.get(c, 0), -CATALYSTS.index(c)))

    def _score(self, tokens: Sequence[Token], norms: Sequence[str]) -> list[_Item]:
        clause, weight = _clauses(tokens)
        matches = self._matches(norms, [t.joined for t in tokens])
        metrics = [m for m in matches if m.term.role is Role.METRIC]
        items: list[_Item] = []
        paired: set[int] = set()
        for m in matches:
            role = m.term.role
            if role is Role.TONE:
                items.append(
                    _Item(m.term.value, list(range(m.start, m.end)), m.start, m.end,
                          hedge=m.term.source == "uncertainty")
                )  # fmt: skip
            elif role is Role.DIRECTION:
                metric = _nearest_metric(m, metrics, norms, clause)
                if metric is None:
                    if m.term.prior:
                        items.append(
                            _Item(m.term.prior, list(range(m.start, m.end)), m.start, m.end)
                        )
                else:
                    paired.add(id(metric))
                    lo, hi = min(m.start, metric.start), max(m.end, metric.end)
                    pos = [*range(metric.start, metric.end), *range(m.start, m.end)]
                    items.append(_Item(metric.term.value * m.term.value, pos, lo, hi))
        for metric in metrics:
            if id(metric) not in paired and metric.term.prior:
                items.append(
                    _Item(metric.term.prior, list(range(metric.start, metric.end)),
                          metric.start, metric.end)
                )  # fmt: skip
        items.sort(key=lambda it: it.start)
        alone: list[_Item] = []
        for m in matches:
            if m.term.role is Role.NEGATOR:
                target = _negated(m, items, clause)
                if target is not None:
                    target.value *= NEGATION_SCALE
                    target.positions.extend(range(m.start, m.end))
                elif m.term.prior:  # "fails to find", "shrugs off" with nothing scored after
                    alone.append(_Item(m.term.prior, list(range(m.start, m.end)), m.start, m.end))
            elif m.term.role is Role.INTENSIFIER:
                target = _modified(m, items, clause)
                if target is not None:
                    target.value *= m.term.value
                    target.positions.extend(range(m.start, m.end))
        items += alone
        for it in items:
            it.value *= weight[it.start]
        return items


def _clauses(tokens: Sequence[Token]) -> tuple[list[int], list[float]]:
    """Clause id and weight of every token.

    A clause ends at punctuation and at the clause words (``but``,
    ``while``, ``as``, ...). In a sentence with ``but`` or ``however``, what
    comes before the last one counts half and what follows one and a half
    times; a clause opened by ``despite``, ``although`` or ``after`` counts
    half.
    """
    n = len(tokens)
    clause = [0] * n
    weight = [1.0] * n
    cid = 0
    sentence_start = 0
    contrast = -1
    concessive = False
    for i, tok in enumerate(tokens):
        norm = tok.norm
        if norm == BOUNDARY or norm in _CLAUSE_WORDS or norm in _CONCESSIVE_WORDS:
            cid += 1
            concessive = norm in _CONCESSIVE_WORDS
        clause[i] = cid
        if concessive:
            weight[i] = CONCESSIVE
        if norm in _CONTRAST_WORDS:
            contrast = i
        end = norm == BOUNDARY and tok.text in _SENTENCE_END
        if end or i == n - 1:
            if contrast >= 0:
                for j in range(sentence_start, i + 1):
                    weight[j] *= BEFORE_CONTRAST if j < contrast else AFTER_CONTRAST
            sentence_start, contrast = i + 1, -1
    return clause, weight


def _nearest_metric(
    d: _Match, metrics: Sequence[_Match], norms: Sequence[str], clause: Sequence[int]
) -> _Match | None:
    """The metric a direction word talks about: same clause, fewest content words between."""
    best: _Match | None = None
    best_key = (PAIR_GAP + 1, 1)
    for m in metrics:
        if clause[m.start] != clause[d.start]:
            continue
        if m.end <= d.start:
            between, after = range(m.end, d.start), 0
        elif d.end <= m.start:
            between, after = range(d.end, m.start), 1
        else:
            continue
        gap = sum(1 for p in between if norms[p] not in _FILLER)
        key = (gap, after)
        if key < best_key:
            best, best_key = m, key
    return best


def _negated(m: _Match, items: Sequence[_Item], clause: Sequence[int]) -> _Item | None:
    """The item a negator flips: the first one within its scope, in the same clause."""
    best: _Item | None = None
    first = m.end + NEGATION_SCOPE
    for it in items:
        for p in it.positions:
            if m.end <= p < first and clause[p] == clause[m.start]:
                best, first = it, p
    return best


def _modified(m: _Match, items: Sequence[_Item], clause: Sequence[int]) -> _Item | None:
    """The item an intensifier or diminisher scales.

    The item with a token closest after the modifier (within reach), else the
    one closest before it: "sharply lower", "fell sharply", "sales slightly
    lower" (the modifier sits inside the metric-direction pair).
    """
    best: _Item | None = None
    best_key = (2, MODIFIER_REACH + 1)
    home = clause[m.start]
    for it in items:
        for p in it.positions:
            if clause[p] != home:
                continue
            if p >= m.end:
                key = (0, p - m.end)
            elif p < m.start and m.term.backward:
                key = (1, m.start - 1 - p)
            else:
                continue
            if key[1] <= MODIFIER_REACH and key < best_key:
                best, best_key = it, key
    return best


def _confidence(pos: float, neg: float, hedges: int) -> float:
    """More evidence, less contradiction and less hedging: more confidence."""
    total = pos + neg
    if total == 0.0:
        return 0.2
    agreement = abs(pos - neg) / total
    coverage = 1.0 - math.exp(-total)
    conf = 0.2 + 0.75 * coverage * agreement - 0.1 * min(hedges, 3)
    return round(min(0.95, max(0.05, conf)), 3)


def _impact(sentiment: float, catalyst: Catalyst) -> Impact:
    """Strong tone or a price-moving event type: higher impact."""
    m = abs(sentiment)
    if m >= 0.75 or (m >= 0.5 and catalyst in HIGH_IMPACT):
        return "high"
    if m >= 0.35 or (m > 0.1 and catalyst in HIGH_IMPACT):
        return "medium"
    return "low"
