"""``driftline bench join`` runs end to end on its own embedded stack (figures, not speed)."""

from __future__ import annotations

import io

import pytest

from streams.bench.join import run_join_bench

pytestmark = pytest.mark.integration


def test_join_bench_prints_rates_joins_and_memory() -> None:
    out = io.StringIO()
    result = run_join_bench(events=3000, rounds=1, out=out, memory_entries=20_000)
    text = out.getvalue()
    assert "joined" in text and "MB per million" in text, text
    assert result["worker"][0] > 0 and result["raw"][0] > 0
    joined = result["joins"][0]
    assert joined["joined"] + joined["waiting"] + joined["unmatched"] == result["labels"][0]
    assert joined["joined"] > 0.95 * result["labels"][0], joined
    memory = result["memory"]
    assert isinstance(memory, dict)
    assert memory["with_features"] > memory["default"] > memory["without_features"] > 0
