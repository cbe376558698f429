"""Audit records from the partition step: config, references, rebaselines, alerts, keys."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import orjson
import pytest

from detectors.batch import ColumnBatch
from detectors.monitor import ModelMonitor, MonitorConfig
from streams.core.audit import (
    ALERT,
    CONFIG,
    REBASELINE,
    REFERENCE_SET,
    audit_key,
    settings_hash,
)
from streams.core.partition import PartitionState
from streams.core.step import PartitionStep
from streams.offline.reference import build_reference, write_reference
from streams.settings import Settings, load_settings
from streams.state.pending import MemoryPendingStore
from tests.messages import Record

PREDICTIONS, CONTROL = "driftline.predictions", "driftline.control"


def settings(**env: str) -> Settings:
    return load_settings(environ={"DRIFTLINE_REFERENCE_SIZE": "500",
                                  "DRIFTLINE_WINDOW_SIZE": "250", **env})


def events(n: int, start: int = 0, shift: float = 0.0, seed: int = 4) -> list[dict[str, Any]]:
    rng = np.random.default_rng(seed + start)
    x = rng.normal(shift, 1.0, n)
    return [{"model_id": "m", "model_version": "v1", "event_id": f"e{start + i}",
             "ts": 1_700_000_000.0 + start + i, "features": {"x": float(x[i])},
             "prediction": int(x[i] > 0)} for i in range(n)]


def records(items: list[dict[str, Any]], first_offset: int = 0) -> list[Record]:
    return [Record(PREDICTIONS, first_offset + n, orjson.dumps(items[start:start + 50]), b"m")
            for n, start in enumerate(range(0, len(items), 50))]


def test_a_run_audits_its_settings_reference_alerts_and_a_rebaseline() -> None:
    config = settings()
    step = PartitionStep(config, MemoryPendingStore())
    state = PartitionState.fresh(config, 0)
    audit = step(state, records(events(1500))).audit
    audit += step(state, records(events(1000, 1500, shift=3.0), 100)).audit
    command = {"command": "rebaseline", "model_id": "m", "reason": "new pricing",
               "requested_by": "ana@ops", "ts": 1.0}
    audit += step(state, [Record(CONTROL, 7, orjson.dumps(command), b"m")]).audit
    kinds = [r["kind"] for r in audit]
    assert kinds[:2] == [CONFIG, REFERENCE_SET], kinds
    assert kinds.count(CONFIG) == 1            # once per state, not per step
    assert audit[0]["details"]["settings_sha256"] == settings_hash(config)
    reference = audit[1]
    assert reference["details"]["source"] == {"type": "first_events", "events": 500}
    assert reference["details"]["reference"]["start_ts"] == 1_700_000_000.0
    assert reference["details"]["reference"]["end_ts"] == 1_700_000_499.0
    assert len(reference["details"]["learned_sha256"]) == 64
    firing = [r for r in audit if r["kind"] == ALERT and r["details"]["status"] == "firing"]
    assert any(r["details"].get("feature") == "x" for r in firing), firing
    rebaseline = next(r for r in audit if r["kind"] == REBASELINE)
    assert rebaseline["details"]["requested_by"] == "ana@ops"
    assert rebaseline["details"]["reason"] == "new pricing"
    assert rebaseline["details"]["control_offset"] == 7
    # The open alerts it closed follow it, and it names them.
    after = audit[audit.index(rebaseline) + 1:]
    resolved = [r["details"]["alert_id"] for r in after if r["kind"] == ALERT]
    assert resolved and resolved == rebaseline["details"]["resolved_alert_ids"]
    # One key per decision: compaction cannot drop one record for another.
    assert len({audit_key(r) for r in audit}) == len(audit)


def test_a_second_state_announces_its_settings_again() -> None:
    config = settings()
    step = PartitionStep(config, MemoryPendingStore())
    first = step(PartitionState.fresh(config, 3), records(events(10))).audit
    again = step(PartitionState.fresh(config, 3), records(events(10))).audit
    assert [r["kind"] for r in first] == [CONFIG] == [r["kind"] for r in again]
    assert first[0]["audit_id"] == again[0]["audit_id"]       # same settings, same offsets
    other = PartitionStep(settings(DRIFTLINE_WINDOW_SIZE="300"), MemoryPendingStore())
    changed = other(PartitionState.fresh(config, 3), records(events(10))).audit
    assert changed[0]["details"]["settings_sha256"] != first[0]["details"]["settings_sha256"]


def test_a_reference_file_is_audited_with_its_hash_and_size(tmp_path: Path) -> None:
    train = tmp_path / "train.jsonl"
    train.write_bytes(b"".join(orjson.dumps(e) + b"\n" for e in events(600)))
    base = settings()
    reference_path = tmp_path / "ref.json"
    write_reference(build_reference(train, "m", None, base), reference_path)
    config = settings(DRIFTLINE_MODELS=orjson.dumps(
        {"m": {"reference": str(reference_path)}}).decode())
    audit = PartitionStep(config, MemoryPendingStore())(
        PartitionState.fresh(config, 0), records(events(100, 5000))).audit
    reference = next(r for r in audit if r["kind"] == REFERENCE_SET)
    source = reference["details"]["source"]
    import hashlib
    content = reference_path.read_bytes()
    assert source["type"] == "file" and source["path"] == str(reference_path.resolve())
    assert source["sha256"] == hashlib.sha256(content).hexdigest()
    assert source["bytes"] == len(content) and source["events"] == 500
    assert source["training"]["sha256"] == hashlib.sha256(train.read_bytes()).hexdigest()


@pytest.mark.parametrize("sizes", [[1000], [100] * 10, [7, 493, 500]])
def test_the_learned_digest_does_not_depend_on_batching(sizes: list[int]) -> None:
    rng = np.random.default_rng(2)
    x, y = rng.normal(size=1000), rng.gamma(2.0, size=1000)
    ts = np.arange(1000.0)
    config = MonitorConfig(reference_size=600, window_size=200)
    whole = ModelMonitor({"x": "numeric", "y": "numeric"}, {}, config)
    whole.update_many(ColumnBatch.from_numeric(ts=ts, x=x, y=y))
    split = ModelMonitor({"x": "numeric", "y": "numeric"}, {}, config)
    start = 0
    for size in sizes:
        split.update_many(ColumnBatch.from_numeric(ts=ts[start:start + size],
                                                   x=x[start:start + size],
                                                   y=y[start:start + size]))
        start += size
    assert whole.reference_digest is not None
    assert split.reference_digest == whole.reference_digest
    other = ModelMonitor({"x": "numeric", "y": "numeric"}, {}, config)
    other.update_many(ColumnBatch.from_numeric(ts=ts, x=x + 0.01, y=y))
    assert other.reference_digest != whole.reference_digest
    # Checkpointed with the monitor; a state saved before it existed reads None.
    assert ModelMonitor.from_state(whole.to_state()).reference_digest == whole.reference_digest
    old = whole.to_state()
    del old["state"]["reference_digest"]
    assert ModelMonitor.from_state(old).reference_digest is None


def test_a_control_command_whose_requester_is_no_string_is_dead_lettered() -> None:
    config = settings()
    step = PartitionStep(config, MemoryPendingStore())
    state = PartitionState.fresh(config, 0)
    step(state, records(events(100)))
    bad = {"command": "rebaseline", "model_id": "m", "requested_by": 7}
    output = step(state, [Record(CONTROL, 3, orjson.dumps(bad), b"m")])
    assert [record["error"] for _, record in output.dead_letters] == ["wrong_type"]
    assert "requested_by" in output.dead_letters[0][1]["reason"]
    assert [r["kind"] for r in output.audit] == []
    long = {"command": "rebaseline", "model_id": "m", "requested_by": "x" * 5000,
            "reason": "y" * 5000}
    (record,) = step(state, [Record(CONTROL, 4, orjson.dumps(long), b"m")]).audit
    assert len(record["details"]["requested_by"]) == len(record["details"]["reason"]) == 1000
