"""The EOD settlement report: one table row per member and an HTML page with plots.

Pure: it takes the day's clearing, recon and bars tables and returns the
report table and a self-contained HTML page (plots embedded as SVG), so the
page can be mailed or archived and opened without a server. Money is shown
in the currency; the table keeps integer 1/10,000 units like the rest of the lake.
"""

from __future__ import annotations

import io
from datetime import date
from typing import Any

import jinja2
import pyarrow as pa

from lake.tables import TABLES
from streaming.events import PRICE_SCALE

_PAGE = jinja2.Template(
    """<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<title>EOD settlement {{ day }} - {{ exchange }}</title>
<style>
 body { font-family: system-ui, sans-serif; margin: 2rem; color: #222; }
 table { border-collapse: collapse; margin: 1rem 0; font-size: 0.9rem; }
 th, td { border: 1px solid #ccc; padding: 0.25rem 0.6rem; text-align: right; }
 th:first-child, td:first-child { text-align: left; }
 .met { color: #1a7f37; } .failed { color: #cf222e; font-weight: bold; }
 .ok { color: #1a7f37; } .bad { color: #cf222e; }
 figure { margin: 1rem 0; }
</style></head><body>
<h1>EOD settlement report &mdash; {{ exchange }} {{ day }}</h1>
<p>{{ members|length }} clearing members; {{ totals.trades }} trades;
traded notional {{ "{:,.2f}".format(totals.notional) }};
recon: {% if breaks %}<span class="bad">{{ breaks|length }} break(s)</span>
{% else %}<span class="ok">no breaks</span>{% endif %}.</p>

<h2>Members</h2>
<table><tr><th>member</th><th>opening cash</th><th>closing cash</th><th>holdings</th>
<th>net worth</th><th>day change</th><th>realized P&amp;L</th><th>unrealized P&amp;L</th><th>fees</th>
<th>securities</th><th>obligation</th></tr>
{% for m in members %}<tr><td>{{ m.member }}</td><td>{{ money(m.opening_cash) }}</td>
<td>{{ money(m.closing_cash) }}</td><td>{{ money(m.holdings_value) }}</td>
<td>{{ money(m.net_worth) }}</td><td>{{ change(m.member) }}</td><td>{{ money(m.realized_pnl) }}</td>
<td>{{ money(m.unrealized_pnl) }}</td><td>{{ money(m.fees) }}</td>
<td>{{ m.securities_traded }}</td>
<td class="{{ 'met' if m.obligation_met else 'failed' }}">{{ 'met' if m.obligation_met else 'FAILED' }}</td></tr>
{% endfor %}</table>
<figure>{{ pnl_svg }}<figcaption>P&amp;L per member (realized and unrealized)</figcaption></figure>

<h2>Closing positions</h2>
<table><tr><th>member</th>{% for s in symbols %}<th>{{ s }}</th>{% endfor %}</tr>
{% for m in members %}<tr><td>{{ m.member }}</td>
{% for s in symbols %}<td>{{ positions.get((m.member, s), "") }}</td>{% endfor %}</tr>
{% endfor %}</table>

<h2>Recon breaks</h2>
{% if breaks %}<table><tr><th>member</th><th>symbol</th><th>side</th><th>reason</th>
<th>trades</th><th>fills</th><th>traded qty</th><th>filled qty</th></tr>
{% for b in breaks %}<tr><td>{{ b.member }}</td><td>{{ b.symbol }}</td><td>{{ b.side }}</td>
<td>{{ b.reason }}</td><td>{{ b.trades }}</td><td>{{ b.fills }}</td>
<td>{{ b.traded_qty }}</td><td>{{ b.filled_qty }}</td></tr>{% endfor %}</table>
{% else %}<p class="ok">Trades, member fills and clearing agree.</p>{% endif %}

<h2>Intraday prices</h2>
<figure>{{ prices_svg }}<figcaption>1-minute closes per symbol</figcaption></figure>
</body></html>
"""
)


def _svg(fig: Any) -> str:
    buf = io.StringIO()
    fig.savefig(buf, format="svg", bbox_inches="tight")
    text = buf.getvalue()
    return text[text.index("<svg") :]


def pnl_markdown(members: pa.Table) -> str:
    """The P&L plot as a Markdown image (PNG inline), for the asset's metadata in the UI."""
    import base64

    import matplotlib.pyplot as plt

    fig = pnl_figure(sorted(members.to_pylist(), key=lambda m: m["member"]))
    try:
        buf = io.BytesIO()
        fig.savefig(buf, format="png", dpi=72, bbox_inches="tight")
    finally:
        plt.close(fig)
    return f"![P&L per member](data:image/png;base64,{base64.b64encode(buf.getvalue()).decode()})"


def pnl_figure(members: list[dict[str, Any]]) -> Any:
    """Bars of realized and unrealized P&L per member, in the currency."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = [m["member"] for m in members]
    realized = [m["realized_pnl"] / PRICE_SCALE for m in members]
    unrealized = [m["unrealized_pnl"] / PRICE_SCALE for m in members]
    fig, ax = plt.subplots(figsize=(8, 3.2))
    xs = range(len(names))
    ax.bar([x - 0.2 for x in xs], realized, width=0.4, label="realized")
    ax.bar([x + 0.2 for x in xs], unrealized, width=0.4, label="unrealized")
    ax.axhline(0, color="#444", linewidth=0.8)
    ax.set_xticks(list(xs), names, rotation=45, ha="right")
    ax.set_ylabel("P&L")
    ax.legend()
    fig.tight_layout()
    return fig


def prices_figure(bars: pa.Table) -> Any:
    """Small multiples: each symbol's 1-minute closes over the session."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = bars.filter(pa.compute.equal(bars["interval"], "1m")).to_pylist()
    series: dict[str, list[tuple[int, float]]] = {}
    for r in sorted(rows, key=lambda r: (r["symbol"], r["start"])):
        series.setdefault(r["symbol"], []).append((r["start"], r["close"] / PRICE_SCALE))
    symbols = sorted(series)
    cols = 6
    nrows = max(1, -(-len(symbols) // cols))
    fig, axes = plt.subplots(nrows, cols, figsize=(14, 1.9 * nrows), squeeze=False)
    for ax in axes.flat:
        ax.set_visible(False)
    for ax, sym in zip(axes.flat, symbols, strict=False):
        xs = [(t - series[sym][0][0]) / 3.6e12 for t, _ in series[sym]]
        ax.set_visible(True)
        ax.plot(xs, [p for _, p in series[sym]], linewidth=0.8)
        ax.set_title(sym, fontsize=9)
        ax.tick_params(labelsize=7)
    fig.supxlabel("hours since the open", fontsize=9)
    fig.tight_layout()
    return fig


def settlement_report(
    day: date,
    exchange: str,
    members: pa.Table,
    positions: pa.Table,
    breaks: pa.Table,
    bars: pa.Table,
    trades: int,
    notional: int,
    daily_pnl: pa.Table | None = None,
) -> tuple[pa.Table, str]:
    """The report table (one row per member) and the HTML page.

    ``daily_pnl`` (the dbt mart ``marts.fct_member_daily_pnl``) adds each
    member's net worth change since its previous close to the page.
    """
    import matplotlib.pyplot as plt

    member_rows = sorted(members.to_pylist(), key=lambda m: m["member"])
    break_rows = breaks.to_pylist()
    breaks_by_member: dict[str, int] = {}
    for b in break_rows:
        breaks_by_member[b["member"]] = breaks_by_member.get(b["member"], 0) + 1
    open_positions: dict[str, int] = {}
    grid: dict[tuple[str, str], int] = {}
    for p in positions.to_pylist():
        if p["closing_qty"]:
            grid[(p["member"], p["symbol"])] = p["closing_qty"]
            open_positions[p["member"]] = open_positions.get(p["member"], 0) + 1
    schema = TABLES["marts.settlement_report"].schema
    table = pa.Table.from_pylist(
        [
            {
                **{k: m[k] for k in schema.names if k in m},
                "open_positions": open_positions.get(m["member"], 0),
                "breaks": breaks_by_member.get(m["member"], 0),
            }
            for m in member_rows
        ],
        schema=schema,
    )
    changes = {r["member"]: r for r in (daily_pnl.to_pylist() if daily_pnl is not None else [])}

    def change(member: str) -> str:
        row = changes.get(member)
        if row is None:
            return ""
        pct = f" ({row['day_return']:+.2%})" if row["day_return"] is not None else ""
        return f"{row['net_worth_change']:+,.2f}{pct}"

    pnl = pnl_figure(member_rows)
    prices = prices_figure(bars)
    try:
        html = _PAGE.render(
            day=day.isoformat(),
            exchange=exchange,
            members=member_rows,
            positions=grid,
            symbols=sorted({s for _, s in grid}),
            breaks=break_rows,
            totals={"trades": trades, "notional": notional / PRICE_SCALE},
            money=lambda v: f"{v / PRICE_SCALE:,.2f}",
            change=change,
            pnl_svg=_svg(pnl),
            prices_svg=_svg(prices),
        )
    finally:
        plt.close(pnl)
        plt.close(prices)
    return table, html
