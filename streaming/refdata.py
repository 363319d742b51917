"""Reference data: the securities, members and calendar the exchange is configured with.

This is the one adapter in ``streaming/`` that reads files; the domain modules
receive the parsed objects. Users can point at their own files (``--securities``).
"""

from __future__ import annotations

import csv
import tomllib
from collections.abc import Iterable
from datetime import date, time
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Literal, cast, get_args

import msgspec

from streaming.calendar import TradingCalendar
from streaming.events import to_price

REFDATA_DIR = Path(__file__).with_name("refdata")
SECURITIES_CSV = REFDATA_DIR / "securities.csv"
MEMBERS_CSV = REFDATA_DIR / "members.csv"
CALENDAR_TOML = REFDATA_DIR / "calendar.toml"


class Security(msgspec.Struct, frozen=True):
    """A listed instrument; ``tick`` and ``reference_price`` are in price units."""

    symbol: str
    tick: int
    lot: int
    reference_price: int
    name: str = ""
    sector: str = ""
    currency: str = "EUR"


StrategyName = Literal["rules", "advice"]
RiskTier = Literal["conservative", "moderate", "aggressive"]
STRATEGIES: tuple[StrategyName, ...] = get_args(StrategyName)
RISK_TIERS: tuple[RiskTier, ...] = get_args(RiskTier)


class Member(msgspec.Struct, frozen=True):
    """A participant; ``kind`` is ``clearing`` (has capital) or ``liquidity`` (simulator).

    ``strategy`` says how a clearing member trades: ``rules`` (the rule-based
    strategy) or ``advice`` (follows recommendations at its ``risk_tier``, and
    falls back to the rules otherwise). Both columns are optional in the file.
    """

    member_id: str
    name: str
    kind: str
    capital: int
    currency: str
    strategy: StrategyName = "rules"
    risk_tier: RiskTier = "moderate"


class RefDataError(ValueError):
    """A reference data file is malformed; the message names file, row and column."""


REQUIRED_SECURITY_COLUMNS = ("symbol", "tick_size", "lot_size", "reference_price")


def _decimal(value: str, where: str) -> Decimal:
    try:
        return Decimal(value.strip())
    except (InvalidOperation, AttributeError):
        raise RefDataError(f"{where}: {value!r} is not a number") from None


def parse_securities(rows: Iterable[dict[str, str]], source: str = "securities") -> list[Security]:
    """Validate rows of a securities table (symbol,tick_size,lot_size,reference_price,...)."""
    out: list[Security] = []
    seen: set[str] = set()
    for i, row in enumerate(rows, start=2):
        missing = [c for c in REQUIRED_SECURITY_COLUMNS if not (row.get(c) or "").strip()]
        if missing:
            raise RefDataError(f"{source} row {i}: missing {', '.join(missing)}")
        symbol = row["symbol"].strip()
        if symbol in seen:
            raise RefDataError(f"{source} row {i}: duplicate symbol {symbol}")
        seen.add(symbol)
        tick_d = _decimal(row["tick_size"], f"{source} row {i} tick_size")
        tick = to_price(tick_d)
        if tick <= 0 or Decimal(tick) != tick_d * 10_000:
            raise RefDataError(
                f"{source} row {i}: tick_size {tick_d} is not a positive multiple of 0.0001"
            )
        lot = int(_decimal(row["lot_size"], f"{source} row {i} lot_size"))
        if lot <= 0:
            raise RefDataError(f"{source} row {i}: lot_size must be a positive integer")
        ref = to_price(_decimal(row["reference_price"], f"{source} row {i} reference_price"))
        if ref <= 0 or ref % tick:
            raise RefDataError(
                f"{source} row {i}: reference_price is not a positive multiple of the tick"
            )
        out.append(
            Security(
                symbol=symbol,
                tick=tick,
                lot=lot,
                reference_price=ref,
                name=(row.get("name") or "").strip(),
                sector=(row.get("sector") or "").strip(),
                currency=(row.get("currency") or "EUR").strip(),
            )
        )
    if not out:
        raise RefDataError(f"{source}: no securities")
    return out


def load_securities(path: Path | str | None = None) -> list[Security]:
    """Securities from a CSV file (the shipped list when ``path`` is None)."""
    p = Path(path) if path else SECURITIES_CSV
    with p.open(newline="") as fh:
        return parse_securities(csv.DictReader(fh), source=p.name)


def _choice(
    row: dict[str, str], column: str, allowed: tuple[str, ...], default: str, where: str
) -> str:
    """An optional enumerated column: blank or absent gives ``default``."""
    value = (row.get(column) or "").strip() or default
    if value not in allowed:
        raise RefDataError(f"{where} {column}: {value!r} is not one of {', '.join(allowed)}")
    return value


def parse_members(rows: Iterable[dict[str, str]], source: str = "members") -> list[Member]:
    """Validate rows of a members table.

    Columns: member_id, name, kind, capital, currency, and optionally strategy
    (``rules`` when blank) and risk_tier (``moderate`` when blank), so a file
    written before followers existed still loads.
    """
    out: list[Member] = []
    for i, r in enumerate(rows, start=2):
        where = f"{source} row {i}"
        out.append(
            Member(
                member_id=r["member_id"].strip(),
                name=r["name"].strip(),
                kind=r["kind"].strip(),
                capital=to_price(r["capital"]),
                currency=r["currency"].strip(),
                strategy=cast(StrategyName, _choice(r, "strategy", STRATEGIES, "rules", where)),
                risk_tier=cast(RiskTier, _choice(r, "risk_tier", RISK_TIERS, "moderate", where)),
            )
        )
    return out


def load_members(path: Path | str | None = None) -> list[Member]:
    """Members from a CSV file (the shipped list when ``path`` is None)."""
    p = Path(path) if path else MEMBERS_CSV
    with p.open(newline="") as fh:
        return parse_members(csv.DictReader(fh), source=p.name)


def load_calendar(path: Path | str | None = None) -> TradingCalendar:
    """The trading calendar from a TOML file (the shipped one when ``path`` is None)."""
    p = Path(path) if path else CALENDAR_TOML
    cfg = tomllib.loads(p.read_text())
    return TradingCalendar(
        exchange=cfg["exchange"],
        timezone=cfg["timezone"],
        open_time=time.fromisoformat(cfg["open"]),
        close_time=time.fromisoformat(cfg["close"]),
        weekend=tuple(cfg.get("weekend", ["Sat", "Sun"])),
        holidays=frozenset(date.fromisoformat(d) for d in cfg.get("holidays", [])),
    )
