"""Rule-based detection of economy-wide events (rate decisions, tariffs, oil shocks, ...).

Company news reaches a company directly; macro news names no company and
reaches it only through the exposure profile of the registry (regions,
sectors, signed commodity sensitivities). This module turns a text into
:class:`~intelligence.extract.extraction.MacroEvent` values in that
vocabulary, so aggregation can map an OPEC cut onto an oil major and a
chip-export ban onto chipmakers. It is deterministic and needs no model: the
rules live in ``lexicon/macro.yml`` (see its header for the format).

How a text is read:

1. **Prefilter.** Set lookups on the words of the text: without all the
   words of some topic (``fed``, ``inflation``, ``oil``, ``tariff``...), and
   a move word for a topic that does not read alone, the text cannot hold an
   event and costs nothing more. Most company headlines stop here (the
   lexicon extractor hands over the words it has already split).
2. **Tokens and phrases.** Lower case, ``U.S.``/``US`` become
   ``united states``, hyphens split words, numbers become ``<num>``;
   phrases of the rules are matched longest first, each token also under its
   regular inflections. Punctuation and clause words (``as``, ``but``,
   ``after``...) end a clause.
3. **Readings.** A *move* word (``raises``, ``slump``, ``holds``) pairs with
   the nearest *topic* of its clause: after it within ``pair_gap`` content
   words ("oil prices slump"), before it only as an attributive word right in
   front ("falling oil prices"), or, for policy measures, within the kind's
   ``lead_gap`` ("US slaps new tariffs"), so "Berkshire raises oil bet" is no
   price move. The reading is topic sign x move (+1, -1 or 0 for a hold). A
   topic with a ``prior`` also reads alone (``recession`` -1). A negator up
   to ``negation_scope`` tokens before the move or the topic cancels the
   reading to 0: "no hike" says no move happened, not that rates were cut.
4. **Events.** Readings of one kind become one event (commodity events, one
   per commodity set): direction = mean of the readings, severity = the
   strongest (a topic's base, one level up for a strong move such as
   ``plunge`` or an intensity word such as ``surprise``/``record``, one down
   for ``slightly``), regions from the topic (the Fed: north America) and
   the places of the text (for trade and geopolitical measures the *target*
   places, "tariffs on China", when the text names one), sectors and
   commodities likewise, the expected duration by kind.

Topics that are ambiguous alone (``growth``, ``jobs``, ``output``) require
context: a place, a commodity or a sector, so "Apple revenue growth slows"
or "Tesla cuts output" is company news and yields no event.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Collection, Iterable, Sequence
from dataclasses import dataclass, field, replace
from enum import IntEnum
from functools import lru_cache
from pathlib import Path
from typing import Final, Literal

import msgspec
import yaml

from intelligence.extract.extraction import (
    MACRO_KINDS,
    SEVERITIES,
    Duration,
    MacroEvent,
    MacroKind,
    Severity,
)

MACRO_YML: Final = Path(__file__).with_name("lexicon") / "macro.yml"

Need = Literal["place", "sector", "commodity"]
MoveName = Literal["up", "down", "hold"]
GLOBAL_PLACE: Final = "global"
BOUNDARY: Final = "<b>"
NUM: Final = "<num>"
# Kinds whose regions are the *targets* of a measure when the text names one.
_TARGETED: Final = frozenset({"trade_policy", "geopolitical"})
_PUNCT: Final = frozenset('.!?;:,|()[]"-')
_MOVE_VALUE: Final[dict[str, float]] = {"up": 1.0, "down": -1.0, "hold": 0.0}


# --------------------------------------------------------------------------- the file


class _Spec(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """Base of the file-shape Structs: a misspelt key is an error, never ignored."""


class TopicSpec(_Spec):
    phrases: list[str]
    sign: float = 1.0
    prior: float = 0.0
    severity: Severity = "medium"
    regions: list[str] = msgspec.field(default_factory=list)
    sectors: list[str] = msgspec.field(default_factory=list)
    commodities: list[str] = msgspec.field(default_factory=list)
    needs: Need | None = None


class KindSpec(_Spec):
    duration: Duration
    topics: list[TopicSpec]
    needs: Need | None = None
    lead_gap: int | None = None
    overrides: dict[str, MoveName] = msgspec.field(default_factory=dict)


class MovesSpec(_Spec):
    up: list[str]
    down: list[str]
    hold: list[str]
    attributive: list[str] = msgspec.field(default_factory=list)
    strong: list[str] = msgspec.field(default_factory=list)


class IntensitySpec(_Spec):
    up: list[str] = msgspec.field(default_factory=list)
    down: list[str] = msgspec.field(default_factory=list)


class MacroFile(_Spec):
    version: int
    pair_gap: int
    negation_scope: int
    clause_words: list[str]
    amount_words: list[str]
    places: dict[str, list[str]]
    target_markers: list[str]
    sectors: dict[str, list[str]]
    commodities: dict[str, list[str]]
    negators: list[str]
    intensity: IntensitySpec
    moves: MovesSpec
    fillers: list[str]
    kinds: dict[MacroKind, KindSpec]


# --------------------------------------------------------------------------- tokens

_US_RE: Final = re.compile(r"\bU\.S\.(?:A\.)?(?!\w)|\bUSA?\b")
_NOT_RE: Final = re.compile(r"(?:\b(?:wo|ca|ai))?n't\b", re.IGNORECASE)
_POSSESSIVE_RE: Final = re.compile(r"'s\b", re.IGNORECASE)
_TRANSLATE: Final = str.maketrans(
    {"\u2019": "'", "\u2018": "'", "\u201c": '"', "\u201d": '"', "\u2013": "-", "\u2014": "-"}
)
# Words, numbers (with a unit or percent sign) and punctuation; matched on the original
# case so evidence reads as written.
_TOKEN_RE: Final = re.compile(
    r"[a-z][a-z0-9]*|[$€£¥]?\d[\d,.]*(?:%|[a-z]{1,3}\b)?|[.!?;:,|()\[\]\"]|\s-+\s|--+",
    re.IGNORECASE,
)
_WORD_RE: Final = re.compile(r"[a-z][a-z0-9]*")
# Not content: links, @mentions and cashtags ("$OIL" is a ticker, not crude).
_SKIP_RE: Final = re.compile(r"https?://\S+|www\.\S+|@\w+|\$[a-z][a-z0-9.]*", re.IGNORECASE)


def _normalise(text: str) -> str:
    s = text if text.isascii() else text.translate(_TRANSLATE)
    if "http" in s or "www." in s or "@" in s or "$" in s:
        s = _SKIP_RE.sub(" ", s)
    if "US" in s or "U.S." in s:
        s = _US_RE.sub("United States", s)
    if "'" in s:
        s = _NOT_RE.sub(lambda m: " not" if len(m.group()) == 3 else m.group()[:-3] + " not", s)
        s = _POSSESSIVE_RE.sub("", s)
    return s


def split(text: str) -> tuple[list[str], list[str]]:
    """Normalised tokens and the text each came from (for evidence), in order.

    Words are lower-cased, numbers become ``<num>``, punctuation ``<b>``.
    """
    texts = _TOKEN_RE.findall(_normalise(text))
    norms: list[str] = []
    for raw in texts:
        c = raw[0]
        if c.isalpha():
            norms.append(raw.lower())
        elif c.isspace() or c in _PUNCT:
            norms.append(BOUNDARY)
        else:
            norms.append(NUM)
    return norms, texts


def tokenize(text: str) -> list[str]:
    """The normalised tokens of ``text`` (see :func:`split`)."""
    return split(text)[0]


@lru_cache(maxsize=1 << 15)
def forms(word: str) -> tuple[str, ...]:
    """The word and the base forms a regular inflection may hide (``hiked`` -> ``hike``).

    A bare ``-ed``/``-ing`` is only stripped when four letters remain, so an
    acronym never hides in a longer word (``boeing`` is not ``boe`` + ``ing``);
    ``cutting`` still gives ``cut`` through its doubled consonant.
    """
    if word.startswith("<") or len(word) < 4:
        return (word,)
    out = [word]
    if word.endswith(("ies", "ied")):
        out.append(word[:-3] + "y")
    if word.endswith("es"):
        out.append(word[:-2])
    if word.endswith("s") and not word.endswith("ss"):
        out.append(word[:-1])
    if word.endswith("ed"):
        if len(word) >= 6:
            out.append(word[:-2])
        out.append(word[:-1])
        if len(word) > 5 and word[-3] == word[-4]:
            out.append(word[:-3])
    if word.endswith("ing") and len(word) > 5:
        if len(word) >= 7:
            out.append(word[:-3])
        out.append(word[:-3] + "e")
        if word[-4] == word[-5]:
            out.append(word[:-4])
    return tuple(dict.fromkeys(out))


def inflections(base: str) -> set[str]:
    """Every word whose :func:`forms` may include ``base`` (the inverse, over-generated)."""
    out = {base, base + "s", base + "es", base + "d", base + base[-1] + "ed"}
    out |= {base + "ed", base + "ing", base + base[-1] + "ing"}
    if base.endswith("y"):
        out |= {base[:-1] + "ies", base[:-1] + "ied"}
    if base.endswith("e"):
        out.add(base[:-1] + "ing")
    return out


# --------------------------------------------------------------------------- compiled rules


class Role(IntEnum):
    """What a matched phrase does."""

    TOPIC = 0
    COMMODITY = 1  # names a commodity; alone it is also a price topic
    MOVE = 2
    NEGATOR = 3
    INTENSITY = 4
    PLACE = 5
    SECTOR = 6
    FILLER = 7


@dataclass(frozen=True, slots=True)
class Topic:
    """What a topic phrase means: its kind, how its rise reads, what it implies."""

    kind: MacroKind
    sign: float
    prior: float
    severity: int  # index into SEVERITIES
    regions: tuple[str, ...] = ()
    sectors: tuple[str, ...] = ()
    commodities: tuple[str, ...] = ()
    needs: Need | None = None


@dataclass(frozen=True, slots=True)
class Entry:
    """A phrase of the rules: its role and payload (names for places, sectors, commodities)."""

    role: Role
    phrase: str
    names: tuple[str, ...] = ()
    topic: Topic | None = None
    value: float = 0.0  # move: +1/-1/0; intensity: +1/-1
    strong: bool = False


_ACCUMULATING: Final = frozenset({Role.PLACE, Role.SECTOR, Role.COMMODITY})
_MODIFIERS: Final = frozenset({Role.FILLER, Role.NEGATOR, Role.INTENSITY})


def _key(phrase: str) -> tuple[str, ...]:
    """A rule phrase as tokens; placeholders such as ``<num>`` are kept as written."""
    key: list[str] = []
    for part in phrase.split():
        if part.startswith("<") and part.endswith(">"):
            key.append(part)
        else:
            key += [t for t in tokenize(part) if t != BOUNDARY]
    return tuple(key)


@dataclass(slots=True)
class MacroRules:
    """The compiled rules: phrases by first token, plus the settings of the file."""

    pair_gap: int
    negation_scope: int
    clause_words: frozenset[str]
    amount_words: frozenset[str]
    attributive: frozenset[tuple[str, ...]]
    lead_gaps: dict[MacroKind, int | None]
    target_markers: frozenset[str]
    durations: dict[MacroKind, Duration]
    kind_needs: dict[MacroKind, Need | None]
    overrides: dict[MacroKind, dict[str, float]]
    region_order: tuple[str, ...]
    sector_order: tuple[str, ...]
    commodity_order: tuple[str, ...]
    phrases: dict[tuple[str, ...], Entry] = field(default_factory=dict)
    # a word as written -> the phrases it may start (under any regular inflection),
    # longest first, the word's own spelling before an inflected one
    by_word: dict[str, list[tuple[tuple[str, ...], Entry]]] = field(default_factory=dict)
    # prefilter: a distinctive word of each topic phrase (any inflection) -> the
    # inflections of the phrase's other words (each must occur too) and whether the
    # topic reads alone (has a prior) or needs one of the ``move_words``
    triggers: dict[str, list[tuple[tuple[frozenset[str], ...], bool]]] = field(default_factory=dict)
    trigger_words: frozenset[str] = frozenset()
    move_words: frozenset[str] = frozenset()

    def add(self, phrase: str, entry: Entry) -> None:
        """Add a phrase; one role per phrase (places, sectors, commodities accumulate names)."""
        key = _key(phrase)
        if not key:
            raise ValueError(f"macro rules: empty phrase {phrase!r}")
        entry = replace(entry, phrase=" ".join(key))  # spelling variants are one phrase
        old = self.phrases.get(key)
        if old is not None:
            if old.role == entry.role and entry.role in _ACCUMULATING:
                entry = _named(entry.role, old.phrase, old.names + entry.names)
            elif old != entry:
                raise ValueError(
                    f"macro rules: {phrase!r} is both {old.role.name.lower()} "
                    f"({old.phrase!r}) and {entry.role.name.lower()}"
                )
        self.phrases[key] = entry

    def compile(self) -> None:
        """Index phrases by the words that may start them, and collect the prefilter words."""
        by_word: dict[str, list[tuple[tuple[str, ...], Entry]]] = {}
        for key, entry in self.phrases.items():
            for word in inflections(key[0]):
                if key[0] in forms(word):
                    by_word.setdefault(word, []).append((key, entry))
        for word, cands in by_word.items():
            cands.sort(key=lambda c: (-len(c[0]), c[0][0] != word))
        self.by_word = by_word
        triggers: dict[str, list[tuple[tuple[frozenset[str], ...], bool]]] = {}
        move_words: set[str] = set()
        for key, entry in self.phrases.items():
            if entry.role is Role.MOVE:
                move_words |= inflections(key[0])
            if entry.topic is None:
                continue
            anchor = max(range(len(key)), key=lambda i: len(key[i]))  # longer: rarer
            others = tuple(frozenset(inflections(w)) for i, w in enumerate(key) if i != anchor)
            for variant in inflections(key[anchor]):
                triggers.setdefault(variant, []).append((others, bool(entry.topic.prior)))
        self.triggers = triggers
        self.trigger_words = frozenset(triggers)
        self.move_words = frozenset(move_words)


def _named(role: Role, phrase: str, names: tuple[str, ...]) -> Entry:
    """A place, sector or commodity entry; a commodity also reads as its price topic."""
    names = tuple(dict.fromkeys(names))
    topic = None
    if role is Role.COMMODITY:
        topic = Topic("commodity_supply", 1.0, 0.0, _severity_index("medium"), commodities=names)
    return Entry(role, phrase, names, topic)


def _severity_index(s: Severity) -> int:
    return SEVERITIES.index(s)


def compile_rules(spec: MacroFile) -> MacroRules:
    """Check a parsed rules file and compile it; ValueError names the offending entry."""
    if spec.pair_gap < 0 or spec.negation_scope < 1:
        raise ValueError("macro rules: pair_gap must be >= 0 and negation_scope >= 1")
    unknown = set(spec.kinds) - set(MACRO_KINDS)
    if unknown:
        raise ValueError(f"macro rules: unknown kinds {sorted(unknown)}")
    rules = MacroRules(
        pair_gap=spec.pair_gap,
        negation_scope=spec.negation_scope,
        clause_words=frozenset(spec.clause_words),
        amount_words=frozenset(spec.amount_words),
        attributive=frozenset(_key(p) for p in spec.moves.attributive),
        lead_gaps={k: v.lead_gap for k, v in spec.kinds.items()},
        target_markers=frozenset(spec.target_markers),
        durations={k: v.duration for k, v in spec.kinds.items()},
        kind_needs={k: v.needs for k, v in spec.kinds.items()},
        overrides={
            k: {" ".join(_key(p)): _MOVE_VALUE[m] for p, m in v.overrides.items()}
            for k, v in spec.kinds.items()
        },
        region_order=tuple(r for r in spec.places if r != GLOBAL_PLACE),
        sector_order=tuple(spec.sectors),
        commodity_order=tuple(spec.commodities),
    )
    for region, phrases in spec.places.items():
        names = () if region == GLOBAL_PLACE else (region,)
        for p in phrases:
            rules.add(p, Entry(Role.PLACE, p, names))
    for sector, phrases in spec.sectors.items():
        for p in phrases:
            rules.add(p, Entry(Role.SECTOR, p, (sector,)))
    for commodity, phrases in spec.commodities.items():
        for p in phrases:
            rules.add(p, _named(Role.COMMODITY, p, (commodity,)))
    for p in spec.negators:
        rules.add(p, Entry(Role.NEGATOR, p))
    for p in spec.intensity.up:
        rules.add(p, Entry(Role.INTENSITY, p, value=1.0))
    for p in spec.intensity.down:
        rules.add(p, Entry(Role.INTENSITY, p, value=-1.0))
    strong = {_key(p) for p in spec.moves.strong}
    for name in ("up", "down", "hold"):
        for p in getattr(spec.moves, name):
            rules.add(p, Entry(Role.MOVE, p, value=_MOVE_VALUE[name], strong=_key(p) in strong))
    for name, listed in (("strong", spec.moves.strong), ("attributive", spec.moves.attributive)):
        missing = [p for p in listed if not _is_move(rules, _key(p))]
        if missing:
            raise ValueError(f"macro rules: {name} moves {missing} are not moves")
    for p in spec.fillers:
        rules.add(p, Entry(Role.FILLER, p))
    for kind, kspec in spec.kinds.items():
        for t in kspec.topics:
            if not -1.0 <= t.sign <= 1.0 or not -1.0 <= t.prior <= 1.0:
                raise ValueError(f"macro rules: {kind} topic {t.phrases[:1]}: sign/prior in -1..1")
            topic = Topic(
                kind=kind,
                sign=t.sign,
                prior=t.prior,
                severity=_severity_index(t.severity),
                regions=tuple(t.regions),
                sectors=tuple(t.sectors),
                commodities=tuple(t.commodities),
                needs=t.needs or kspec.needs,
            )
            for p in t.phrases:
                rules.add(p, Entry(Role.TOPIC, p, topic=topic))
    _check_names(spec, rules)
    rules.compile()
    return rules


def _is_move(rules: MacroRules, key: tuple[str, ...]) -> bool:
    """Is ``key`` (as written, or under a regular inflection) a move phrase?"""
    entry = rules.phrases.get(key)
    if entry is None and len(key) == 1:
        entry = next(
            (rules.phrases.get((f,)) for f in forms(key[0]) if (f,) in rules.phrases), None
        )
    return entry is not None and entry.role is Role.MOVE


def _check_names(spec: MacroFile, rules: MacroRules) -> None:
    """Topics may only imply regions, sectors and commodities the file declares."""
    for kind, kspec in spec.kinds.items():
        for t in kspec.topics:
            for names, known in (
                (t.regions, rules.region_order),
                (t.sectors, rules.sector_order),
                (t.commodities, rules.commodity_order),
            ):
                bad = [n for n in names if n not in known]
                if bad:
                    raise ValueError(f"macro rules: {kind} topic {t.phrases[:1]}: unknown {bad}")


def parse_rules(text: str | bytes) -> MacroRules:
    """YAML text -> compiled rules.

    Read with the base loader (every scalar a string, converted to the declared
    types afterwards) because YAML 1.1 would turn the words ``no``, ``on`` and
    ``off`` of the vocabulary into booleans.
    """
    data = yaml.load(text, Loader=yaml.BaseLoader)  # the base loader builds no objects
    return compile_rules(msgspec.convert(data, MacroFile, strict=False))


@lru_cache(maxsize=4)
def load_rules(path: Path = MACRO_YML) -> MacroRules:
    """Read and compile a rules file (once per path)."""
    return parse_rules(path.read_bytes())


# --------------------------------------------------------------------------- detection


@dataclass(frozen=True, slots=True)
class _Hit:
    start: int
    end: int
    entry: Entry


@dataclass(slots=True)
class _Reading:
    topic: Topic
    value: float
    severity: int
    positions: list[int]
    commodities: tuple[str, ...]


class MacroDetector:
    """Reads texts into macro events with one set of rules; construct once, reuse."""

    def __init__(self, rules: MacroRules | None = None) -> None:
        self.rules = rules or load_rules()

    def might_match(self, text: str, words: Collection[str] | None = None) -> bool:
        """The cheap prefilter: does the text hold every word of some topic or commodity?

        Set lookups, ignoring order and clauses: it may pass a text without
        events, never refuse one with an event. ``words``: the text's
        lower-cased words when the caller has them already (see :meth:`detect`).
        """
        seen = _WORD_RE.findall(text.lower()) if words is None else words
        rules = self.rules
        anchors = rules.trigger_words.intersection(seen)
        if not anchors:
            return False
        present = set(seen)
        needs_move = False
        for w in anchors:
            for others, alone in rules.triggers[w]:
                if all(not variants.isdisjoint(present) for variants in others):
                    if alone:
                        return True
                    needs_move = True
        return needs_move and not present.isdisjoint(rules.move_words)

    def detect(self, text: str, words: Collection[str] | None = None) -> list[MacroEvent]:
        """The macro events ``text`` reports, in order of first mention (often none).

        ``words`` (optional) are the lower-cased words of ``text`` as another
        tokenizer already produced them (the lexicon extractor passes its
        tokens); they only feed the prefilter, which saves re-reading the text
        for the many texts without a topic word. A word missing from them can
        hide an event, never invent one.
        """
        if not self.might_match(text, words):
            return []
        norms, texts = split(text)
        hits = self._hits(norms)
        # an event needs a topic with a move word, or a topic that reads alone
        has_move = any(h.entry.role is Role.MOVE for h in hits)
        if not any(h.entry.topic is not None and (has_move or h.entry.topic.prior) for h in hits):
            return []
        return _Reader(self.rules, norms, texts, hits).events()

    def _hits(self, norms: Sequence[str]) -> list[_Hit]:
        """Phrases of the rules in the text, longest first, left to right, not overlapping."""
        out: list[_Hit] = []
        i, n = 0, len(norms)
        by_word = self.rules.by_word
        while i < n:
            best: _Hit | None = None
            for key, entry in by_word.get(norms[i], ()):
                end = i + len(key)
                if end == i + 1 or (end <= n and _rest_matches(key, norms, i)):
                    best = _Hit(i, end, entry)
                    break  # candidates are longest first
            if best is None:
                i += 1
            else:
                out.append(best)
                i = best.end
        return out


def _rest_matches(key: tuple[str, ...], norms: Sequence[str], i: int) -> bool:
    """Do the tokens after ``i`` spell the rest of ``key`` (under regular inflections)?"""
    return all(key[k] in forms(norms[i + k]) for k in range(1, len(key)))


class _Reader:
    """One text's hits turned into readings, then events (internal to :class:`MacroDetector`)."""

    def __init__(
        self, rules: MacroRules, norms: Sequence[str], texts: Sequence[str], hits: Sequence[_Hit]
    ) -> None:
        self.rules = rules
        self.norms = norms
        self.texts = texts
        self.hits = hits
        self.clause = self._clauses()
        self.covered: dict[int, _Hit] = {p: h for h in hits for p in range(h.start, h.end)}

    def _clauses(self) -> list[int]:
        covered = {p for h in self.hits for p in range(h.start, h.end)}
        clause: list[int] = []
        cid = 0
        for i, norm in enumerate(self.norms):
            if norm == BOUNDARY or (i not in covered and norm in self.rules.clause_words):
                cid += 1
            clause.append(cid)
        return clause

    def _content(self, lo: int, hi: int) -> int:
        """Content tokens in [lo, hi): what separates a topic from its move word.

        Fillers, numbers, negators and intensity words do not count ("Fed
        unexpectedly cuts", "Fed will not cut rates").
        """
        n = 0
        for p in range(lo, hi):
            hit = self.covered.get(p)
            if hit is None:
                n += self.norms[p] != NUM
            elif p == hit.start and hit.entry.role not in _MODIFIERS:
                n += 1
        return n

    def _pair_key(self, topic: Topic, t: _Hit, m: _Hit) -> tuple[int, int, int] | None:
        """How well a move word pairs with a topic (smaller is better), or None if it cannot."""
        if t.end <= m.start:
            gap = self._content(t.end, m.start)
            return (gap, 0, m.start - t.end) if gap <= self.rules.pair_gap else None
        if m.end > t.start:
            return None
        gap = self._content(m.end, t.start)
        lead = self.rules.lead_gaps.get(topic.kind)
        if lead is None:
            attributive = self.rules.attributive
            words = tuple(self.norms[m.start : m.end])
            # one word as written ("falling", not "falls"); a phrase in any inflection
            ok = gap == 0 and (
                words in attributive
                or (len(words) > 1 and tuple(m.entry.phrase.split()) in attributive)
            )
        else:
            ok = gap <= lead
        return (gap, 1, t.start - m.end) if ok else None

    @staticmethod
    def _topic_of(hit: _Hit) -> Topic | None:
        """The topic a hit reads as: a topic phrase, or a commodity's price."""
        return hit.entry.topic

    def _pairs(self, topics: Sequence[_Hit], moves: Sequence[_Hit]) -> dict[int, list[_Hit]]:
        """Each move word -> the nearest topic of its clause (topic index -> its moves)."""
        out: dict[int, list[_Hit]] = {}
        for m in moves:
            best, best_key = -1, (1 << 30, 0, 0)
            for i, t in enumerate(topics):
                topic = self._topic_of(t)
                if topic is None or self.clause[t.start] != self.clause[m.start]:
                    continue
                key = self._pair_key(topic, t, m)
                if key is not None and key < best_key:
                    best, best_key = i, key
            if best >= 0:
                out.setdefault(best, []).append(m)
        return out

    def _negator(self, positions: Iterable[int], home: int) -> _Hit | None:
        scope = self.rules.negation_scope
        for h in self.hits:
            if h.entry.role is not Role.NEGATOR or self.clause[h.start] != home:
                continue
            if any(0 <= p - h.end < scope for p in positions):
                return h
        return None

    def _intensity(self, home: int) -> tuple[int, list[int]]:
        level, where = 0, list[int]()
        for h in self.hits:
            if h.entry.role is Role.INTENSITY and self.clause[h.start] == home:
                level += int(h.entry.value)
                where += range(h.start, h.end)
        return max(-1, min(1, level)), where

    def readings(self) -> list[_Reading]:
        """Topic x move (or a topic's prior), negated or intensified, with their context."""
        topics = [h for h in self.hits if self._topic_of(h) is not None and not self._amount(h)]
        moves = [h for h in self.hits if h.entry.role is Role.MOVE]
        pairs = self._pairs(topics, moves)
        out: list[_Reading] = []
        for i, hit in enumerate(topics):
            topic = self._topic_of(hit)
            assert topic is not None
            own = list(range(hit.start, hit.end))
            overrides = self.rules.overrides.get(topic.kind, {})
            found: list[tuple[float, bool, list[int]]] = []
            for m in pairs.get(i, ()):
                move = overrides.get(m.entry.phrase, m.entry.value)
                found.append((topic.sign * move, m.entry.strong, [*own, *range(m.start, m.end)]))
            if not found and topic.prior:
                found.append((topic.prior, False, own))
            home = self.clause[hit.start]
            for value, strong, positions in found:
                negator = self._negator((min(positions), *positions), home)
                if negator is not None:
                    value = 0.0
                    positions = [*positions, *range(negator.start, negator.end)]
                level, where = self._intensity(home)
                severity = max(0, min(2, topic.severity + level + (1 if strong else 0)))
                out.append(
                    _Reading(topic, value, severity, [*positions, *where], self._commodities(hit))
                )
        return [r for r in out if self._satisfied(r)]

    def _amount(self, hit: _Hit) -> bool:
        """A currency named right after a number is a unit ("603 million pounds")."""
        topic = hit.entry.topic
        if topic is None or topic.kind != "currency" or hit.start == 0:
            return False
        before = self.norms[hit.start - 1]
        return before == NUM or before in self.rules.amount_words

    def _commodities(self, hit: _Hit) -> tuple[str, ...]:
        """A commodity reading's commodities: its own, else those named in its clause.

        A supply event stated outright ("pipeline attack", "glut") falls back
        to the commodities of the whole text; a bare "output" or "demand" must
        share a clause with its commodity ("Tesla raises output, oil climbs"
        is no supply event).
        """
        topic = self._topic_of(hit)
        assert topic is not None
        names = list(topic.commodities)
        if topic.kind == "commodity_supply" and hit.entry.role is Role.TOPIC and not names:
            home = self.clause[hit.start]
            names = self._named_commodities(lambda h: self.clause[h.start] == home)
            if not names and topic.prior:
                names = self._named_commodities(lambda h: True)
        order = self.rules.commodity_order
        return tuple(sorted(set(names), key=order.index))

    def _named_commodities(self, where: Callable[[_Hit], bool]) -> list[str]:
        names: list[str] = []
        for h in self.hits:
            if not where(h):
                continue
            if h.entry.topic is not None and h.entry.topic.kind == "commodity_supply":
                names += h.entry.topic.commodities
        return names

    def _satisfied(self, r: _Reading) -> bool:
        need = r.topic.needs
        if need == "commodity" or r.topic.kind == "commodity_supply":
            return bool(r.commodities)
        if need == "place":  # a named region: "world" in "world's largest" places nothing
            return any(h.entry.role is Role.PLACE and h.entry.names for h in self.hits)
        if need == "sector":
            return bool(r.topic.sectors) or any(h.entry.role is Role.SECTOR for h in self.hits)
        return True

    def _places(self, kind: MacroKind) -> list[str]:
        places = [h for h in self.hits if h.entry.role is Role.PLACE]
        if kind in _TARGETED:
            markers = self.rules.target_markers
            targets = [h for h in places if h.start > 0 and self.norms[h.start - 1] in markers]
            places = targets or places
        return [n for h in places for n in h.entry.names]

    def events(self) -> list[MacroEvent]:
        """Readings grouped into one event per kind (per commodity set for commodities)."""
        groups: dict[tuple[MacroKind, tuple[str, ...]], list[_Reading]] = {}
        for r in self.readings():
            key = (r.topic.kind, r.commodities if r.topic.kind == "commodity_supply" else ())
            groups.setdefault(key, []).append(r)
        text_sectors = [n for h in self.hits if h.entry.role is Role.SECTOR for n in h.entry.names]
        out: list[tuple[int, MacroEvent]] = []
        for (kind, commodities), rs in groups.items():
            regions = [n for r in rs for n in r.topic.regions]
            if kind != "currency":
                # every topic of the kind places it ("Bank of England ... rate hike"), and
                # so does the text; a currency is placed by the currencies that moved
                regions += [
                    n
                    for h in self.hits
                    if h.entry.topic is not None and h.entry.topic.kind == kind
                    for n in h.entry.topic.regions
                ]
                regions += self._places(kind)
            sectors = [n for r in rs for n in r.topic.sectors] + text_sectors
            direction = round(sum(r.value for r in rs) / len(rs), 4)
            evidence = [
                " ".join(self.texts[p].strip() for p in sorted(set(r.positions)))
                for r in sorted(rs, key=lambda r: min(r.positions))
            ]
            event = MacroEvent(
                kind=kind,
                severity=SEVERITIES[max(r.severity for r in rs)],
                direction=max(-1.0, min(1.0, direction)) + 0.0,  # + 0.0: no -0.0
                regions=_ordered(regions, self.rules.region_order),
                sectors=_ordered(sectors, self.rules.sector_order),
                commodities=list(commodities),
                expected_duration=self.rules.durations.get(kind, "weeks"),
                evidence=list(dict.fromkeys(evidence)),
            )
            out.append((min(min(r.positions) for r in rs), event))
        out.sort(key=lambda pe: (pe[0], MACRO_KINDS.index(pe[1].kind)))
        return [e for _, e in out]


def _ordered(names: Iterable[str], order: Sequence[str]) -> list[str]:
    present = set(names)
    return [n for n in order if n in present]


@lru_cache(maxsize=1)
def _default_detector() -> MacroDetector:
    return MacroDetector()


def detect_macro_events(text: str) -> list[MacroEvent]:
    """The economy-wide events a text reports, with the bundled rules (often none)."""
    return _default_detector().detect(text)
