"""Replay with labels: concept change found from labels alone, retrain requested once."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
import pytest

from detectors.synthetic import ScenarioSpec
from streams.offline.replay import replay
from streams.offline.simulate import write_scenario
from streams.settings import load_settings

EVENTS = 60_000


def run(tmp_path: Path, **spec: Any) -> tuple[list[dict[str, Any]], list[dict[str, Any]],
                                               dict[str, Any], Any]:
    files = write_scenario(ScenarioSpec("concept_change", EVENTS, **spec), tmp_path)
    truth = orjson.loads(files.truth.read_bytes())
    alerts_path, retrain_path = tmp_path / "alerts.jsonl", tmp_path / "retrain.jsonl"
    stats = replay(load_settings(environ={}), files.predictions, alerts_path,
                   labels=files.labels, retrain_out=retrain_path, progress=None)
    alerts = [orjson.loads(line) for line in alerts_path.read_bytes().splitlines()]
    retrain = [orjson.loads(line) for line in retrain_path.read_bytes().splitlines()]
    return alerts, retrain, truth, stats


def change_ts(truth: dict[str, Any]) -> float:
    return float(truth["start_ts"] + truth["drift_at"] / truth["events_per_second"])


@pytest.mark.parametrize("fraction", [1.0, 0.7])
def test_concept_change_alerts_from_labels_and_requests_one_retrain(
        tmp_path: Path, fraction: float) -> None:
    alerts, retrain, truth, stats = run(tmp_path, label_fraction=fraction,
                                        label_delay_events=500)
    changed = change_ts(truth)
    label_alerts = [a for a in alerts if a["kind"] in ("performance", "concept_drift")
                    and a["status"] == "firing"]
    assert label_alerts, [a["kind"] for a in alerts]
    assert all(a["window"]["end_ts"] >= changed for a in label_alerts), label_alerts
    assert not [a for a in alerts if a["kind"] == "data_drift"], "inputs did not change"
    assert len(retrain) == 1, retrain
    request = retrain[0]
    assert request["training_window"]["start_ts"] >= changed, request
    assert set(request["alert_ids"]) <= {a["alert_id"] for a in label_alerts}
    assert request["labeled_events"] >= 1000
    # Coverage: joined / predictions, within 1 % of the labelled share.
    assert stats.joined / stats.events == pytest.approx(fraction, abs=0.01)
