"""Recorded news: the demo's stories, in Polygon's news shape, dated from the day's close.

A fresh machine has no network and no provider key, yet a newcomer running
``marketlake demo`` should see the intelligence half work: documents,
extractions, trends and recommendations for the next session. So the demo
serves the stories of ``recorded_news.yml`` (written for marketlake) at a
local Polygon-compatible endpoint, and the assets fetch them over HTTP
exactly as they would fetch a real provider. Dates are relative to the
demo day's close, so any day gets the same picture.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Final
from urllib.parse import parse_qs, urlsplit

import msgspec
import yaml

RECORDED_NEWS_YML: Final = Path(__file__).with_name("recorded_news.yml")
NS_PER_MINUTE: Final = 60_000_000_000


class Story(msgspec.Struct, frozen=True, kw_only=True):
    """One recorded story; ``minutes_before_close`` < 0 is published after the close."""

    id: str
    ticker: str
    publisher: str
    minutes_before_close: int
    title: str
    description: str


class _File(msgspec.Struct, frozen=True):
    stories: list[Story]


def load_stories(path: Path = RECORDED_NEWS_YML) -> list[Story]:
    """The recorded stories; an unknown or missing field is an error naming the file."""
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
        return msgspec.convert(raw, _File).stories
    except (msgspec.ValidationError, yaml.YAMLError) as exc:
        raise ValueError(f"{path.name}: {exc}") from None


def published_ns(story: Story, close_ns: int) -> int:
    """When ``story`` was published, for a day that closes at ``close_ns``."""
    return close_ns - story.minutes_before_close * NS_PER_MINUTE


def polygon_news_page(stories: list[Story], close_ns: int, target: str) -> bytes:
    """The ``/v2/reference/news`` answer for a request target: newest first, one page.

    ``ticker=`` in the query keeps that company's stories; without it, all of
    them (the market-wide feed). Stories from after the close are served too,
    as a live feed would: the assets themselves leave them out of that day.
    """
    query = parse_qs(urlsplit(target).query)
    tickers = query.get("ticker")
    ticker = tickers[0] if tickers else None
    chosen = [s for s in stories if ticker is None or s.ticker == ticker]
    chosen.sort(key=lambda s: (s.minutes_before_close, s.id))  # newest first
    results = [
        {
            "id": s.id,
            "publisher": {"name": s.publisher},
            "title": s.title,
            "description": s.description,
            "published_utc": datetime.fromtimestamp(published_ns(s, close_ns) / 1e9, UTC)
            .isoformat()
            .replace("+00:00", "Z"),
            "article_url": f"https://news.example.com/{s.id}",
            "tickers": [s.ticker],
        }
        for s in chosen
    ]
    return msgspec.json.encode({"status": "OK", "count": len(results), "results": results})
