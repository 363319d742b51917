"""The dbt marts: built from the day's lake partitions, tested as asset checks, published back.

A short seeded day is materialised end to end; the marts in the lake must
agree with the tables they come from (trades, market statistics, clearing).
Then a trade with an unknown member is slipped into the day's raw trades: the
dbt relationships test must fail as an asset check and fail the run.
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from pathlib import Path

import pyarrow as pa
import pytest
from dagster import AssetSelection, DagsterInstance, materialize
from pyiceberg.expressions import EqualTo

from assets.platform.resources import PlatformResource
from lake.tables import TABLES
from lake.writer import publish
from orchestration.definitions import ALL_ASSETS, resources_for
from streaming.events import PRICE_SCALE
from tests.support import short_calendar

pytestmark = pytest.mark.integration

DAY = date(2026, 11, 20)


def _day(platform: PlatformResource, identifier: str) -> list[dict]:
    scan = platform.catalog().load_table(identifier).scan(row_filter=EqualTo("trading_day", DAY))
    return scan.to_arrow().to_pylist()


def _money(units: int) -> Decimal:
    return Decimal(units) / PRICE_SCALE


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> PlatformResource:
    tmp = tmp_path_factory.mktemp("dbt")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("MARKETLAKE_CALENDAR_TOML", str(short_calendar(tmp, close="09:20")))
        platform = PlatformResource(data_dir=str(tmp / "data"))
        result = materialize(ALL_ASSETS, partition_key=DAY.isoformat(),
                             resources=resources_for(platform),
                             instance=DagsterInstance.ephemeral())  # fmt: skip
        assert result.success
        yield platform


def test_marts_are_published_and_agree_with_their_sources(built):
    platform = built
    trades = _day(platform, "raw.trades")
    fct = _day(platform, "marts.fct_trades")
    assert len(fct) == len(trades) > 100
    assert sum(r["notional"] for r in fct) == _money(sum(t["price"] * t["qty"] for t in trades))
    assert {r["trade_key"] for r in fct} == {f"{t['symbol']}-{t['trade_id']}" for t in trades}

    market = {r["symbol"]: r for r in _day(platform, "core.market_daily") if r["trades"]}
    bars = {r["symbol"]: r for r in _day(platform, "marts.fct_daily_bars")}
    assert set(bars) == set(market)
    for symbol, bar in bars.items():
        m = market[symbol]
        assert (bar["open"], bar["high"], bar["low"], bar["close"]) == tuple(
            _money(m[k]) for k in ("open", "high", "low", "close")
        )
        assert bar["volume"] == m["volume"] == bar["bar_volume"]
        assert bar["trades"] == m["trades"]

    clearing = {r["member"]: r for r in _day(platform, "core.clearing_members")}
    pnl = {r["member"]: r for r in _day(platform, "marts.fct_member_daily_pnl")}
    assert set(pnl) == set(clearing)
    capital = {m.member_id: _money(m.capital) for m in platform.members()}
    for member, row in pnl.items():
        assert row["net_worth"] == _money(clearing[member]["net_worth"])
        assert row["previous_net_worth"] == capital[member]  # the first day opens with capital
        assert row["net_worth_change"] == row["net_worth"] - capital[member]

    settlement = _day(platform, "marts.fct_settlement")
    for member, row in clearing.items():
        mine = [s for s in settlement if s["member"] == member]
        assert sum(s["buy_notional"] for s in mine) == _money(row["bought_notional"])
        assert sum(s["sell_notional"] for s in mine) == _money(row["sold_notional"])
        assert sum(s["net_cash"] for s in mine) == _money(row["closing_cash"] - row["opening_cash"])
    members = _day(platform, "marts.dim_members")
    assert {r["member_id"] for r in members} == {m.member_id for m in platform.members()}

    # the report page shows each member's change from the mart
    page = (Path(platform.data_dir) / "reports" / f"settlement-{DAY}.html").read_text()
    assert "day change" in page
    some = next(iter(pnl.values()))
    assert f"{some['net_worth_change']:+,.2f}" in page


def test_a_failing_dbt_test_fails_its_check_and_the_run(built):
    platform = built
    catalog = platform.catalog()
    trades = catalog.load_table("raw.trades").scan(row_filter=EqualTo("trading_day", DAY))
    table = trades.to_arrow().drop_columns(["trading_day"]).cast(TABLES["raw.trades"].schema)
    row = table.slice(0, 1).to_pylist()[0]
    intruder = {**row, "trade_id": 10**9, "buy_member": "ZZZ99"}  # not an exchange member
    rows = pa.concat_tables([table, pa.Table.from_pylist([intruder], schema=table.schema)])
    publish(catalog, TABLES["raw.trades"], DAY, rows)

    result = materialize(
        ALL_ASSETS, partition_key=DAY.isoformat(), resources=resources_for(platform),
        instance=DagsterInstance.ephemeral(), raise_on_error=False,
        selection=AssetSelection.groups("dbt_staging", "marts"),
    )  # fmt: skip
    assert not result.success
    failed = {
        (e.asset_key.to_user_string(), e.check_name)
        for e in result.get_asset_check_evaluations()
        if not e.passed
    }
    assert (
        "marts/fct_trades",
        "relationships_fct_trades_buy_member__member_id__ref_dim_members_",
    ) in failed
