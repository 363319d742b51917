"""The demo's recorded news: valid stories about tracked companies, served in Polygon's shape."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from intelligence.ingest.recorded_news import (
    NS_PER_MINUTE,
    Story,
    load_stories,
    polygon_news_page,
    published_ns,
)
from intelligence.registry import load_registry

pytestmark = pytest.mark.unit

CLOSE_NS = 1_763_672_400_000_000_000  # 2025-11-20T21:00:00Z


def test_stories_are_about_tracked_companies_and_unique() -> None:
    stories = load_stories()
    tickers = {c.ticker for c in load_registry().companies}
    assert len(stories) >= 10
    assert {s.ticker for s in stories} <= tickers
    assert len({s.id for s in stories}) == len(stories)
    assert any(s.minutes_before_close < 0 for s in stories)  # one lands after the close


def test_a_ticker_query_keeps_that_company_newest_first() -> None:
    stories = load_stories()
    page = json.loads(
        polygon_news_page(stories, CLOSE_NS, "/v2/reference/news?ticker=AAPL&limit=50")
    )
    results = page["results"]
    assert page["status"] == "OK" and page["count"] == len(results) > 0
    assert {r["tickers"][0] for r in results} == {"AAPL"}
    published = [r["published_utc"] for r in results]
    assert published == sorted(published, reverse=True)
    everything = json.loads(polygon_news_page(stories, CLOSE_NS, "/v2/reference/news?limit=100"))
    assert everything["count"] == len(stories)


def test_dates_follow_the_close() -> None:
    story = Story(id="x", ticker="AAPL", publisher="P", minutes_before_close=90,
                  title="t", description="d")  # fmt: skip
    assert published_ns(story, CLOSE_NS) == CLOSE_NS - 90 * NS_PER_MINUTE
    page = json.loads(polygon_news_page([story], CLOSE_NS, "/v2/reference/news"))
    assert page["results"][0]["published_utc"] == "2025-11-20T19:30:00Z"


def test_a_bad_file_names_itself(tmp_path: Path) -> None:
    path = tmp_path / "news.yml"
    path.write_text("stories:\n  - id: a\n    ticker: AAPL\n", encoding="utf-8")
    with pytest.raises(ValueError, match=r"news\.yml"):
        load_stories(path)
