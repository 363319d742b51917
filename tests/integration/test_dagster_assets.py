"""The batch platform's definitions load, and one trading day materialises end to end.

Embedded: a seeded half-hour session on the day's SQLite log, landed into the
local lake, then the market statistics. Materialising the day again leaves the
lake's content unchanged and does not simulate again.
"""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest
from dagster import AssetKey, DagsterInstance, materialize
from pyiceberg.expressions import EqualTo

from assets.platform.resources import PlatformResource
from orchestration.definitions import ALL_ASSETS, defs, resources_for
from tests.support import short_calendar

pytestmark = pytest.mark.integration

DAY = "2026-11-20"


@pytest.fixture
def short_session(tmp_path, monkeypatch) -> Path:
    path = short_calendar(tmp_path)
    monkeypatch.setenv("MARKETLAKE_CALENDAR_TOML", str(path))
    return tmp_path / "data"


def test_definitions_load_with_every_asset_and_job():
    repo = defs.get_repository_def()
    keys = {k.to_user_string() for k in repo.asset_graph.get_all_asset_keys()}
    assert {
        "simulated_session",
        "raw/trades",
        "raw/orders",
        "raw/bars",
        "core/market_daily",
    } <= keys
    assert defs.resolve_job_def("daily").partitions_def is not None
    # clearing opens with the previous day's close, so a day depends on the day before
    members = AssetKey(["core", "clearing_members"])
    assert members in repo.asset_graph.get(members).parent_keys
    mapping = repo.asset_graph.get_partition_mapping(members, members)
    assert (mapping.start_offset, mapping.end_offset) == (-1, -1)
    partitions = repo.asset_graph.get(AssetKey(["raw", "trades"])).partitions_def
    keys = partitions.get_partition_keys()
    assert "2026-11-20" in keys and "2026-11-21" not in keys  # a Saturday
    assert "2025-12-25" not in keys  # a holiday


def _lake_day(platform, identifier):
    table = platform.catalog().load_table(identifier)
    rows = table.scan(row_filter=EqualTo("trading_day", date(2026, 11, 20)))
    return sorted(map(str, rows.to_arrow().to_pylist()))


def test_a_day_materialises_and_again_changes_nothing(short_session):
    platform = PlatformResource(data_dir=str(short_session))
    instance = DagsterInstance.ephemeral()
    first = materialize(ALL_ASSETS, partition_key=DAY, resources=resources_for(platform),
                        instance=instance)  # fmt: skip
    assert first.success
    evaluations = first.get_asset_check_evaluations()
    names = {e.check_name for e in evaluations}
    assert {"vwap_within_range", "no_negative_position", "settlement_equals_trades",
            "no_breaks", "bars_continuous"} <= names  # fmt: skip
    # dbt's tests are checks of the models they test, singular tests included
    dbt_checks = {(e.asset_key.to_user_string(), e.check_name) for e in evaluations}
    assert ("marts/fct_trades", "unique_fct_trades_trade_key") in dbt_checks
    assert ("marts/fct_settlement", "assert_settlement_equals_trades") in dbt_checks
    assert len(dbt_checks) > 40
    assert [e.check_name for e in evaluations if not e.passed] == []
    report = first.asset_materializations_for_node("marts__settlement_report")[0].metadata
    assert report["pnl_plot"].value.startswith("![P&L per member](data:image/png;base64,")
    assert len(report["pnl_plot"].value) > 5_000  # a real picture, not an empty one
    sim = first.asset_materializations_for_node("simulated_session")[0].metadata
    assert sim["simulated"].value is True and sim["orders"].value > 1_000
    trades = _lake_day(platform, "raw.trades")
    market = _lake_day(platform, "core.market_daily")
    assert len(trades) > 100 and len(market) == 24

    # volume per symbol in the market table equals the landed trades
    catalog = platform.catalog()
    day = EqualTo("trading_day", date(2026, 11, 20))
    t = catalog.load_table("raw.trades").scan(row_filter=day).to_arrow().to_pylist()
    m = catalog.load_table("core.market_daily").scan(row_filter=day).to_arrow().to_pylist()
    volume: dict[str, int] = {}
    for row in t:
        volume[row["symbol"]] = volume.get(row["symbol"], 0) + row["qty"]
    assert {r["symbol"]: r["volume"] for r in m if r["volume"]} == volume
    assert all(r["low"] <= r["vwap"] <= r["high"] for r in m if r["trades"])

    again = materialize(ALL_ASSETS, partition_key=DAY, resources=resources_for(platform),
                        instance=instance)  # fmt: skip
    assert again.success
    assert (
        again.asset_materializations_for_node("simulated_session")[0].metadata["simulated"].value
        is False
    )
    assert _lake_day(platform, "raw.trades") == trades
    assert _lake_day(platform, "core.market_daily") == market


def test_clearing_totals_equal_the_trades_and_carry_to_the_next_day(short_session):
    platform = PlatformResource(data_dir=str(short_session))
    instance = DagsterInstance.ephemeral()
    for key in ("2026-11-19", "2026-11-20"):
        assert materialize(ALL_ASSETS, partition_key=key, resources=resources_for(platform),
                           instance=instance).success  # fmt: skip
    catalog = platform.catalog()
    clearing_ids = {m.member_id for m in platform.members() if m.kind == "clearing"}
    for day in (date(2026, 11, 19), date(2026, 11, 20)):
        only = EqualTo("trading_day", day)
        trades = catalog.load_table("raw.trades").scan(row_filter=only).to_arrow().to_pylist()
        members = catalog.load_table("core.clearing_members").scan(row_filter=only).to_arrow()
        rows = {r["member"]: r for r in members.to_pylist()}
        assert set(rows) == clearing_ids
        bought = sum(t["price"] * t["qty"] for t in trades if t["buy_member"] in clearing_ids)
        sold = sum(t["price"] * t["qty"] for t in trades if t["sell_member"] in clearing_ids)
        assert sum(r["bought_notional"] for r in rows.values()) == bought
        assert sum(r["sold_notional"] for r in rows.values()) == sold
        for r in rows.values():
            assert r["net_worth"] == r["closing_cash"] + r["holdings_value"]
            assert r["obligation_met"] == (r["securities_traded"] >= 20)
    first = {
        r["member"]: r
        for r in catalog.load_table("core.clearing_members")
        .scan(row_filter=EqualTo("trading_day", date(2026, 11, 19)))
        .to_arrow()
        .to_pylist()
    }
    second = {r["member"]: r for r in catalog.load_table("core.clearing_members").scan(
        row_filter=EqualTo("trading_day", date(2026, 11, 20))).to_arrow().to_pylist()}  # fmt: skip
    for member, row in second.items():
        assert row["opening_cash"] == first[member]["closing_cash"]  # not the capital again
    breaks = catalog.load_table("core.recon_breaks").scan().to_arrow()
    assert breaks.num_rows == 0  # a clean simulated day reconciles
    report = catalog.load_table("marts.settlement_report").scan(
        row_filter=EqualTo("trading_day", date(2026, 11, 20))).to_arrow().to_pylist()  # fmt: skip
    assert {r["member"]: r["net_worth"] for r in report} == {
        m: r["net_worth"] for m, r in second.items()
    }
    page = (short_session / "reports" / "settlement-2026-11-20.html").read_text()
    assert "EOD settlement report" in page and page.count("<svg") == 2
    assert all(m in page for m in clearing_ids) and "no breaks" in page
    carried = catalog.load_table("core.clearing_positions").scan(
        row_filter=EqualTo("trading_day", date(2026, 11, 20))).to_arrow().to_pylist()  # fmt: skip
    assert any(p["opening_qty"] > 0 for p in carried)


def test_every_table_of_a_day_records_one_session_and_a_mix_fails_until_rerun(short_session):
    from assets.reports.report_assets import SESSION_TABLES, one_session
    from lake.tables import TABLES
    from lake.writer import day_session, publish

    platform = PlatformResource(data_dir=str(short_session))
    instance = DagsterInstance.ephemeral()
    run = materialize(ALL_ASSETS, partition_key=DAY, resources=resources_for(platform),
                      instance=instance)  # fmt: skip
    assert run.success
    [check] = [e for e in run.get_asset_check_evaluations() if e.check_name == "one_session"]
    assert check.passed
    catalog, day = platform.catalog(), date(2026, 11, 20)
    sessions = {t: day_session(catalog, t, day) for t in SESSION_TABLES}
    assert len(set(sessions.values())) == 1 and None not in sessions.values()
    assert {"raw.orders", "core.market_daily", "marts.fct_trades"} <= set(sessions)

    # a mart replaced by another session's run (what a kill between assets could leave)
    mart = TABLES["marts.fct_trades"]
    rows = catalog.load_table("marts.fct_trades").scan(row_filter=EqualTo("trading_day", day))
    data = rows.to_arrow().drop_columns(["trading_day"]).cast(mart.schema)
    publish(catalog, mart, day, data, "another-session")
    mixed = one_session(catalog, day)
    assert not mixed.passed
    assert mixed.metadata["disagreeing"].value == {"marts.fct_trades": "another-session"}

    # the rerun of the day heals it
    again = materialize(ALL_ASSETS, partition_key=DAY, resources=resources_for(platform),
                        instance=instance)  # fmt: skip
    assert again.success and one_session(catalog, day).passed
