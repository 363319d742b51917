"""Seeded synthetic order flow for benchmarks and property tests.

The standard mix per 100 requests is 60 passive limits, 25 cancels, 10
marketable limits and 5 market orders over the given securities. It is
generated up front, independent of the matcher's state, so the same seed
always yields the same requests.
"""

from __future__ import annotations

import random
from collections.abc import Sequence

from streaming.events import CancelOrder, NewOrder, OrderRequest, Side
from streaming.refdata import Security

STANDARD_MIX = {"passive": 60, "cancel": 25, "marketable": 10, "market": 5}


def standard_mix(
    securities: Sequence[Security],
    members: Sequence[str],
    n: int,
    seed: int = 1,
    start_ts: int = 0,
    step_ns: int = 1_000,
) -> list[OrderRequest]:
    """``n`` requests of the standard mix; cancels target earlier passive orders."""
    rng = random.Random(seed)
    kinds = [k for k, w in STANDARD_MIX.items() for _ in range(w)]
    live: dict[str, list[tuple[int, str]]] = {s.symbol: [] for s in securities}
    out: list[OrderRequest] = []
    oid = 0
    ts = start_ts
    for _ in range(n):
        sec = securities[rng.randrange(len(securities))]
        sym, tick, lot, mid = sec.symbol, sec.tick, sec.lot, sec.reference_price
        kind = kinds[rng.randrange(100)]
        ts += step_ns
        pool = live[sym]
        if kind == "cancel" and pool:
            idx = rng.randrange(len(pool))
            pool[idx], pool[-1] = pool[-1], pool[idx]
            cid, member = pool.pop()
            out.append(CancelOrder(cid, member, sym, ts))
            continue
        oid += 1
        member = members[rng.randrange(len(members))]
        side: Side = "buy" if rng.random() < 0.5 else "sell"
        qty = lot * rng.randint(1, 10)
        sign = 1 if side == "buy" else -1
        if kind == "market":
            out.append(NewOrder(oid, member, sym, side, qty, None, "market", "ioc", ts))
        elif kind == "marketable":
            price = mid + sign * tick * rng.randint(1, 5)
            out.append(NewOrder(oid, member, sym, side, qty, price, "limit", "day", ts))
            pool.append((oid, member))
        else:  # passive, or a cancel with nothing to cancel yet
            price = mid - sign * tick * rng.randint(1, 20)
            out.append(NewOrder(oid, member, sym, side, qty, price, "limit", "day", ts))
            pool.append((oid, member))
    return out
