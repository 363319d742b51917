"""Incremental technical indicators (RSI, Bollinger position, MACD) over a price series.

Incremental so the simulator pays O(1) per update; pure and deterministic.
"""

from __future__ import annotations

import math
from collections import deque


class Indicators:
    """RSI(14) with Wilder smoothing, Bollinger(20, 2) position, MACD(12, 26, 9) histogram."""

    __slots__ = (
        "_avg_gain",
        "_avg_loss",
        "_ema_fast",
        "_ema_signal",
        "_ema_slow",
        "_last",
        "_n",
        "_sum",
        "_sumsq",
        "_window",
    )

    RSI_N = 14
    BB_N = 20
    BB_K = 2.0

    def __init__(self) -> None:
        self._last: float | None = None
        self._avg_gain = 0.0
        self._avg_loss = 0.0
        self._n = 0
        self._window: deque[float] = deque()
        self._sum = 0.0
        self._sumsq = 0.0
        self._ema_fast: float | None = None
        self._ema_slow: float | None = None
        self._ema_signal: float | None = None

    def update(self, price: float) -> None:
        if self._last is not None:
            change = price - self._last
            gain, loss = max(change, 0.0), max(-change, 0.0)
            self._n += 1
            n = min(self._n, self.RSI_N)
            self._avg_gain += (gain - self._avg_gain) / n
            self._avg_loss += (loss - self._avg_loss) / n
        self._last = price
        self._window.append(price)
        self._sum += price
        self._sumsq += price * price
        if len(self._window) > self.BB_N:
            old = self._window.popleft()
            self._sum -= old
            self._sumsq -= old * old
        self._ema_fast = _ema(self._ema_fast, price, 12)
        self._ema_slow = _ema(self._ema_slow, price, 26)
        self._ema_signal = _ema(self._ema_signal, self._ema_fast - self._ema_slow, 9)

    @property
    def rsi(self) -> float:
        """0..100; 50 until there is movement."""
        if self._avg_gain + self._avg_loss == 0:
            return 50.0
        return 100.0 * self._avg_gain / (self._avg_gain + self._avg_loss)

    @property
    def bollinger_position(self) -> float:
        """-1 at the lower band, +1 at the upper band, 0 at the mean (unclipped)."""
        n = len(self._window)
        if n < 2 or self._last is None:
            return 0.0
        mean = self._sum / n
        var = max(self._sumsq / n - mean * mean, 0.0)
        width = self.BB_K * math.sqrt(var)
        return 0.0 if width == 0 else (self._last - mean) / width

    @property
    def macd_histogram(self) -> float:
        """MACD line minus its signal line (momentum: > 0 rising)."""
        if self._ema_fast is None or self._ema_slow is None or self._ema_signal is None:
            return 0.0
        return (self._ema_fast - self._ema_slow) - self._ema_signal


def _ema(prev: float | None, value: float, span: int) -> float:
    if prev is None:
        return value
    alpha = 2.0 / (span + 1)
    return prev + alpha * (value - prev)
