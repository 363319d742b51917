"""The source registry: the bundled file loads, covers the exchange, and bad edits fail clearly."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pyarrow.compute as pc
import pytest
import yaml  # type: ignore[import-untyped]

from intelligence.registry import (
    REGISTRY_YML,
    RegistryError,
    default_format,
    exchange_tickers,
    load_registry,
    load_registry_from_settings,
    parse_registry,
    registry_tables,
    render_url,
)
from intelligence.schemas import (
    COMPANIES_SCHEMA,
    COMPETITORS_SCHEMA,
    EXPOSURES_SCHEMA,
    SOURCES_SCHEMA,
)
from streaming.refdata import Security

pytestmark = pytest.mark.unit


Edit = Callable[[dict[str, Any]], object]


def _raw() -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load(REGISTRY_YML.read_text())
    return data


def _problems(data: dict[str, Any], tickers: list[str] | None = None) -> str:
    with pytest.raises(RegistryError) as info:
        parse_registry(yaml.safe_dump(data), tickers=tickers)
    return str(info.value)


def test_bundled_registry_covers_exactly_the_exchange(securities: list[Security]) -> None:
    reg = load_registry()
    assert reg.tickers == tuple(s.symbol for s in securities)
    by_symbol = {s.symbol: s for s in securities}
    for c in reg.companies:
        assert c.sector == by_symbol[c.ticker].sector
        assert c.aliases, c.ticker
        assert c.cik is not None and len(c.cik) == 10
        assert abs(sum(c.regions.values()) - 1) < 0.011
    assert reg.company("XOM").commodities["crude_oil"] > 0  # an oil major gains on oil
    assert reg.company("TSLA").commodities["lithium"] < 0  # a battery maker pays for it
    kinds = {k.relationship for c in reg.companies for k in c.competitors}
    assert kinds == {"direct", "supplier", "customer", "substitute", "partner"}


def test_bundled_sources_resolve_to_absolute_urls() -> None:
    reg = load_registry()
    assert {s.source_type for s in reg.sources} == {
        "rss",
        "news_api",
        "market_api",
        "sec_edgar",
        "web",
    }
    ids = [s.source_id for s in reg.sources]
    assert len(ids) == len(set(ids))
    assert all(s.url.startswith("https://") for s in reg.sources)
    latest = reg.source("sec-latest-filings")
    assert latest.url == "https://www.sec.gov/cgi-bin/browse-edgar?action=getcurrent&output=atom"
    assert latest.format == "xml" and latest.ticker is None
    tsla = reg.source("tsla-sec-submissions")
    assert tsla.url == "https://data.sec.gov/submissions/CIK0001318605.json"
    assert tsla.format == "json" and tsla.ticker == "TSLA"
    aggs = reg.source("aapl-polygon-aggs-1m")
    assert aggs.url.startswith(
        "https://api.polygon.io/v2/aggs/ticker/AAPL/range/1/minute/{from}/{to}"
    )
    news = reg.source("nvda-polygon-news")
    assert "ticker=NVDA" in news.url and news.polling_interval_s == 300  # type default
    assert len(reg.sources_for("AAPL")) == 5 and len(reg.sources_for(None)) == 6


def test_base_urls_are_overridable() -> None:
    reg = load_registry(
        base_urls={"sec_data": "http://127.0.0.1:9/", "polygon": "http://127.0.0.1:9"}
    )
    assert (
        reg.source("tsla-sec-submissions").url
        == "http://127.0.0.1:9/submissions/CIK0001318605.json"
    )
    assert reg.source("aapl-polygon-news").url.startswith("http://127.0.0.1:9/v2/reference/news?")
    assert reg.source("sec-latest-filings").url.startswith("https://www.sec.gov/")  # untouched


def test_registry_from_settings_applies_overrides() -> None:
    settings = SimpleNamespace(intel_base_urls={"ecb": "http://127.0.0.1:1"})
    reg = load_registry_from_settings(settings)
    assert reg.source("ecb-press").url == "http://127.0.0.1:1/rss/press.html"
    assert load_registry_from_settings(object()) == load_registry()


def test_unknown_base_override_is_an_error() -> None:
    with pytest.raises(RegistryError, match="unknown base 'polgon'"):
        load_registry(base_urls={"polgon": "http://x"})


def test_registry_tables_have_the_declared_schemas() -> None:
    reg = load_registry()
    tables = registry_tables(reg)
    assert set(tables) == {"companies", "exposures", "competitors", "sources"}
    assert tables["companies"].schema.equals(COMPANIES_SCHEMA)
    assert tables["exposures"].schema.equals(EXPOSURES_SCHEMA)
    assert tables["competitors"].schema.equals(COMPETITORS_SCHEMA)
    assert tables["sources"].schema.equals(SOURCES_SCHEMA)
    assert tables["companies"].num_rows == 24
    assert tables["sources"].num_rows == len(reg.sources)
    assert tables["competitors"].num_rows == sum(len(c.competitors) for c in reg.companies)
    ex = tables["exposures"].to_pylist()
    assert {"ticker": "XOM", "kind": "commodity", "name": "crude_oil", "weight": 0.9} in ex
    aapl = tables["companies"].filter(pc.equal(tables["companies"]["ticker"], "AAPL"))
    assert aapl.to_pylist()[0]["aliases"] == ["Apple", "Apple Inc"]


def test_every_problem_is_reported_at_once_with_its_location() -> None:
    data = _raw()
    aapl = data["companies"][0]
    aapl["competitors"].append({"ticker": "XYZ", "type": "direct", "strength": 0.5})
    aapl["competitors"][0]["strength"] = 1.5
    aapl["sources"][0]["credibility"] = 2
    data["companies"][1]["sources"][0]["id"] = "aapl-newsroom"
    message = _problems(data)
    assert "companies[0] (AAPL).competitors[7]: unknown ticker 'XYZ'" in message
    assert "companies[0] (AAPL).competitors[0]: strength 1.5 is outside 0..1" in message
    assert "companies[0] (AAPL).sources[0] (aapl-newsroom): credibility 2" in message
    assert "duplicate source id 'aapl-newsroom'" in message
    assert "4 problem(s)" in message


@pytest.mark.parametrize(
    ("edit", "expected"),
    [
        (lambda d: d["companies"].append(dict(d["companies"][0])), "duplicate ticker 'AAPL'"),
        (lambda d: d["companies"].pop(), "missing securities ['SNOW']"),
        (
            lambda d: d["companies"][0]["competitors"].append(
                {"ticker": "AAPL", "type": "direct", "strength": 0.1}
            ),
            "cannot be its own competitor",
        ),
        (
            lambda d: d["companies"][0]["exposure"]["regions"].update(europe=0.5),
            "weights sum to 1.240, not 1",
        ),
        (
            lambda d: d["companies"][0]["exposure"]["regions"].update(mars=0.0),
            "unknown region 'mars'",
        ),
        (
            lambda d: d["companies"][0]["exposure"]["commodities"].update(crude_oil=-1.5),
            "crude_oil: weight -1.5 is outside -1..1",
        ),
        (
            lambda d: d["companies"][1]["aliases"].append("apple"),
            "alias 'apple' is also an alias of AAPL",
        ),
        (
            lambda d: d["companies"][8]["competitors"][0].update(type="supplier"),
            "JPM calls V 'supplier' but V calls JPM 'supplier' (expected 'customer')",
        ),
        (lambda d: d["companies"][0].update(cik="320193"), "must be 10 digits"),
        (
            lambda d: d["global_sources"][0].update(url="{sec_wwww}/x"),
            "unknown placeholder {sec_wwww}",
        ),
        (
            lambda d: d["global_sources"][0].update(url="ftp://x/{ticker}"),
            "unknown placeholder {ticker}",
        ),
        (lambda d: d["global_sources"][0].update(url="www.sec.gov/x"), "is not absolute http(s)"),
        (lambda d: d["global_sources"][0].update(polling_interval_s=0), "must be positive"),
        (lambda d: d["base_urls"].update(polygon="api.polygon.io"), "base_urls.polygon"),
    ],
)
def test_bad_edits_are_rejected_with_a_clear_message(edit: Edit, expected: str) -> None:
    data = _raw()
    edit(data)
    assert expected in _problems(data, tickers=exchange_tickers())


@pytest.mark.parametrize(
    ("edit", "expected"),
    [
        (lambda d: d["companies"][0].update(tickr="AAPL"), "Object contains unknown field `tickr`"),
        (
            lambda d: d["companies"][0]["competitors"][0].update(type="rival"),
            "companies[0].competitors[0].type",
        ),
        (lambda d: d["global_sources"][0].update(type="ftp"), "global_sources[0].type"),
        (
            lambda d: d["global_sources"][0].update(credibility="high"),
            "Expected `float`, got `str`",
        ),
        (lambda d: d.pop("companies"), "missing required field `companies`"),
    ],
)
def test_wrong_shapes_name_the_path(edit: Edit, expected: str) -> None:
    data = _raw()
    edit(data)
    assert expected in _problems(data)


def test_not_yaml_and_missing_file() -> None:
    with pytest.raises(RegistryError, match="not valid YAML"):
        parse_registry("companies: [unclosed")
    with pytest.raises(RegistryError, match="top level must be a mapping"):
        parse_registry("- a\n- b\n")
    with pytest.raises(RegistryError, match="cannot read"):
        load_registry(Path("/nonexistent/registry.yml"))


def test_render_url_and_default_format() -> None:
    assert (
        render_url("{b}/x/{ticker}/{from}", {"b": "http://h", "ticker": "V"}, {"from"})
        == "http://h/x/V/{from}"
    )
    with pytest.raises(ValueError, match="unknown placeholder"):
        render_url("{b}/{to}", {"b": "http://h"}, ())
    with pytest.raises(ValueError, match="malformed"):
        render_url("{b", {}, ())
    assert default_format("sec_edgar", "https://data.sec.gov/submissions/CIK1.json") == "json"
    assert (
        default_format(
            "sec_edgar", "https://www.sec.gov/cgi-bin/browse-edgar?action=getcurrent&output=atom"
        )
        == "xml"
    )
    assert default_format("sec_edgar", "https://www.sec.gov/Archives/x/y.htm") == "any"
    assert default_format("web", "https://x") == "html"
