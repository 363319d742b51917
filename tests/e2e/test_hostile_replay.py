"""``marketlake replay`` over the hostile corpus: every bad line dead-lettered, nothing else changed."""

from __future__ import annotations

import base64
import json
import subprocess
import sys

import pytest

from streaming.refdata import load_securities
from tests.support.hostile import corpus, lines

pytestmark = pytest.mark.e2e


def _replay(src, out) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "orchestration.cli", "replay", str(src), "--out", str(out)],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip


def test_every_hostile_line_is_dead_lettered_and_the_valid_orders_trade_as_alone(tmp_path):
    c = corpus(load_securities())
    assert len(c.hostile) >= 4_000 and len(c.categories) >= 70
    hostile_file, clean_file = tmp_path / "hostile.jsonl", tmp_path / "clean.jsonl"
    hostile_file.write_bytes(b"\n".join(lines(c.mixed)) + b"\n")
    clean_file.write_bytes(b"\n".join(c.valid) + b"\n")

    proc = _replay(hostile_file, tmp_path / "hostile")
    assert proc.returncode == 0, proc.stderr[-2000:]
    clean = _replay(clean_file, tmp_path / "clean")
    assert clean.returncode == 0, clean.stderr[-2000:]

    dlq = [json.loads(x) for x in (tmp_path / "hostile" / "dlq.jsonl").read_text().splitlines()]
    # line 2k+1 is hostile line k; each has exactly one dead letter, with its bytes and a reason
    by_line = {d["offset"]: d for d in dlq}
    assert len(by_line) == len(dlq) == len(c.hostile)
    sent = list(lines(c.mixed))
    for k, (category, _) in enumerate(c.hostile):
        letter = by_line.get(2 * k + 1)
        assert letter is not None, f"hostile line {k} ({category}) is not in the dlq"
        assert base64.b64decode(letter["payload"]) == sent[2 * k].strip(), category
        assert letter["reason"].startswith(f"line {2 * k + 1}: "), category
        assert letter["reason"].split(": ")[1] in ("undecodable", "rejected", "unexpected_event"), (
            category, letter["reason"],
        )  # fmt: skip
    assert not (tmp_path / "clean" / "dlq.jsonl").read_bytes()

    # the valid orders give the same trades, byte for byte, as they do alone
    trades = (tmp_path / "hostile" / "trades.jsonl").read_bytes()
    assert trades == (tmp_path / "clean" / "trades.jsonl").read_bytes()
    assert trades.count(b"\n") > 1_000


def test_the_corpus_reasons_cover_every_gate(tmp_path):
    """Each gate of the edge is exercised: envelope codes and bounds reasons."""
    c = corpus(load_securities(), per_category=1)
    src = tmp_path / "h.jsonl"
    src.write_bytes(b"\n".join(lines(c.mixed)) + b"\n")
    proc = _replay(src, tmp_path / "out")
    assert proc.returncode == 0, proc.stderr[-2000:]
    reasons = " ".join(
        json.loads(x)["reason"] for x in (tmp_path / "out" / "dlq.jsonl").read_text().splitlines()
    )
    for code in ("invalid_utf8", "too_deep", "too_large", "malformed_json", "invalid_fields",
                 "qty_too_large", "price_too_large", "notional_too_large", "invalid_order_id",
                 "invalid_member", "invalid_symbol", "invalid_timestamp", "unknown_order",
                 "duplicate_order_id", "tick_size", "lot_size"):  # fmt: skip
        assert code in reasons, code
