"""A hostile order stream: thousands of malformed lines, each followed by a valid order.

What a careless or malicious participant can send to the exchange, grouped by
category (encodings, nesting, numbers, fields, structure, ids, rules). Every
hostile line must end in the dead-letter queue with a reason, and none may
change what the valid orders do: the valid lines alone give the same trades.
The corpus is generated (no fixture files), deterministically.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from streaming.refdata import Security

Line = Callable[[int], bytes]


@dataclass(frozen=True)
class Corpus:
    valid: list[bytes]
    """The valid orders alone, in order (the clean run)."""
    mixed: list[bytes]
    """Each hostile line followed by the next valid order."""
    hostile: list[tuple[str, bytes]]
    """(category, line) of every hostile line, in order."""

    @property
    def categories(self) -> set[str]:
        return {c for c, _ in self.hostile}


def _dump(obj: object) -> bytes:
    return json.dumps(obj, separators=(",", ":"), allow_nan=True).encode()


def corpus(securities: list[Security], per_category: int = 56) -> Corpus:
    """The hostile corpus over ``securities`` (AAPL and KO must be listed)."""
    sec = {s.symbol: s for s in securities}
    aapl, ko = sec["AAPL"], sec["KO"]
    ref, tick = aapl.reference_price, aapl.tick

    def valid_order(i: int) -> bytes:
        """Order ``i`` (from 1): sells rest at the reference, buys one tick above cross them."""
        sell = i % 2 == 1
        member = ("USR01", "USR02")[(i // 2) % 2] if sell else ("USR03", "USR04")[(i // 2) % 2]
        return _dump({"type": "new", "order_id": i, "member": member, "symbol": "AAPL",
                      "side": "sell" if sell else "buy", "qty": 1 + i % 3,
                      "price": ref if sell else ref + tick, "ts": i * 1_000})  # fmt: skip

    def order(j: int, **changes: object) -> dict[str, object]:
        base: dict[str, object] = {"type": "new", "order_id": 1_000_000_000 + j, "member": "USR05",
                                   "symbol": "AAPL", "side": "buy", "qty": 1, "price": ref - tick,
                                   "order_type": "limit", "tif": "day", "ts": 10 + j}  # fmt: skip
        base.update(changes)
        return base

    def without(field: str) -> Line:
        def line(j: int) -> bytes:
            o = order(j)
            del o[field]
            return _dump(o)

        return line

    def with_(**changes: object) -> Line:
        return lambda j: _dump(order(j, **changes))

    def raw(template: bytes) -> Line:
        return lambda j: template.replace(b"{J}", str(1_000_000_000 + j).encode())

    ok = _dump(order(0))
    # fmt: off
    cats: dict[str, Line] = {
        # encodings
        "latin1_member": lambda j: _dump(order(j)).replace(b"USR05", "Müller".encode("latin-1")),
        "latin1_symbol": lambda j: _dump(order(j)).replace(b'"AAPL"', b'"A\xc4PL"'),
        "utf16_line": lambda j: _dump(order(j)).decode().encode("utf-16"),
        "utf8_bom": lambda j: b"\xef\xbb\xbf" + _dump(order(j)),
        "overlong_utf8": lambda j: _dump(order(j)).replace(b"USR05", b"USR\xc0\xaf"),
        "lone_surrogate_bytes": lambda j: _dump(order(j)).replace(b"USR05", b"\xed\xa0\x80"),
        "lone_surrogate_escape": lambda j: _dump(order(j)).replace(b"USR05", b"\\ud800"),
        "nul_byte": lambda j: _dump(order(j)).replace(b"USR05", b"US\x00R05"),
        "raw_control_char": lambda j: _dump(order(j)).replace(b"USR05", b"US\x07R05"),
        "escaped_control_char": lambda j: _dump(order(j, member="US\x07R05")),
        "escaped_nul": lambda j: _dump(order(j, member="\x00")),
        "emoji_member": with_(member="USR\U0001f680"),
        "unicode_symbol": with_(symbol="ＡＡＰＬ"),
        "high_bytes": lambda j: bytes(range(128 + j % 64, 256)),
        # nesting
        "deep_arrays": lambda j: b"[" * (1000 + j) + b"]" * (1000 + j),
        "deep_objects_in_field": lambda j: ok[:-1] + b',"x":' + b'{"a":' * (600 + j)
        + b"1" + b"}" * (601 + j),
        "deep_just_over_limit": lambda j: b"[" * 33 + b"]" * 33,
        "nested_member": lambda j: _dump(order(j, member={"id": ["USR05"]})),
        "nested_qty": lambda j: _dump(order(j, qty=[[1]])),
        # numbers
        "qty_2_63": with_(qty=2**63),
        "qty_2_64": with_(qty=2**64),
        "qty_10_13": with_(qty=10**13),
        "qty_huge_digits": raw(b'{"type":"new","order_id":{J},"member":"USR05","symbol":"AAPL",'
                               b'"side":"buy","qty":' + b"9" * 400 + b',"price":1954000}'),
        "qty_negative": lambda j: _dump(order(j, qty=-1 - j)),
        "qty_zero": with_(qty=0),
        "price_negative": lambda j: _dump(order(j, price=-ref)),
        "price_zero": with_(price=0),
        "price_2_63": with_(price=2**63),
        "price_10_30": with_(price=10**30),
        "order_id_10_39": lambda j: _dump(order(j, order_id=10**39 + j)),
        "order_id_zero": with_(order_id=0),
        "order_id_negative": lambda j: _dump(order(j, order_id=-1 - j)),
        "ts_negative": lambda j: _dump(order(j, ts=-1 - j)),
        "ts_2_64": with_(ts=2**64),
        "nan": lambda j: _dump(order(j)).replace(b'"qty":1', b'"qty":NaN'),
        "infinity": lambda j: _dump(order(j)).replace(b'"qty":1', b'"qty":Infinity'),
        "negative_infinity": lambda j: _dump(order(j)).replace(b'"price":1953900',
                                                               b'"price":-Infinity'),
        "float_qty": lambda j: _dump(order(j, qty=1.5 + j)),
        "float_integral_qty": with_(qty=1.0),
        "exponent_qty": lambda j: _dump(order(j)).replace(b'"qty":1', b'"qty":1e3'),
        "float_price": lambda j: _dump(order(j, price=195.39)),
        "string_qty": with_(qty="1"),
        "bool_qty": with_(qty=True),
        "null_qty": with_(qty=None),
        "hex_qty": lambda j: _dump(order(j)).replace(b'"qty":1', b'"qty":0x10'),
        "leading_zero_qty": lambda j: _dump(order(j)).replace(b'"qty":1', b'"qty":01'),
        "notional_too_large": with_(qty=10**8, price=ref),
        # fields
        "missing_type": without("type"),
        "unknown_type": with_(type="new_order"),
        "missing_order_id": without("order_id"),
        "missing_member": without("member"),
        "missing_symbol": without("symbol"),
        "missing_side": without("side"),
        "missing_qty": without("qty"),
        "extra_field": with_(stop_price=ref),
        "misspelled_field": lambda j: _dump(order(j)).replace(b'"tif"', b'"time_in_force"'),
        "numeric_side": with_(side=1),
        "invalid_side": with_(side="hold"),
        "invalid_order_type": with_(order_type="stop"),
        "invalid_tif": with_(tif="gtc"),
        "limit_without_price": with_(price=None),
        "market_with_price": with_(order_type="market"),
        # structure
        "empty_object": lambda j: b"{}",
        "array_of_orders": lambda j: b"[" + _dump(order(j)) + b"]",
        "json_string": lambda j: _dump("new order " + str(j)),
        "json_number": lambda j: str(j).encode(),
        "json_null": lambda j: b"null",
        "json_true": lambda j: b"true",
        "truncated": lambda j: _dump(order(j))[: 10 + j % 50],
        "trailing_garbage": lambda j: _dump(order(j)) + b"garbage",
        "two_objects": lambda j: _dump(order(j)) + _dump(order(j + 1)),
        "not_json": lambda j: f"BUY 100 AAPL @ 195.{j:02d}".encode(),
        "fix_message": lambda j: b"8=FIX.4.4\x019=70\x0135=D\x0111=" + str(j).encode() + b"\x0110=000\x01",
        "over_size_limit": lambda j: ok[:-1] + b',"pad":"' + b"x" * (64 * 1024) + b'"}',
        "one_megabyte": lambda j: ok[:-1] + b',"pad":"' + b"y" * (1 << 20) + b'"}',
        "not_an_order_event": lambda j: _dump({"type": "trade", "trade_id": j, "symbol": "AAPL",
                                               "price": ref, "qty": 1, "aggressor_side": "buy",
                                               "buy_order_id": 1, "sell_order_id": 2,
                                               "buy_member": "USR01", "sell_member": "USR02",
                                               "ts": 1}),
        "control_bad_action": lambda j: _dump({"type": "control", "action": "explode", "ts": j}),
        # ids and rules
        "member_too_long": lambda j: _dump(order(j, member="M" * (33 + j))),
        "member_empty": with_(member=""),
        "member_with_space": with_(member="USR 05"),
        "symbol_too_long": lambda j: _dump(order(j, symbol="S" * (33 + j * 10))),
        "symbol_unknown": with_(symbol="ZZZZ"),
        "tick_size": with_(price=ref - tick // 2),
        "lot_size": lambda j: _dump(order(j, symbol="KO", qty=ko.lot + 1, price=ko.reference_price)),
        "duplicate_order_id": lambda j: _dump(order(j, order_id=1 + j % 2)),  # valid ids 1 and 2
        "foreign_cancel": lambda j: _dump({"type": "cancel", "order_id": 1 + 2 * (j % 20),
                                           "member": "USR09", "symbol": "AAPL", "ts": j}),
        "cancel_unknown_order": lambda j: _dump({"type": "cancel", "order_id": 2_000_000_000 + j,
                                                 "member": "USR05", "symbol": "AAPL", "ts": j}),
        "foreign_amend": lambda j: _dump({"type": "amend", "order_id": 1 + 2 * (j % 20),
                                          "member": "USR09", "symbol": "AAPL", "qty": 1, "ts": j}),
        "amend_qty_too_large": lambda j: _dump({"type": "amend", "order_id": 1, "member": "USR01",
                                                "symbol": "AAPL", "qty": 2**63 + j, "ts": j}),
    }
    # fmt: on
    counts = {"one_megabyte": 3, "over_size_limit": 10, "deep_objects_in_field": 20}
    hostile: list[tuple[str, bytes]] = []
    for j in range(per_category):
        for name, make in cats.items():
            if j < counts.get(name, per_category):
                hostile.append((name, make(j)))
    valid = [valid_order(i) for i in range(1, len(hostile) + 1)]
    mixed: list[bytes] = []
    for (_, bad), good in zip(hostile, valid, strict=True):
        mixed += [bad, good]
    return Corpus(valid, mixed, hostile)


def lines(data: list[bytes]) -> Iterator[bytes]:
    """JSON Lines as a file holds them: a line with a newline byte inside cannot exist."""
    for line in data:
        yield line.replace(b"\n", b" ").replace(b"\r", b" ")
