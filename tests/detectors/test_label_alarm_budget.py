"""The label-side alarms keep the feature side's budget: one false alarm per 10M labelled events.

Statistical tests on seeded stationary streams (no alarm where the budget
says almost surely none) paired with detections after real changes (so a test
that passes by never alarming cannot pass). The full measurement, 10M labelled
events per error rate × coverage, is ``driftline bench quality --part labels``.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from detectors.concept import BernoulliCusum
from detectors.concept.bernoulli_cusum import (
    DEFAULT_THRESHOLDS,
    FALSE_ALARM_EVENTS,
    lorden_threshold,
)
from detectors.performance import (
    EstimationConfig,
    LabelFreeEstimator,
    LabelledBatch,
    PerformanceConfig,
    PerformanceMonitor,
)

CLASSES = np.array(["0", "1"], dtype=object)


def stationary_errors(seed: int, rate: float, n: int) -> np.ndarray:
    return (np.random.default_rng(seed).random(n) < rate).astype(np.float64)


def calibrated(rng: np.random.Generator, rate: float, n: int,
               worse_from: int | None = None, worse_by: float = 0.0) -> LabelledBatch:
    """A calibrated binary model with error rate ``rate`` (``+ worse_by`` from ``worse_from``).

    Confidences ``1 - 0.5·U**k`` with mean ``1 - rate``; after ``worse_from`` the
    model stays as confident but is wrong ``worse_by`` more often (a concept change).
    """
    wrong_probability = 0.5 * rng.random(n) ** (0.5 / rate - 1.0)
    actual = wrong_probability.copy()
    if worse_from is not None:
        actual[worse_from:] = np.minimum(actual[worse_from:] + worse_by, 1.0)
    predicted = rng.random(n) < 0.5
    truth = predicted ^ (rng.random(n) < actual)
    return LabelledBatch(ts=np.arange(n, dtype=np.float64),
                         y_true=CLASSES[truth.astype(np.int64)],
                         y_pred=CLASSES[predicted.astype(np.int64)],
                         score=np.where(predicted, 1.0 - wrong_probability, wrong_probability),
                         confidence=1.0 - wrong_probability)


def test_the_default_thresholds_are_measured_and_others_get_lordens_bound() -> None:
    # The default odds ratios have thresholds measured on stationary streams (0.1-0.3 false
    # alarms per 10M); other ratios fall back on Lorden's bound, one crossing per 10M.
    assert BernoulliCusum().threshold == DEFAULT_THRESHOLDS
    assert len(DEFAULT_THRESHOLDS) * math.exp(-min(DEFAULT_THRESHOLDS)) > 1 / FALSE_ALARM_EVENTS
    detector = BernoulliCusum(odds_ratios=(2.0,))
    assert detector.threshold == pytest.approx((lorden_threshold(1),))
    assert math.exp(-detector.threshold[0]) == pytest.approx(1 / FALSE_ALARM_EVENTS)
    assert BernoulliCusum(threshold=12.0).threshold == (12.0, 12.0, 12.0)


@pytest.mark.parametrize("rate", [0.01, 0.1, 0.25, 0.4])
def test_no_concept_signal_over_a_million_stationary_labelled_events(rate: float) -> None:
    # The budget allows 0.1 signals per million (measured: 0.02); a threshold of 12 for all
    # three CUSUMs measured 3-8 per 10M at rates of 5-40 %, so over these 4M events it fails
    # with probability ~80 %.
    assert BernoulliCusum().update_many(stationary_errors(int(rate * 1000), rate,
                                                         1_000_000)).size == 0


@pytest.mark.parametrize("rate", [0.02, 0.2, 0.45])
def test_no_concept_signal_just_after_starts(rate: float) -> None:
    # The baseline is least certain right after a (re)start: 200 fresh detectors × 5,000
    # stationary values each.
    rng = np.random.default_rng(int(rate * 100) + 7)
    alarms = sum(BernoulliCusum().update_many((rng.random(5000) < rate).astype(float)).size
                 for _ in range(200))
    assert alarms == 0


@pytest.mark.parametrize(("before", "after"), [(0.01, 0.08), (0.1, 0.2), (0.25, 0.4)])
def test_a_real_rise_is_detected_with_the_delay_wald_predicts(before: float, after: float) -> None:
    # Wald: about threshold / KL(after ‖ before) values for the best-matched CUSUM; bounded
    # here with the largest threshold (18, + 0.5 for its rise above a 10 % baseline); allow
    # 30 % + 20 for overshoot and the odds ratios' mismatch.
    kl = after * math.log(after / before) + (1 - after) * math.log((1 - after) / (1 - before))
    delays = []
    for seed in range(20):
        values = np.r_[stationary_errors(seed, before, 5000),
                       stationary_errors(seed + 100, after, 5000)]
        detector = BernoulliCusum()
        hits = detector.update_many(values)
        assert hits.size and hits[0] >= 5000, (seed, hits)
        delays.append(int(hits[0]) - 5000)
    assert np.mean(delays) <= 1.3 * (max(detector.threshold) + 0.5) / kl + 20, delays


@pytest.mark.parametrize("rate", [0.01, 0.2, 0.4])
def test_performance_monitor_is_silent_on_a_stationary_labelled_stream(rate: float) -> None:
    # 400,000 labelled events: 398 windows of accuracy and log-loss tests and the concept
    # detector; the budget allows 0.04 alarms here.
    monitor = PerformanceMonitor("classification", PerformanceConfig(challengers=()))
    reports = monitor.update_many(calibrated(np.random.default_rng(int(rate * 100)), rate,
                                             400_000))
    assert len(reports) == 398
    assert [(r.index, f.kind, f.feature) for r in reports for f in r.drifted] == []


def test_performance_monitor_reports_a_concept_change_within_a_bounded_delay() -> None:
    # Same stream, 10 points more errors from event 100,000 on, confidences unchanged.
    for seed in range(5):
        batch = calibrated(np.random.default_rng(seed), 0.2, 110_000, worse_from=100_000,
                           worse_by=0.1)
        reports = PerformanceMonitor("classification",
                                     PerformanceConfig(challengers=())).update_many(batch)
        alarms = [(r.events + 2000 + 1000 * r.index, f.kind) for r in reports
                  for f in r.drifted]
        kinds = {kind for _, kind in alarms}
        assert kinds == {"concept_drift", "performance"}, (seed, alarms)
        first = min(at for at, kind in alarms if kind == "concept_drift")
        assert 100_000 <= first <= 101_500, (seed, alarms)


@pytest.mark.parametrize("rate", [0.01, 0.4])
def test_label_free_estimate_is_silent_on_stationary_confidences(rate: float) -> None:
    rng = np.random.default_rng(int(rate * 100) + 1)
    estimator = LabelFreeEstimator(EstimationConfig())
    confidence = 1.0 - 0.5 * rng.random(2_000_000) ** (0.5 / rate - 1.0)
    reports = estimator.update_many(np.arange(confidence.size, dtype=np.float64), confidence)
    assert len(reports) == 399
    assert not any(f.result.drift for r in reports for f in r.findings)
    # ... and it does fire when the model becomes less sure of itself.
    shifted = 1.0 - 0.5 * rng.random(10_000) ** (0.5 / (rate + 0.05) - 1.0)
    later = estimator.update_many(np.arange(10_000.0) + confidence.size, shifted)
    assert [any(f.result.drift for f in r.findings) for r in later] == [True, True]
