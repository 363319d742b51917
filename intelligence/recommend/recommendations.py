"""Recommendations: from aggregated trends to an action, a confidence and a mode per company.

Reads the :class:`~intelligence.aggregate.signals.Trend` contract only. Per
company it takes the latest trend of two windows as of the run: the *base*
(7d by default: where the company has been heading) and the *shift* (1d: what
moved since yesterday), and combines them as
``signal = (1 - shift_weight) * base + shift_weight * shift``; the trend
confidence is combined the same way. With only one window present, that one
is used alone.

The rules, in order:

- **watch** when either window flags a contradiction, or the two windows
  point in opposite directions with both at least ``action_signal`` strong;
  also when the evidence is thin (fewer than ``min_documents`` documents);
- **buy** / **sell** when ``|signal| >= action_signal`` and the confidence
  reaches ``action_confidence``; **hold** otherwise (known but weak).
- **confidence** = trend confidence x (0.5 + 0.5 x strength), where strength
  is ``|signal| / full_strength`` capped at 1: a confident trend with a weak
  signal is worth half as much as one with a strong signal.
- **mode**: hold and watch are ``informational``. A buy or sell is
  ``live_eligible`` with confidence >= ``live_confidence``, at least
  ``live_sources`` independent sources and company-led windows (company
  share >= ``company_led_share`` in each), ``paper_eligible`` with
  confidence >= ``paper_confidence``, ``informational`` below.
- **forced informational** (the dominance rule): the shift window (the base
  when there is no shift, or the shift has no layer signal) is measured by
  each layer's share of ``|company| + |macro| + |competitive|``; when the
  company layer's share is under ``negligible_share``, the move comes from
  macro and/or competitive signals only, and the recommendation is forced to
  ``informational`` whatever its confidence, with the reason recorded.
- **dedupe**: one recommendation per company per run; none is issued when
  the company's most recent previous recommendation had the same action and
  mode. ``rec_id`` hashes ticker, trading day, action and mode, so the same
  view on the same day always has the same id.

Pure: the caller passes ``as_of`` and the trading day; no clock, no I/O.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime

import pyarrow as pa

from intelligence.aggregate.signals import LAYERS, Evidence, Trend, Window
from streaming.events import RecAction, RecMode, Recommendation
from streaming.schema import to_table


@dataclass(frozen=True)
class RecommendConfig:
    """Thresholds of the recommendation rules (see the module docstring)."""

    base_window: Window = "7d"
    shift_window: Window = "1d"
    shift_weight: float = 0.4
    action_signal: float = 0.15
    action_confidence: float = 0.35
    full_strength: float = 0.5
    min_documents: int = 2
    paper_confidence: float = 0.45
    live_confidence: float = 0.70
    live_sources: int = 3
    negligible_share: float = 0.10
    company_led_share: float = 0.50
    max_evidence: int = 5
    thesis_titles: int = 3


@dataclass(frozen=True)
class Dominance:
    """Which layers moved a trend: each one's share of the total absolute layer signal."""

    shares: dict[str, float]

    @property
    def total_zero(self) -> bool:
        return not any(self.shares.values())

    def active(self, negligible: float) -> list[str]:
        return [layer for layer in LAYERS if self.shares[layer] >= negligible]

    @property
    def company(self) -> float:
        return self.shares["company"]


def dominance(trend: Trend) -> Dominance:
    """Layer shares of ``trend`` (all zero when no layer has a signal)."""
    mags = {layer: abs(getattr(trend, layer)) for layer in LAYERS}
    total = sum(mags.values())
    if total <= 1e-12:
        return Dominance({layer: 0.0 for layer in LAYERS})
    return Dominance({layer: mags[layer] / total for layer in LAYERS})


def rec_id(ticker: str, trading_day: date, action: str, mode: str) -> str:
    """Stable id of one view on one company on one day."""
    key = f"{ticker}|{trading_day.isoformat()}|{action}|{mode}"
    return hashlib.sha256(key.encode()).hexdigest()[:20]


def _latest(
    trends: Iterable[Trend], as_of: int, windows: tuple[Window, ...]
) -> dict[str, dict[Window, Trend]]:
    """Per ticker and window, the latest trend computed at or before ``as_of``."""
    out: dict[str, dict[Window, Trend]] = {}
    for t in trends:
        if t.window not in windows or t.as_of > as_of:
            continue
        per = out.setdefault(t.ticker, {})
        current = per.get(t.window)
        if current is None or t.as_of >= current.as_of:
            per[t.window] = t
    return out


def _evidence(windows: list[Trend], limit: int) -> list[Evidence]:
    """The strongest distinct documents across the windows (by |contribution|, then doc id)."""
    seen: dict[str, Evidence] = {}
    for t in windows:
        for ev in t.evidence:
            best = seen.get(ev.doc_id)
            if best is None or abs(ev.contribution) > abs(best.contribution):
                seen[ev.doc_id] = ev
    ranked = sorted(seen.values(), key=lambda e: (-abs(e.contribution), e.doc_id))
    return ranked[:limit]


def _title(ev: Evidence) -> str:
    title = ev.title.strip() or ev.doc_id
    return f"“{title}” (via {ev.via})" if ev.via else f"“{title}”"


def recommend(
    trends: Iterable[Trend],
    as_of: int,
    previous: Iterable[Recommendation] = (),
    config: RecommendConfig | None = None,
    *,
    trading_day: date | None = None,
    sectors: Mapping[str, str] | None = None,
) -> list[Recommendation]:
    """One recommendation per company whose view changed, sorted by ticker.

    ``previous`` holds recommendations already issued (any days); a company
    whose most recent one has the same action and mode gets none this run.
    ``trading_day`` defaults to the UTC date of ``as_of``; ``sectors`` maps
    tickers to sectors for the members' sector caps.
    """
    cfg = config or RecommendConfig()
    day = trading_day or datetime.fromtimestamp(as_of / 1e9, UTC).date()
    last: dict[str, Recommendation] = {}
    for prev in previous:
        held = last.get(prev.symbol)
        if held is None or prev.ts >= held.ts:
            last[prev.symbol] = prev
    out: list[Recommendation] = []
    latest = _latest(trends, as_of, (cfg.base_window, cfg.shift_window))
    for ticker in sorted(latest):
        rec = _recommend_one(
            ticker, latest[ticker], as_of, day, (sectors or {}).get(ticker, ""), cfg
        )
        before = last.get(ticker)
        if before is not None and (before.action, before.mode) == (rec.action, rec.mode):
            continue
        out.append(rec)
    return out


def _recommend_one(
    ticker: str,
    windows: dict[Window, Trend],
    as_of: int,
    day: date,
    sector: str,
    cfg: RecommendConfig,
) -> Recommendation:
    base, shift = windows.get(cfg.base_window), windows.get(cfg.shift_window)
    present = [t for t in (shift, base) if t is not None]
    if base is not None and shift is not None:
        w = cfg.shift_weight
        signal = (1 - w) * base.signal + w * shift.signal
        trend_conf = (1 - w) * base.confidence + w * shift.confidence
        window = f"{cfg.base_window}+{cfg.shift_window}"
    else:
        only = present[0]
        signal, trend_conf, window = only.signal, only.confidence, only.window
    documents = max(t.documents for t in present)
    sources = max(t.sources for t in present)
    strength = min(1.0, abs(signal) / cfg.full_strength)
    confidence = round(min(1.0, trend_conf * (0.5 + 0.5 * strength)), 4)
    signal = round(signal, 4)

    disagree = (
        base is not None
        and shift is not None
        and min(abs(base.signal), abs(shift.signal)) >= cfg.action_signal
        and (base.signal > 0) != (shift.signal > 0)
    )
    action: RecAction
    if any(t.contradiction for t in present) or disagree:
        action, reason, note = "watch", "contradiction", "the evidence points both ways"
    elif documents < cfg.min_documents:
        action, reason, note = "watch", "thin_evidence", "too little evidence to act on"
    elif abs(signal) >= cfg.action_signal and confidence >= cfg.action_confidence:
        action, reason, note = ("buy" if signal > 0 else "sell"), "", ""
    else:
        action, reason, note = "hold", "weak_signal", "the signal is too weak to act on"

    measured = shift if shift is not None and not dominance(shift).total_zero else present[-1]
    shares = dominance(measured)
    active = shares.active(cfg.negligible_share)
    driver = "+".join(active) if active else "none"
    mode: RecMode = "informational"
    if action in ("buy", "sell"):
        if not shares.total_zero and shares.company < cfg.negligible_share:
            layers = " and ".join(active)
            reason = (
                f"forced_informational: {measured.window} driven by {layers} only "
                f"(company share {shares.company:.2f} < {cfg.negligible_share:.2f})"
            )
            note = (
                f"informational only, as the {measured.window} move comes from "
                f"{layers} signals, not from the company"
            )
        elif (
            confidence >= cfg.live_confidence
            and sources >= cfg.live_sources
            and all(dominance(t).company >= cfg.company_led_share for t in present)
        ):
            mode = "live_eligible"
        elif confidence >= cfg.paper_confidence:
            mode = "paper_eligible"
        else:
            reason, note = "low_confidence", "informational only, as confidence is low"

    evidence = _evidence(present, cfg.max_evidence)
    signals = []
    if base is not None:
        signals.append(f"{cfg.base_window} signal {base.signal:+.2f}")
    if shift is not None:
        signals.append(f"{cfg.shift_window} shift {shift.signal:+.2f}")
    thesis = (
        f"{action.capitalize()} {ticker}: {', '.join(signals)} (combined {signal:+.2f}), "
        f"confidence {confidence:.2f} from {_count(documents, 'document')} and "
        f"{_count(sources, 'source')}, "
        f"driven by {' and '.join(active) if active else 'no layer in particular'}"
    )
    thesis += f"; {note}." if note else "."
    if evidence:
        titles = "; ".join(_title(ev) for ev in evidence[: cfg.thesis_titles])
        thesis += f" Evidence: {titles}."
    return Recommendation(
        rec_id=rec_id(ticker, day, action, mode),
        symbol=ticker,
        action=action,
        confidence=confidence,
        mode=mode,
        ts=as_of,
        thesis=thesis,
        session_date=day.isoformat(),
        signal=signal,
        window=window,
        driver=driver,
        sector=sector,
        reason=reason,
        evidence=[ev.url or ev.doc_id for ev in evidence],
    )


def recommendations_table(recs: Iterable[Recommendation]) -> pa.Table:
    """Recommendations as an Arrow table with :data:`~intelligence.schemas.RECOMMENDATIONS_SCHEMA`."""
    return to_table(list(recs), Recommendation)


def _count(n: int, noun: str) -> str:
    """``1 source``, ``3 sources``."""
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"
