"""Realized performance: golden metrics, degradation and concept-drift alerts, state."""

from __future__ import annotations

import math
import re
from typing import Any

import numpy as np
import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from detectors.errors import ConfigurationError, StateError
from detectors.monitor import WindowReport
from detectors.performance import (
    CLASSIFICATION,
    REGRESSION,
    ClassificationMetrics,
    LabelledBatch,
    PerformanceConfig,
    PerformanceMonitor,
    RegressionMetrics,
    confidence_of,
    normalise_class,
    normalise_classes,
)
from streams.core.alerts import FIRING, AlertPolicy

CLASSES = np.array(["0", "1"], dtype=object)


def calibrated_stream(rng: np.random.Generator, n: int,
                      accuracy: np.ndarray | None = None, start: int = 0) -> LabelledBatch:
    """A binary model that says it is right with probability ~U(0.8, 1.0) (mean 0.9).

    It is right with that probability (calibrated, accuracy 0.9) unless
    ``accuracy`` gives, per event, the chance it actually is right.
    """
    confidence = rng.uniform(0.8, 1.0, n)
    predicted = rng.choice(CLASSES, n)
    right = rng.random(n) < (confidence if accuracy is None else accuracy)
    truth = np.where(right, predicted, np.where(predicted == "1", "0", "1")).astype(object)
    return LabelledBatch(ts=np.arange(start, start + n, dtype=np.float64), y_true=truth,
                         y_pred=predicted, score=np.where(predicted == "1", confidence,
                                                          1.0 - confidence),
                         confidence=confidence)


def regression_stream(rng: np.random.Generator, n: int, noise: float | np.ndarray = 1.0,
                      start: int = 0) -> LabelledBatch:
    truth = rng.normal(10.0, 3.0, n)
    return LabelledBatch(ts=np.arange(start, start + n, dtype=np.float64), y_true=truth,
                         y_pred=truth + rng.normal(0.0, 1.0, n) * noise, score=np.full(n, np.nan),
                         confidence=np.full(n, np.nan))


def feed(monitor: PerformanceMonitor, batch: LabelledBatch, size: int) -> list[WindowReport]:
    reports = []
    for start in range(0, len(batch), size):
        reports += monitor.update_many(batch.slice(start, start + size))
    return reports


def alarms(reports: list[WindowReport], kind: str) -> list[WindowReport]:
    return [r for r in reports if any(f.kind == kind for f in r.drifted)]


def plain(reports: list[WindowReport], digits: int | None = None) -> list[dict[str, Any]]:
    """Reports as dicts; floats rounded to ``digits`` significant digits when given.

    Sums over differently cut batches may differ in the last bits, so only
    identical batch sequences are compared exactly.
    """
    def rounded(value: Any) -> Any:
        if digits is not None and isinstance(value, float) and math.isfinite(value) and value:
            return round(value, digits - 1 - math.floor(math.log10(abs(value))))
        if isinstance(value, dict):
            return {k: rounded(v) for k, v in value.items()}
        return value

    return [{"index": r.index, "partial": r.partial, "events": r.events, "start": r.start_ts,
             "end": r.end_ts, "findings": [(f.kind, f.feature, f.check,
                                            rounded(f.result.to_dict())) for f in r.findings]}
            for r in reports]


# --- golden values, computed by hand -------------------------------------------------------

def test_classification_metrics_golden() -> None:
    batch = LabelledBatch.of(
        ["1", "1", "1", "0", "0", "0", "1", "0"],
        ["1", "1", "0", "0", "1", "0", "1", "0"],
        score=[0.9, 0.7, 0.4, 0.2, 0.6, 0.1, 0.8, 0.3])
    metrics = ClassificationMetrics("1")
    metrics.update(batch)
    r = metrics.result()
    # tp = 3 (rows 0, 1, 6), predicted positive = 4, actual positive = 4.
    assert r["accuracy"] == 6 / 8 and r["average"] == "binary"
    assert r["precision"] == 3 / 4 and r["recall"] == 3 / 4 and r["f1"] == 3 / 4
    # Positives 0.9 0.7 0.4 0.8 vs negatives 0.2 0.6 0.1 0.3: all pairs but (0.4, 0.6) ordered.
    assert r["roc_auc"] == 15 / 16
    losses = [-math.log(p) for p in (0.9, 0.7, 0.4, 0.8)] + [
        -math.log(1 - p) for p in (0.2, 0.6, 0.1, 0.3)]
    assert r["log_loss"] == pytest.approx(sum(losses) / 8, rel=1e-12)
    # Confidences .9 .7 .6 .8 .6 .9 .8 .7, correct 1 1 0 1 0 1 1 1; bins 0.6|0.7|0.8|0.9:
    # |0-1.2| + |2-1.4| + |2-1.6| + |2-1.8| = 2.4 over 8 events.
    assert r["calibration_error"] == pytest.approx(2.4 / 8, abs=1e-12)
    assert r["mean_confidence"] == pytest.approx(6.0 / 8)
    assert r["estimate_error"] == pytest.approx(0.0, abs=1e-12)


def test_multiclass_metrics_are_macro_averages() -> None:
    metrics = ClassificationMetrics("1")
    metrics.update(LabelledBatch.of(["a", "a", "b", "b", "c", "c"],
                                    ["a", "b", "b", "b", "a", "c"]))
    r = metrics.result()
    # a: P 1/2 R 1/2; b: P 2/3 R 1; c: P 1 R 1/2.
    assert r["average"] == "macro" and r["accuracy"] == 4 / 6
    assert r["precision"] == pytest.approx((1 / 2 + 2 / 3 + 1) / 3)
    assert r["recall"] == pytest.approx((1 / 2 + 1 + 1 / 2) / 3)
    assert r["f1"] == pytest.approx((1 / 2 + 0.8 + 2 / 3) / 3)
    assert r["log_loss"] is None and r["roc_auc"] is None and r["calibration_error"] is None


def test_regression_metrics_golden_and_nonfinite_rows_skipped() -> None:
    metrics = RegressionMetrics()
    metrics.update(LabelledBatch.of([3.0, -0.5, 2.0, 7.0, 1.0], [2.5, 0.0, 2.0, 8.0, math.nan],
                                    task=REGRESSION))
    r = metrics.result()
    assert r["events"] == 4 and r["mae"] == 0.5
    assert r["rmse"] == pytest.approx(math.sqrt(1.5 / 4))
    # mean 2.875, SST = 0.015625 + 11.390625 + 0.765625 + 17.015625 = 29.1875
    assert r["r2"] == pytest.approx(1 - 1.5 / 29.1875)


def test_merged_accumulators_equal_one_pass() -> None:
    rng = np.random.default_rng(11)
    batch = calibrated_stream(rng, 3000)
    whole, first, second = (ClassificationMetrics("1") for _ in range(3))
    whole.update(batch)
    first.update(batch.slice(0, 1234))
    second.update(batch.slice(1234, 3000))
    first.merge(second)
    for key, value in whole.result().items():
        assert first.result()[key] == (pytest.approx(value) if isinstance(value, float)
                                       else value), key


@given(st.lists(st.one_of(st.booleans(), st.integers(-3, 3), st.sampled_from(
    [0.0, -0.0, 1.0, 2.5, 1e20, 3.0]), st.sampled_from(["0", "1", "cat"])), max_size=30))
def test_normalise_classes_names_each_value_as_normalise_class_does(values: list[Any]) -> None:
    # True == 1 == 1.0 share a table entry: each must still get its own name.
    assert normalise_classes(values) == [normalise_class(v) for v in values]


def test_normalise_classes_takes_unhashable_and_nan_values_one_by_one() -> None:
    values = [float("nan"), float("nan"), 1, np.array([2])]
    assert normalise_classes(values) == [normalise_class(v) for v in values]


def test_normalise_class_and_confidence_of() -> None:
    assert [normalise_class(v) for v in (True, np.bool_(False), np.int64(2), 2.0, "x")] == [
        "1", "0", "2", "2", "x"]
    assert confidence_of("0", 0.25, None) == 0.75
    assert confidence_of("b", None, {"a": 0.1, "b": 0.9}) == 0.9
    for args in (("1", None, None), ("1", 1.5, None), ("x", 0.5, {"a": 1.0}),
                 ("1", math.nan, None)):
        assert math.isnan(confidence_of(*args))


# --- alerts -----------------------------------------------------------------------------

def test_stationary_labelled_stream_raises_nothing() -> None:
    rng = np.random.default_rng(1)
    monitor = PerformanceMonitor(CLASSIFICATION, PerformanceConfig(challengers=()))
    reports = feed(monitor, calibrated_stream(rng, 200_000), 1000)
    assert len([r for r in reports if not r.partial]) == 198
    assert [r.index for r in reports if r.drifted] == []
    metrics = monitor.metrics()
    assert metrics["since_reference"]["accuracy"] == pytest.approx(0.9, abs=0.005)
    assert abs(metrics["since_reference"]["estimate_error"]) < 0.005
    assert orjson.loads(orjson.dumps(metrics)) == metrics


def test_accuracy_drop_alerts_within_two_windows_and_concept_drift_sooner() -> None:
    rng = np.random.default_rng(2)
    change = 10_500   # inside window 8 (windows of 1000 after a 2000-event reference)
    accuracy = np.where(np.arange(30_000) < change, 0.9, 0.75)
    monitor = PerformanceMonitor(CLASSIFICATION, PerformanceConfig(challengers=()))
    reports = feed(monitor, calibrated_stream(rng, 30_000, accuracy), 700)
    performance = alarms([r for r in reports if not r.partial], "performance")
    concept = alarms([r for r in reports if r.partial], "concept_drift")
    assert performance and performance[0].start_ts >= change - 1000
    assert performance[0].end_ts < change + 2000
    accuracy_finding = next(f for f in performance[0].drifted if f.feature == "accuracy")
    assert accuracy_finding.check == "performance"
    assert re.match(r"accuracy 0\.(89|90)\d → 0\.7\d\d over the last 1,000 labelled "
                    r"events \(reference 0\.(89|90)\d ± 0\.01\d over 2,000 events; "
                    r"tolerated drop 0\.02\)$", accuracy_finding.result.explanation)
    assert concept and change <= concept[0].end_ts < change + 1000
    # Every window wholly after the change is degraded (window 8 is half before it).
    assert {r.index for r in performance} - {8} == set(range(9, 28))


def test_mae_increase_alerts_within_two_windows() -> None:
    rng = np.random.default_rng(3)
    change = 6000
    monitor = PerformanceMonitor(REGRESSION, PerformanceConfig(challengers=()))
    noise = np.where(np.arange(20_000) < change, 1.0, 1.5)
    reports = feed(monitor, regression_stream(rng, 20_000, noise), 999)
    performance = alarms([r for r in reports if not r.partial], "performance")
    assert performance and performance[0].start_ts == change
    assert [f.feature for f in performance[0].drifted if f.kind == "performance"] == ["mae"]
    concept = alarms(reports, "concept_drift")
    assert concept and change <= concept[0].end_ts < change + 1000
    assert monitor.metrics()["window"]["mae"] == pytest.approx(1.5 * math.sqrt(2 / math.pi),
                                                               rel=0.08)


def test_stationary_regression_raises_nothing() -> None:
    rng = np.random.default_rng(4)
    monitor = PerformanceMonitor(REGRESSION, PerformanceConfig(challengers=()))
    reports = feed(monitor, regression_stream(rng, 100_000), 5000)
    assert [r.index for r in reports if r.drifted] == []
    assert monitor.metrics()["since_reference"]["r2"] == pytest.approx(1 - 1 / 9, abs=0.01)


@pytest.mark.parametrize("seed", [5, 6, 7])
def test_concept_drift_detection_delay_after_error_rate_rise(seed: int) -> None:
    rng = np.random.default_rng(seed)
    change = 8000
    accuracy = np.where(np.arange(12_000) < change, 0.9, 0.8)
    monitor = PerformanceMonitor(CLASSIFICATION, PerformanceConfig(challengers=()))
    reports = feed(monitor, calibrated_stream(rng, 12_000, accuracy), 500)
    signals = [r.end_ts for r in alarms([r for r in reports if r.partial], "concept_drift")]
    assert signals and all(ts >= change for ts in signals)
    assert signals[0] - change < 1500


def test_alert_policy_fires_once_per_kind_on_performance_reports() -> None:
    rng = np.random.default_rng(2)
    accuracy = np.where(np.arange(8000) < 5000, 0.9, 0.7)
    monitor = PerformanceMonitor(CLASSIFICATION, PerformanceConfig(challengers=()))
    policy = AlertPolicy("m", "v1")
    events = [e for r in feed(monitor, calibrated_stream(rng, 8000, accuracy), 1000)
              for e in policy.apply(r)]
    # One firing event per kind: the partial concept report and the full report that repeats
    # it do not fire twice, and degraded windows after the first keep the alert open.
    firing = sorted(e["kind"] for e in events if e["status"] == FIRING)
    assert firing == ["concept_drift", "performance"]


def test_batching_does_not_change_reports() -> None:
    rng = np.random.default_rng(8)
    batch = calibrated_stream(rng, 9000, np.where(np.arange(9000) < 6000, 0.9, 0.8))
    one = PerformanceMonitor(CLASSIFICATION, PerformanceConfig(challengers=()))
    many = PerformanceMonitor(CLASSIFICATION, PerformanceConfig(challengers=()))
    assert plain(one.update_many(batch), 9) == plain(feed(many, batch, 137), 9)
    assert one.metrics()["since_reference"] == pytest.approx(many.metrics()["since_reference"])


# --- state and configuration --------------------------------------------------------------

@pytest.mark.parametrize("task", [CLASSIFICATION, REGRESSION])
def test_state_round_trip_mid_stream_gives_identical_reports(task: str) -> None:
    rng = np.random.default_rng(9)
    n = 9000
    if task == CLASSIFICATION:
        batch = calibrated_stream(rng, n, np.where(np.arange(n) < 5500, 0.9, 0.75))
    else:
        batch = regression_stream(rng, n, np.where(np.arange(n) < 5500, 1.0, 2.0))
    features = [{"x": float(i % 7), "kind": "abc"[i % 3]} for i in range(n)]
    batch = LabelledBatch(batch.ts, batch.y_true, batch.y_pred, batch.score, batch.confidence,
                          features)
    config = PerformanceConfig(challengers=("logistic_regression",), challenger_every=5,
                               challenger_warm_up=100)
    # Both runs see the same batches (sums over other cuts may differ in the last bit); the
    # interruption falls mid-window: 4321 = 2000 (reference) + 2 * 1000 + 321.
    straight = PerformanceMonitor(task, config)
    expected = feed(straight, batch.slice(0, 4321), 800) + feed(straight, batch.slice(4321, n),
                                                                 800)
    interrupted = PerformanceMonitor(task, config)
    before = feed(interrupted, batch.slice(0, 4321), 800)
    state = orjson.loads(orjson.dumps(interrupted.to_state()))
    restored = PerformanceMonitor.from_state(state)
    after = feed(restored, batch.slice(4321, n), 800)
    assert plain(before + after) == plain(expected)
    assert alarms(after, "performance")
    assert restored.metrics() == straight.metrics()
    # Challenger scores survive; the models themselves re-learn (documented).
    restored_result = restored.challenger_result()
    assert restored_result is not None
    assert restored_result["logistic_regression"]["learned"] == len(range(4325, n, 5))


def test_from_state_rejects_wrong_type_and_broken_state() -> None:
    monitor = PerformanceMonitor(CLASSIFICATION, PerformanceConfig(challengers=()))
    with pytest.raises(StateError, match="performance_monitor"):
        PerformanceMonitor.from_state({"type": "model_monitor", "version": 1})
    state = monitor.to_state()
    del state["clock"]
    with pytest.raises(StateError, match="clock"):
        PerformanceMonitor.from_state(state)


@pytest.mark.parametrize(("key", "value"), [
    ("reference_size", 10), ("window_size", 0), ("tolerance", 1.5), ("relative_tolerance", -1),
    ("alpha", 0.0), ("positive_class", ""), ("min_scored_events", 1),
    ("challengers", ("random_forest",)), ("challenger_every", 0), ("challenger_warm_up", -1),
    ("challenger_alpha", 1.0), ("window_size", True),
])
def test_invalid_config_names_the_key(key: str, value: Any) -> None:
    with pytest.raises(ConfigurationError, match=f"^{key}: expected"):
        PerformanceConfig(**{key: value})


def test_invalid_task_and_batch_name_the_key() -> None:
    with pytest.raises(ConfigurationError, match="^task: expected"):
        PerformanceMonitor("ranking", PerformanceConfig())
    with pytest.raises(ConfigurationError, match="^y_pred: expected 2 values"):
        LabelledBatch(np.zeros(2), np.array(["1", "0"], dtype=object),
                      np.array(["1"], dtype=object), np.zeros(2), np.zeros(2))
