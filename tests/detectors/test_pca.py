"""PCADrift: a joint change no marginal shows, false alarms, calibration, state, bounded memory."""

from __future__ import annotations

import math

import numpy as np
import orjson
import pytest

from detectors.base import CRITICAL, TestResult
from detectors.batch import CategoricalColumn, NumericBlock, NumericColumn
from detectors.drift.cusum import NumericCusum
from detectors.drift.numeric import NumericDrift
from detectors.errors import ConfigurationError
from detectors.multivariate.pca import PCADrift
from tests.detectors.helpers import ALPHA, REFERENCE, WINDOW, first_drift, numeric, run

FEATURES = ["income", "balance", "age", "tenure", "utilisation", "late_payments"]


def credit_features(rng: np.random.Generator, n: int, balance_rho: float = 0.7,
                    missing: float = 0.0) -> dict[str, NumericColumn]:
    """Six correlated features with skewed, discrete and bounded marginals.

    ``balance_rho`` sets the dependence of balance on income; its sign can flip
    while both marginals stay exactly as they were.
    """
    income_score, noise, life, spend, late = rng.normal(size=(5, n))
    balance_score = balance_rho * income_score + math.sqrt(1.0 - balance_rho**2) * noise
    columns = {
        "income": np.exp(10.5 + 0.6 * income_score),
        "balance": np.exp(8.0 + 1.1 * balance_score),
        "age": 45.0 + 12.0 * life,
        "tenure": np.round(np.clip(8.0 + 5.0 * (0.8 * life + 0.6 * spend), 0.0, None)),
        "utilisation": 1.0 / (1.0 + np.exp(-(0.7 * spend + 0.7 * late))),
        "late_payments": rng.poisson(np.exp(0.3 * late - 0.5)).astype(np.float64),
    }
    return {name: numeric(values, rng.random(n) < missing) for name, values in columns.items()}


def stream_windows(rng: np.random.Generator, count: int, change_at: int | None = None,
                   rho_after: float = -0.7) -> list[dict[str, NumericColumn]]:
    return [credit_features(rng, WINDOW, rho_after if change_at is not None and i >= change_at
                            else 0.7) for i in range(count)]


def test_golden_correlation_flip_is_caught_in_the_first_changed_window() -> None:
    rng = np.random.default_rng(20261201)
    reference = credit_features(rng, REFERENCE)
    windows = stream_windows(rng, 10, change_at=5)
    results = run(PCADrift(ALPHA, FEATURES), reference, windows)
    assert first_drift(results) == 5
    assert all(r.drift for r in results[5:])
    flagged = results[5]
    assert flagged.detector == "pca_reconstruction"
    assert flagged.severity == CRITICAL
    assert flagged.p_value is not None and flagged.p_value < ALPHA
    # The pair whose correlation flipped leads the explanation, with both values.
    pairs = flagged.explanation.split("rank correlation of ")[1]
    first = pairs.split(", of ")[0]
    assert first.startswith("income and balance 0.7")
    assert "→ −0.6" in first or "→ −0.7" in first


def test_no_single_feature_shows_the_flip() -> None:
    rng = np.random.default_rng(20261202)
    reference = credit_features(rng, REFERENCE)
    windows = stream_windows(rng, 6, change_at=3)
    for name in FEATURES:
        results = run(NumericDrift(ALPHA), reference[name], [w[name] for w in windows])
        assert not any(r.drift for r in results), name
    assert first_drift(run(PCADrift(ALPHA, FEATURES), reference, windows)) == 3


def test_a_strengthened_correlation_is_caught_by_hotelling_t2() -> None:
    rng = np.random.default_rng(20261203)
    results = run(PCADrift(ALPHA, ["income", "balance"]),
                  credit_features(rng, REFERENCE, balance_rho=0.3),
                  [credit_features(rng, WINDOW, balance_rho=0.3),
                   credit_features(rng, WINDOW, balance_rho=0.85)])
    assert [r.drift for r in results] == [False, True]
    assert results[1].detector == "pca_hotelling"
    assert results[1].explanation.endswith("rank correlation of income and balance 0.30 → 0.85")


def test_no_false_alarm_on_300_stationary_windows() -> None:
    rng = np.random.default_rng(20261204)
    alarms, largest = 0, -math.inf
    for _ in range(3):  # three references, so one lucky reference cannot carry the test
        results = run(PCADrift(ALPHA, FEATURES), credit_features(rng, REFERENCE, missing=0.02),
                      (credit_features(rng, WINDOW, missing=0.02) for _ in range(100)))
        alarms += sum(r.drift for r in results)
        largest = max(largest, *(r.effect_size for r in results))
        assert all(r.p_value is not None and math.isfinite(r.statistic) for r in results)
    assert alarms == 0
    assert largest < 0.15


@pytest.mark.parametrize("columns", [["income", "balance"], FEATURES], ids=["2", "6"])
def test_false_alarm_rate_matches_alpha(columns: list[str]) -> None:
    """Without the effect floor, about alpha of stationary windows alarm (not 10x more)."""
    rng = np.random.default_rng(len(columns))
    alarms = windows = 0
    for _ in range(8):
        results = run(PCADrift(0.01, columns, min_increase=0.0),
                      credit_features(rng, REFERENCE),
                      (credit_features(rng, WINDOW) for _ in range(50)))
        alarms += sum(r.drift for r in results)
        windows += len(results)
    assert alarms / windows <= 0.03


def test_state_round_trip_mid_window_continues_exactly() -> None:
    rng = np.random.default_rng(20261205)
    reference = credit_features(rng, REFERENCE, missing=0.05)
    first_half = credit_features(rng, WINDOW // 2, missing=0.05)
    second_half = credit_features(rng, WINDOW // 2, balance_rho=-0.7, missing=0.05)
    original = PCADrift(ALPHA, FEATURES)
    original.update_many(reference)
    original.end_reference()
    original.update_many(first_half)
    restored = PCADrift.from_state(orjson.loads(orjson.dumps(original.to_state())))
    for test in (original, restored):
        test.update_many(second_half)
    assert restored.end_window() == original.end_window()
    assert restored.to_state() == original.to_state()
    assert restored.drift_detected and original.drift_detected


def test_reference_is_capped_and_released() -> None:
    rng = np.random.default_rng(20261206)
    test = PCADrift(ALPHA, FEATURES, reference_size=1000)
    test.update_many(credit_features(rng, 3000))
    assert [len(values) for values in test.to_state()["state"]["buffer"]] == [1000] * 6
    test.end_reference()
    state = test.to_state()["state"]
    assert state["buffer"] == [[]] * 6
    test.update_many(credit_features(rng, WINDOW))
    assert len(orjson.dumps(test.to_state())) < 20_000  # sums of the window, not its rows
    assert test.end_window().reference["events"] == 1000


def test_incomplete_events_are_skipped() -> None:
    rng = np.random.default_rng(20261207)
    test = PCADrift(ALPHA, ["income", "balance"])
    segment = credit_features(rng, 1000)
    segment["balance"] = numeric(segment["balance"].values, np.arange(1000) % 4 == 0)
    test.update_many(segment)
    test.update_many({"income": segment["income"]})  # balance absent: missing everywhere
    test.end_reference()
    assert test.to_state()["state"]["reference_events"] == 750


def test_too_small_or_constant_reference_is_not_tested() -> None:
    rng = np.random.default_rng(20261208)
    small = PCADrift(ALPHA, FEATURES)
    (result,) = run(small, credit_features(rng, 40), [credit_features(rng, WINDOW)])
    assert not result.drift
    assert result.window_events == WINDOW
    assert result.explanation == "not tested: the reference has 40 complete events (need 50)"
    flat = {"a": numeric(np.ones(500)), "b": numeric(rng.normal(size=500))}
    (result,) = run(PCADrift(ALPHA, ["a", "b"]), flat, [flat])
    assert result.explanation == "not tested: fewer than 2 of the 2 features vary in the reference"


def test_a_segment_must_be_numeric_columns_of_one_length() -> None:
    test = PCADrift(ALPHA, ["a", "b"])
    with pytest.raises(ConfigurationError, match=r"columns\['b'\]: expected 3 rows, got 2"):
        test.update_many({"a": numeric([1.0, 2.0, 3.0]), "b": numeric([1.0, 2.0])})
    with pytest.raises(ConfigurationError, match="expected a NumericColumn"):
        test.update_many({"a": numeric([1.0]), "b": CategoricalColumn(["x"])})  # type: ignore[dict-item]


def test_a_wild_value_cannot_outweigh_a_window() -> None:
    rng = np.random.default_rng(20261209)
    window = credit_features(rng, WINDOW)
    wild = window["income"].values.copy()
    wild[0] = 1e300
    window["income"] = numeric(wild)
    (result,) = run(PCADrift(ALPHA, FEATURES), credit_features(rng, REFERENCE), [window])
    assert not result.drift
    assert abs(result.effect_size) < 0.1


def _blocks(segments: list[dict[str, NumericColumn]]) -> list[NumericBlock]:
    return [NumericBlock.from_columns(segment, FEATURES, len(segment[FEATURES[0]].values))
            for segment in segments]


def run_scored(reference: dict[str, NumericColumn],
               windows: list[dict[str, NumericColumn]]) -> list[TestResult]:
    """A scored PCA fed the scores of a NumericCusum over the same features, as in the monitor."""
    cusum = NumericCusum(1e-9, columns=FEATURES)
    test = PCADrift(ALPHA, FEATURES, scored=True)
    (block,) = _blocks([reference])
    cusum.update_many(block)
    test.update_many(block)
    cusum.end_reference()
    test.end_reference(cusum.scores_of)
    results = []
    for block in _blocks(windows):
        cusum.update_many(block)
        test.update_many(block, cusum.last_scores)
        results.append(test.end_window())
    return results


def test_scored_by_a_sequential_test_it_catches_the_flip_and_only_that() -> None:
    rng = np.random.default_rng(20261210)
    for _ in range(2):
        reference = credit_features(rng, REFERENCE, missing=0.02)
        windows = [credit_features(rng, WINDOW, -0.7 if i >= 20 else 0.7, missing=0.02)
                   for i in range(22)]
        results = run_scored(reference, windows)
        assert first_drift(results) == 20 and results[21].drift
        assert results[20].explanation.split("rank correlation of ")[1].startswith(
            "income and balance")


def test_scored_mode_needs_the_scores_and_the_scorer() -> None:
    rng = np.random.default_rng(20261211)
    reference, window = credit_features(rng, REFERENCE), credit_features(rng, WINDOW)
    test = PCADrift(ALPHA, FEATURES, scored=True)
    (block,) = _blocks([reference])
    test.update_many(block)
    with pytest.raises(ConfigurationError, match="scorer: expected the function"):
        test.end_reference()
    cusum = NumericCusum(1e-9, columns=FEATURES)
    cusum.update_many(block)
    cusum.end_reference()
    test.end_reference(cusum.scores_of)
    (block,) = _blocks([window])
    with pytest.raises(ConfigurationError, match="scores: expected the normal scores"):
        test.update_many(block)
    with pytest.raises(ConfigurationError, match="scores: expected the normal scores"):
        test.update_many(window, cusum.scores_of(block.values))
    restored = PCADrift.from_state(orjson.loads(orjson.dumps(test.to_state())))
    assert restored.scored
