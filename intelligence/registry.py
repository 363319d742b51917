"""The source registry: tracked companies, their exposures and rivals, and where news comes from.

The registry is a YAML file kept in the repository (``registry.yml`` next to
this module) so a change of sources or relationships is reviewed like code.
Loading is two steps: msgspec converts the YAML into typed Structs (wrong
types and unknown keys fail with the path of the offending value), then
:func:`validate` checks what types cannot: tickers that exist, weights in
range, ids that are unique, URL templates that resolve. Every problem is
reported at once, each line naming where it is, so a bad edit is fixed in
one pass instead of one error per run.

Base URLs are named (``sec_www``, ``polygon``, ...) and every source URL is a
template over them, so settings (or a test) can point a whole provider at
another host, such as a local replay server, without editing the file.
:func:`registry_tables` gives the registry as Arrow tables for the lake.
"""

from __future__ import annotations

import string
from collections.abc import Collection, Iterable, Mapping
from pathlib import Path
from typing import Any, Literal, get_args

import msgspec
import pyarrow as pa
import yaml

from intelligence.config import as_settings
from intelligence.documents import SourceType
from intelligence.parse.parsing import CompanyNames
from intelligence.schemas import (
    COMPANIES_SCHEMA,
    COMPETITORS_SCHEMA,
    EXPOSURES_SCHEMA,
    SOURCES_SCHEMA,
)

REGISTRY_YML = Path(__file__).with_name("registry.yml")

Relationship = Literal["direct", "supplier", "customer", "substitute", "partner"]
Format = Literal["json", "xml", "html", "any"]

SOURCE_TYPES: tuple[SourceType, ...] = get_args(SourceType)
RELATIONSHIPS: tuple[Relationship, ...] = get_args(Relationship)

# What the other side of a relationship must say when both companies list each
# other: if Apple says Foxconn is its supplier, Foxconn must call Apple a customer.
INVERSE: dict[Relationship, Relationship] = {
    "direct": "direct",
    "supplier": "customer",
    "customer": "supplier",
    "substitute": "substitute",
    "partner": "partner",
}

# Placeholders filled at fetch time (by ingestion), not at load time.
RUNTIME_PARAMS = frozenset({"from", "to"})
# Placeholders a per-company template may use, besides the base URL names.
COMPANY_PARAMS = frozenset({"ticker", "cik", "cik_int"})
REGION_WEIGHT_TOLERANCE = 0.011


class RegistryError(ValueError):
    """The registry file is invalid; the message lists every problem with its location."""

    def __init__(self, source: str, problems: list[str]) -> None:
        self.problems = problems
        lines = "\n".join(f"  - {p}" for p in problems)
        super().__init__(f"{source}: {len(problems)} problem(s)\n{lines}")


# --- the YAML as written -------------------------------------------------------------------


class _Spec(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """Base of the file-shape Structs: a misspelt key is an error, never silently ignored."""


class SourceSpec(_Spec):
    id: str
    type: SourceType
    url: str
    credibility: float
    polling_interval_s: int | None = None
    format: Format | None = None
    requires: list[Literal["cik"]] = msgspec.field(default_factory=list)


class ExposureSpec(_Spec):
    regions: dict[str, float] = msgspec.field(default_factory=dict)
    commodities: dict[str, float] = msgspec.field(default_factory=dict)


class CompetitorSpec(_Spec):
    ticker: str
    type: Relationship
    strength: float


class CompanySpec(_Spec):
    ticker: str
    legal_name: str
    sector: str
    industry: str
    aliases: list[str] = msgspec.field(default_factory=list)
    cik: str | None = None
    exposure: ExposureSpec = msgspec.field(default_factory=ExposureSpec)
    competitors: list[CompetitorSpec] = msgspec.field(default_factory=list)
    sources: list[SourceSpec] = msgspec.field(default_factory=list)


class RegistryFile(_Spec):
    version: int
    base_urls: dict[str, str]
    regions: list[str]
    commodities: list[str]
    polling_defaults_s: dict[SourceType, int]
    companies: list[CompanySpec]
    global_sources: list[SourceSpec] = msgspec.field(default_factory=list)
    per_company_sources: list[SourceSpec] = msgspec.field(default_factory=list)


# --- the registry as used ------------------------------------------------------------------


class Competitor(msgspec.Struct, frozen=True, kw_only=True):
    """``ticker`` is a ``relationship`` of the company listing it, with ``strength`` in 0..1."""

    ticker: str
    relationship: Relationship
    strength: float


class Company(msgspec.Struct, frozen=True, kw_only=True):
    """A tracked company: one of the exchange's securities."""

    ticker: str
    legal_name: str
    aliases: tuple[str, ...]
    sector: str
    industry: str
    cik: str | None
    regions: dict[str, float]  # revenue share by region, sums to 1
    commodities: dict[str, float]  # signed sensitivity to a price rise, -1..1
    competitors: tuple[Competitor, ...]


class Source(msgspec.Struct, frozen=True, kw_only=True):
    """A place to poll. ``url`` is absolute; it may keep the fetch-time ``{from}``/``{to}``."""

    source_id: str
    source_type: SourceType
    url: str
    polling_interval_s: int
    credibility: float
    format: Format
    ticker: str | None = None  # None: a global source (market news, latest filings, macro)


class Registry(msgspec.Struct, frozen=True, kw_only=True):
    """The validated registry: companies in file order, sources with resolved URLs."""

    version: int
    base_urls: dict[str, str]
    regions: tuple[str, ...]
    commodities: tuple[str, ...]
    companies: tuple[Company, ...]
    sources: tuple[Source, ...]

    @property
    def tickers(self) -> tuple[str, ...]:
        return tuple(c.ticker for c in self.companies)

    def company(self, ticker: str) -> Company:
        """The company with this ticker; KeyError if it is not tracked."""
        for c in self.companies:
            if c.ticker == ticker:
                return c
        raise KeyError(ticker)

    def source(self, source_id: str) -> Source:
        """The source with this id; KeyError if there is none."""
        for s in self.sources:
            if s.source_id == source_id:
                return s
        raise KeyError(source_id)

    def sources_for(self, ticker: str | None) -> tuple[Source, ...]:
        """The sources about one company (``None``: the global ones)."""
        return tuple(s for s in self.sources if s.ticker == ticker)


def company_names(registry: Registry) -> list[CompanyNames]:
    """What parsing (and a model's answer check) needs of each company to find it in text."""
    return [
        CompanyNames(
            ticker=c.ticker, names=(c.legal_name, *c.aliases), cik=int(c.cik) if c.cik else None
        )
        for c in registry.companies
    ]


# --- loading and validation ----------------------------------------------------------------


def default_format(source_type: SourceType, url: str) -> Format:
    """What a source's payload should be when the file does not say.

    SEC EDGAR serves JSON (submissions), Atom (latest filings) and HTML/text
    (filing documents) under one type, so its format follows the URL.
    """
    if source_type == "rss":
        return "xml"
    if source_type in ("news_api", "market_api"):
        return "json"
    if source_type == "web":
        return "html"
    path = url.split("?", 1)[0]
    if path.endswith(".json"):
        return "json"
    if "output=atom" in url or path.endswith((".xml", ".atom")):
        return "xml"
    return "any"


def render_url(template: str, values: Mapping[str, str], keep: Collection[str]) -> str:
    """Fill ``{name}`` placeholders from ``values``; leave ``keep`` ones as they are.

    Any other placeholder is an error, so a typo (``{tickr}``) is caught when
    the registry loads, not as a 404 at three in the morning.
    """
    out: list[str] = []
    try:
        parsed = list(string.Formatter().parse(template))
    except ValueError as exc:  # an unbalanced brace
        raise ValueError(f"malformed template {template!r}: {exc}") from None
    for literal, field, spec, conv in parsed:
        out.append(literal)
        if field is None:
            continue
        if spec or conv:
            raise ValueError(f"placeholder {{{field}}} in {template!r} may not carry a format")
        if field in values:
            out.append(values[field])
        elif field in keep:
            out.append("{" + field + "}")
        else:
            raise ValueError(f"unknown placeholder {{{field}}} in {template!r}")
    return "".join(out)


def _check_url(url: str) -> str | None:
    if not url.startswith(("http://", "https://")):
        return f"url {url!r} is not absolute http(s)"
    return None


def _in_unit(value: float, low: float = 0.0, high: float = 1.0) -> bool:
    return low <= value <= high


def _resolve_source(
    spec: SourceSpec,
    *,
    where: str,
    source_id: str,
    values: Mapping[str, str],
    polling_defaults: Mapping[SourceType, int],
    ticker: str | None,
    problems: list[str],
) -> Source | None:
    n = len(problems)
    if not _in_unit(spec.credibility):
        problems.append(f"{where}: credibility {spec.credibility} is outside 0..1")
    interval = spec.polling_interval_s
    if interval is None:
        interval = polling_defaults.get(spec.type)
        if interval is None:
            problems.append(f"{where}: no polling_interval_s and no default for {spec.type!r}")
    if interval is not None and interval <= 0:
        problems.append(f"{where}: polling_interval_s must be positive, got {interval}")
    url = ""
    try:
        url = render_url(spec.url, values, RUNTIME_PARAMS)
    except ValueError as exc:
        problems.append(f"{where}: {exc}")
    else:
        bad = _check_url(url)
        if bad:
            problems.append(f"{where}: {bad}")
    if len(problems) > n or interval is None:
        return None
    return Source(
        source_id=source_id,
        source_type=spec.type,
        url=url,
        polling_interval_s=interval,
        credibility=spec.credibility,
        format=spec.format or default_format(spec.type, url),
        ticker=ticker,
    )


def _validate_company(
    i: int, spec: CompanySpec, reg: RegistryFile, known: set[str], problems: list[str]
) -> None:
    where = f"companies[{i}] ({spec.ticker})"
    if not spec.ticker or spec.ticker != spec.ticker.strip().upper():
        problems.append(f"{where}: ticker must be upper case without spaces")
    if not spec.legal_name.strip():
        problems.append(f"{where}: legal_name is empty")
    if spec.cik is not None and not (len(spec.cik) == 10 and spec.cik.isdigit()):
        problems.append(f"{where}: cik {spec.cik!r} must be 10 digits (zero-padded)")
    regions = spec.exposure.regions
    for name, w in regions.items():
        if name not in reg.regions:
            problems.append(f"{where}.exposure.regions: unknown region {name!r}")
        if not _in_unit(w):
            problems.append(f"{where}.exposure.regions.{name}: weight {w} is outside 0..1")
    if regions and abs(sum(regions.values()) - 1.0) > REGION_WEIGHT_TOLERANCE:
        problems.append(
            f"{where}.exposure.regions: weights sum to {sum(regions.values()):.3f}, not 1"
        )
    for name, w in spec.exposure.commodities.items():
        if name not in reg.commodities:
            problems.append(f"{where}.exposure.commodities: unknown commodity {name!r}")
        if not _in_unit(w, -1.0, 1.0):
            problems.append(f"{where}.exposure.commodities.{name}: weight {w} is outside -1..1")
    seen: set[str] = set()
    for j, comp in enumerate(spec.competitors):
        cw = f"{where}.competitors[{j}]"
        if comp.ticker not in known:
            problems.append(f"{cw}: unknown ticker {comp.ticker!r}")
        if comp.ticker == spec.ticker:
            problems.append(f"{cw}: a company cannot be its own competitor")
        if comp.ticker in seen:
            problems.append(f"{cw}: {comp.ticker} is listed twice")
        seen.add(comp.ticker)
        if not _in_unit(comp.strength):
            problems.append(f"{cw}: strength {comp.strength} is outside 0..1")


def _check_inverse(companies: list[CompanySpec], problems: list[str]) -> None:
    rel = {(c.ticker, k.ticker): k.type for c in companies for k in c.competitors}
    for (a, b), kind in rel.items():
        back = rel.get((b, a))
        if back is not None and back != INVERSE[kind] and a < b:
            problems.append(
                f"competitors: {a} calls {b} {kind!r} but {b} calls {a} {back!r} "
                f"(expected {INVERSE[kind]!r})"
            )


def _check_aliases(companies: list[CompanySpec], problems: list[str]) -> None:
    owner: dict[str, str] = {}
    for c in companies:
        for alias in c.aliases:
            key = alias.casefold().strip()
            if not key:
                problems.append(f"{c.ticker}: empty alias")
                continue
            if key in owner and owner[key] != c.ticker:
                problems.append(
                    f"{c.ticker}: alias {alias!r} is also an alias of {owner[key]} (ambiguous)"
                )
            owner[key] = c.ticker


def validate(
    reg: RegistryFile,
    *,
    base_urls: Mapping[str, str] | None = None,
    tickers: Collection[str] | None = None,
    source: str = "registry",
) -> Registry:
    """Check a parsed registry file and resolve it; RegistryError lists every problem.

    ``base_urls`` override the file's (only names the file declares, so a
    misspelt override fails instead of being ignored). ``tickers``, when given,
    is the exact set of companies the file must cover: the exchange's securities.
    """
    problems: list[str] = []
    bases = dict(reg.base_urls)
    for name, url in (base_urls or {}).items():
        if name not in bases:
            problems.append(f"base_urls override: unknown base {name!r} (known: {sorted(bases)})")
        bases[name] = url
    for name, url in bases.items():
        bad = _check_url(url)
        if bad:
            problems.append(f"base_urls.{name}: {bad}")
    bases = {k: v.rstrip("/") for k, v in bases.items()}

    companies_seen: dict[str, int] = {}
    for i, c in enumerate(reg.companies):
        if c.ticker in companies_seen:
            problems.append(
                f"companies[{i}]: duplicate ticker {c.ticker!r} "
                f"(first at companies[{companies_seen[c.ticker]}])"
            )
        companies_seen.setdefault(c.ticker, i)
    known = set(companies_seen)
    if tickers is not None:
        missing = sorted(set(tickers) - known)
        extra = sorted(known - set(tickers))
        if missing:
            problems.append(f"companies: missing securities {missing}")
        if extra:
            problems.append(f"companies: {extra} are not securities of the exchange")
    for i, c in enumerate(reg.companies):
        _validate_company(i, c, reg, known, problems)
    _check_inverse(reg.companies, problems)
    _check_aliases(reg.companies, problems)

    sources: list[Source] = []
    ids: dict[str, str] = {}

    def add(
        spec: SourceSpec, where: str, sid: str, values: Mapping[str, str], tk: str | None
    ) -> None:
        if sid in ids:
            problems.append(f"{where}: duplicate source id {sid!r} (first at {ids[sid]})")
            return
        ids[sid] = where
        src = _resolve_source(
            spec,
            where=where,
            source_id=sid,
            values=values,
            polling_defaults=reg.polling_defaults_s,
            ticker=tk,
            problems=problems,
        )
        if src is not None:
            sources.append(src)

    for i, s in enumerate(reg.global_sources):
        where = f"global_sources[{i}] ({s.id})"
        if s.requires:
            problems.append(f"{where}: 'requires' only applies to per_company_sources")
        add(s, where, s.id, bases, None)
    for i, c in enumerate(reg.companies):
        values = {**bases, "ticker": c.ticker}
        if c.cik is not None and c.cik.isdigit():
            values |= {"cik": c.cik, "cik_int": str(int(c.cik))}
        for j, s in enumerate(reg.per_company_sources):
            if "cik" in s.requires and c.cik is None:
                continue
            add(
                s,
                f"per_company_sources[{j}] ({s.id}) for {c.ticker}",
                f"{c.ticker.lower()}-{s.id}",
                values,
                c.ticker,
            )
        for j, s in enumerate(c.sources):
            add(s, f"companies[{i}] ({c.ticker}).sources[{j}] ({s.id})", s.id, values, c.ticker)

    if problems:
        raise RegistryError(source, problems)
    return Registry(
        version=reg.version,
        base_urls=bases,
        regions=tuple(reg.regions),
        commodities=tuple(reg.commodities),
        companies=tuple(
            Company(
                ticker=c.ticker,
                legal_name=c.legal_name,
                aliases=tuple(c.aliases),
                sector=c.sector,
                industry=c.industry,
                cik=c.cik,
                regions=dict(c.exposure.regions),
                commodities=dict(c.exposure.commodities),
                competitors=tuple(
                    Competitor(ticker=k.ticker, relationship=k.type, strength=k.strength)
                    for k in c.competitors
                ),
            )
            for c in reg.companies
        ),
        sources=tuple(sources),
    )


def parse_registry(
    text: str | bytes,
    *,
    base_urls: Mapping[str, str] | None = None,
    tickers: Collection[str] | None = None,
    source: str = "registry",
) -> Registry:
    """YAML text -> a validated Registry (see :func:`validate`)."""
    try:
        data: Any = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise RegistryError(source, [f"not valid YAML: {exc}"]) from None
    if not isinstance(data, dict):
        raise RegistryError(source, ["the top level must be a mapping"])
    try:
        reg = msgspec.convert(data, RegistryFile)
    except msgspec.ValidationError as exc:
        raise RegistryError(source, [str(exc)]) from None
    return validate(reg, base_urls=base_urls, tickers=tickers, source=source)


def exchange_tickers() -> list[str]:
    """The exchange's securities (streaming/refdata): the companies the registry must cover."""
    from streaming.refdata import load_securities

    return [s.symbol for s in load_securities()]


def load_registry(
    path: Path | str | None = None,
    *,
    base_urls: Mapping[str, str] | None = None,
    tickers: Collection[str] | None = None,
) -> Registry:
    """Load and validate a registry file (default: the bundled ``registry.yml``).

    With the bundled file and no ``tickers``, the companies must be exactly the
    exchange's securities: news is only useful for what members can trade.
    """
    p = Path(path) if path is not None else REGISTRY_YML
    if tickers is None and path is None:
        tickers = exchange_tickers()
    try:
        text = p.read_bytes()
    except OSError as exc:
        raise RegistryError(str(p), [f"cannot read: {exc.strerror or exc}"]) from None
    return parse_registry(text, base_urls=base_urls, tickers=tickers, source=str(p))


class RegistryConfig(msgspec.Struct, frozen=True, kw_only=True):
    """Which registry the platform runs with, and where its providers are.

    ``path`` is the YAML file (None: the bundled ``registry.yml``, checked
    against the exchange's securities); ``base_urls`` override the file's named
    base URLs, so a deployment, or a test pointing every provider at a local
    server, configures it without editing the YAML.
    """

    path: Path | None = None
    base_urls: dict[str, str] = msgspec.field(default_factory=dict)

    @classmethod
    def from_settings(cls, settings: object) -> RegistryConfig:
        """``intel_registry_yml`` and ``intel_base_urls`` of the platform's Settings."""
        s = as_settings(settings)
        return cls(path=s.intel_registry_yml, base_urls=dict(s.intel_base_urls))

    def load(self) -> Registry:
        """The validated registry (see :func:`load_registry`)."""
        return load_registry(self.path, base_urls=self.base_urls)


def load_registry_from_settings(settings: object) -> Registry:
    """``RegistryConfig.from_settings(settings).load()``, for callers holding the Settings."""
    return RegistryConfig.from_settings(settings).load()


# --- Arrow tables for the lake -------------------------------------------------------------


def _table(rows: Iterable[dict[str, Any]], schema: pa.Schema) -> pa.Table:
    return pa.Table.from_pylist(list(rows), schema=schema)


def registry_tables(reg: Registry) -> dict[str, pa.Table]:
    """The registry as four Arrow tables (companies, exposures, competitors, sources).

    Long format for exposures and competitors (one row per pair) so SQL can
    join them to signals without unnesting; the order follows the file.
    """
    return {
        "companies": _table(
            (
                {
                    "ticker": c.ticker,
                    "legal_name": c.legal_name,
                    "aliases": list(c.aliases),
                    "sector": c.sector,
                    "industry": c.industry,
                    "cik": c.cik,
                }
                for c in reg.companies
            ),
            COMPANIES_SCHEMA,
        ),
        "exposures": _table(
            (
                {"ticker": c.ticker, "kind": kind, "name": name, "weight": w}
                for c in reg.companies
                for kind, weights in (("region", c.regions), ("commodity", c.commodities))
                for name, w in weights.items()
            ),
            EXPOSURES_SCHEMA,
        ),
        "competitors": _table(
            (
                {
                    "ticker": c.ticker,
                    "competitor": k.ticker,
                    "relationship": k.relationship,
                    "strength": k.strength,
                }
                for c in reg.companies
                for k in c.competitors
            ),
            COMPETITORS_SCHEMA,
        ),
        "sources": _table(
            (
                {
                    "source_id": s.source_id,
                    "source_type": s.source_type,
                    "ticker": s.ticker,
                    "url": s.url,
                    "polling_interval_s": s.polling_interval_s,
                    "credibility": s.credibility,
                    "format": s.format,
                }
                for s in reg.sources
            ),
            SOURCES_SCHEMA,
        ),
    }
