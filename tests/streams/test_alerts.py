from __future__ import annotations

import numpy as np

from detectors.batch import ColumnBatch
from detectors.monitor import ModelMonitor, MonitorConfig
from streams.alerts import AlertPolicy
from tests.contract import validate


def run(values: np.ndarray, policy: AlertPolicy) -> list[dict[str, object]]:
    monitor = ModelMonitor({"x": "numeric"}, {}, MonitorConfig(reference_size=1000,
                                                               window_size=500))
    alerts: list[dict[str, object]] = []
    for start in range(0, values.size, 700):
        chunk = values[start:start + 700]
        batch = ColumnBatch.from_numeric(ts=np.arange(start, start + chunk.size, dtype=float),
                                         x=chunk)
        for report in monitor.update_many(batch):
            alerts += policy.apply(report)
    return alerts


def test_a_persistent_drift_fires_once_and_resolves_once_after_it_ends() -> None:
    rng = np.random.default_rng(11)
    # Reference 1000, 10 clean windows, a +2σ shift lasting 1,000,000 events, 10 clean windows.
    drifted = 1_000_000
    values = np.r_[rng.normal(size=1000 + 5000), rng.normal(2.0, 1.0, drifted),
                   rng.normal(size=5000)]
    alerts = run(values, AlertPolicy("m", "v1", resolve_after_windows=3))
    by_key: dict[str, list[dict[str, object]]] = {}
    for alert in alerts:
        by_key.setdefault(str(alert["dedup_key"]), []).append(alert)
    # The shift is a distribution drift and pushes values past the reference range too:
    # two dedup keys, each exactly one firing then one resolved.
    assert sorted(by_key) == ["m|v1|data_drift|x|distribution",
                              "m|v1|data_quality|x|out_of_range_rate"]
    for key, events in by_key.items():
        assert [a["status"] for a in events] == ["firing", "resolved"], key
        assert events[1]["resolves"] == events[0]["alert_id"]
        assert events[1]["window"]["end_ts"] == values.size - 5000 + 3 * 500 - 1
    firing = by_key["m|v1|data_drift|x|distribution"][0]
    # The block CUSUM fires inside the first drifted window (a partial window report), so
    # the alert's window ends at that block, before the window's last event.
    assert 1000 + 5000 <= firing["window"]["end_ts"] <= 1000 + 5000 + 499
    for alert in alerts:
        validate(alert, "alert")


def test_alert_ids_are_deterministic_across_runs() -> None:
    rng = np.random.default_rng(12)
    values = np.r_[rng.normal(size=3000), rng.normal(3.0, 1.0, 2000)]
    first = run(values, AlertPolicy("m", "v1"))
    again = run(values, AlertPolicy("m", "v1"))
    assert first and [a["alert_id"] for a in first] == [a["alert_id"] for a in again]
    assert run(values, AlertPolicy("m", "v2"))[0]["alert_id"] != first[0]["alert_id"]


def test_policy_state_round_trips_and_does_not_refire() -> None:
    rng = np.random.default_rng(13)
    policy = AlertPolicy("m", "v1")
    run(np.r_[rng.normal(size=1000), rng.normal(3.0, 1.0, 1000)], policy)
    restored = AlertPolicy.from_state(policy.to_state())
    assert restored.open_alerts == policy.open_alerts and restored.open_alerts
