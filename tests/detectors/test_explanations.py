"""Explanations and p-values are computed when read, yet always describe their own window."""

from __future__ import annotations

import inspect
from collections.abc import Callable
from dataclasses import FrozenInstanceError, fields, replace
from typing import Any

import numpy as np
import pytest

from detectors.base import TestResult, WindowedTest
from detectors.batch import NumericColumn
from detectors.drift.categorical import CategoricalDrift
from detectors.drift.numeric import NumericDrift
from detectors.monitor import Finding
from detectors.multivariate.pca import PCADrift
from detectors.quality.range import OutOfRangeRate
from tests.detectors.helpers import ALPHA, REFERENCE, WINDOW, categorical, numeric


def _result(explanation: Any) -> TestResult:
    return TestResult(detector="x", drift=True, statistic=1.0, threshold=0.5, p_value=None,
                      effect_size=0.5, severity="warning", window_events=10,
                      explanation=explanation, reference={"events": 10.0})


def test_a_text_function_is_called_once_on_first_read() -> None:
    calls: list[int] = []

    def explain() -> str:
        calls.append(1)
        return "mean 1 → 2"

    result = _result(explain)
    assert calls == []
    assert result.explanation == "mean 1 → 2" and result.explanation == "mean 1 → 2"
    assert calls == [1]
    assert result.to_dict()["explanation"] == "mean 1 → 2"
    assert result == _result("mean 1 → 2")
    assert replace(result, explanation="other").explanation == "other"


def test_a_p_value_function_is_called_once_on_first_read() -> None:
    calls: list[int] = []

    def p_value() -> float:
        calls.append(1)
        return 0.01

    result = replace(_result("text"), p_value=p_value)
    assert calls == []
    assert result.p_value == 0.01 and result.to_dict()["p_value"] == 0.01
    assert calls == [1]


def test_a_finding_is_built_from_every_field_in_order() -> None:
    # Finding writes its fields itself (for speed): a new field must be added there too.
    parameters = inspect.signature(Finding).parameters
    assert list(parameters) == [item.name for item in fields(Finding)]
    result = _result("text")
    finding = Finding("data_drift", "x", "distribution", result)
    assert finding == Finding(kind="data_drift", feature="x", check="distribution",
                              result=result, segment=None)
    assert replace(finding, segment="a=1").segment == "a=1"
    with pytest.raises(FrozenInstanceError):
        finding.kind = "other"  # type: ignore[misc]


def test_the_constructor_takes_every_field_by_keyword() -> None:
    # TestResult writes its fields itself (for speed): a new field must be added there too.
    parameters = inspect.signature(TestResult).parameters
    assert list(parameters) == [item.name for item in fields(TestResult)]
    assert all(p.kind is inspect.Parameter.KEYWORD_ONLY for p in parameters.values())
    result = _result("text")
    assert replace(result, drift=False) == TestResult(**{**result.to_dict(), "drift": False})

    def plain() -> TestResult:
        return TestResult(detector="x", drift=False, statistic=0.0, threshold=1.0,
                          p_value=None, effect_size=0.0, severity="warning", window_events=0,
                          explanation="t")

    assert plain().reference == {} and plain().reference is not plain().reference
    with pytest.raises(FrozenInstanceError):
        plain().drift = True  # type: ignore[misc]


def test_explanation_is_still_required() -> None:
    with pytest.raises(TypeError, match="explanation"):
        TestResult(detector="x", drift=False, statistic=0.0, threshold=1.0,  # type: ignore[call-arg]
                   p_value=None, effect_size=0.0, severity="warning", window_events=0)


def _pair(rng: np.random.Generator, n: int, rho: float) -> dict[str, NumericColumn]:
    x = rng.normal(size=n)
    y = rho * x + np.sqrt(1 - rho**2) * rng.normal(size=n)
    return {"x": numeric(x), "y": numeric(y)}


# Per test: a builder, then a reference, a drifted window and a different next window.
Case = tuple[Callable[[], WindowedTest[Any]], Callable[[np.random.Generator], list[Any]]]
CASES: dict[str, Case] = {
    "numeric": (lambda: NumericDrift(ALPHA), lambda rng: [
        numeric(rng.normal(size=REFERENCE)), numeric(rng.normal(1.0, 1.0, WINDOW)),
        numeric(rng.normal(-3.0, 5.0, WINDOW))]),
    "range": (lambda: OutOfRangeRate(ALPHA), lambda rng: [
        numeric(rng.normal(size=REFERENCE)), numeric(rng.normal(2.0, 1.0, WINDOW)),
        numeric(rng.normal(-9.0, 1.0, WINDOW))]),
    "categorical": (lambda: CategoricalDrift(ALPHA), lambda rng: [
        categorical(rng.choice(["a", "b", "c"], REFERENCE, p=[0.6, 0.3, 0.1]).tolist()),
        categorical(rng.choice(["a", "b", "c"], WINDOW, p=[0.3, 0.3, 0.4]).tolist()),
        categorical(rng.choice(["a", "b", "c"], WINDOW, p=[0.1, 0.8, 0.1]).tolist())]),
    "pca": (lambda: PCADrift(ALPHA, ["x", "y"]), lambda rng: [
        _pair(rng, REFERENCE, 0.8), _pair(rng, WINDOW, -0.8), _pair(rng, WINDOW, 0.2)]),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_an_explanation_or_p_value_read_later_describes_its_own_window(name: str) -> None:
    build, segments = CASES[name]
    reference, drifted, following = segments(np.random.default_rng(11))
    text, p_value = {}, {}
    for read_late in (False, True):
        test = build()
        test.update_many(reference)
        test.end_reference()
        test.update_many(drifted)
        result = test.end_window()
        if not read_late:
            text[read_late], p_value[read_late] = result.explanation, result.p_value
        # The next windows reset the test's window state and an open one fills it again:
        # none may reach the earlier verdict.
        for _ in range(2):
            test.update_many(following)
            assert test.end_window().explanation
        test.update_many(following)
        if read_late:
            text[read_late], p_value[read_late] = result.explanation, result.p_value
        assert result.drift, result.explanation
    assert text[True] == text[False]
    assert p_value[True] == p_value[False] and p_value[True] is not None


def _binary_prediction_findings(kind: str) -> list[Finding]:
    """Drifted findings of a model whose prediction's share of 1 (or 'approve') goes 32% → 55%."""
    from detectors.batch import CategoricalColumn, ColumnBatch
    from detectors.monitor import ModelMonitor, MonitorConfig

    rng = np.random.default_rng(18)
    n = 12_000
    ones = rng.random(n) < np.where(np.arange(n) < 7000, 0.32, 0.55)
    prediction = (NumericColumn(ones.astype(np.float64), np.zeros(n, bool)) if kind == "numeric"
                  else CategoricalColumn(np.where(ones, "approve", "decline").tolist()))
    monitor = ModelMonitor({"x": "numeric"}, {"prediction": kind},
                           MonitorConfig(reference_size=5000, window_size=2000))
    batch = ColumnBatch(np.arange(n, dtype=np.float64),
                        {"x": NumericColumn(rng.normal(size=n), np.zeros(n, bool))},
                        {"prediction": prediction})
    return [f for report in monitor.update_many(batch) for f in report.drifted
            if f.feature == "prediction"]


@pytest.mark.parametrize("kind", ["numeric", "categorical"])
def test_a_binary_prediction_drift_is_explained_as_a_share(kind: str) -> None:
    findings = _binary_prediction_findings(kind)
    # Both the sequential alarm (numeric only) and the windowed test speak of shares.
    detectors = {f.result.detector for f in findings}
    assert detectors >= ({"cusum_location", "chi2"} if kind == "numeric" else {"chi2"})
    subject = "share of 1 " if kind == "numeric" else "share of 'approve' "
    for finding in findings:
        text = finding.result.explanation
        assert text.startswith(subject), text
        assert "reference sd" not in text and "typical value" not in text, text
        before, after = (float(s.split("%")[0]) for s in text[len(subject):].split(" → ")[:2])
        assert 30.0 < before < 35.0 and 45.0 < after < 62.0, text


def test_a_continuous_shift_is_still_explained_in_values() -> None:
    from detectors.drift.cusum import NumericCusum

    rng = np.random.default_rng(19)
    test = NumericCusum(alpha=1e-8, reference_size=5000)
    test.update_many(NumericColumn(rng.normal(size=5000), np.zeros(5000, bool)))
    test.end_reference()
    test.update_many(NumericColumn(rng.normal(0.5, 1.0, 1000), np.zeros(1000, bool)))
    (alarm,) = test.last_alarms
    assert "typical value is ≈" in alarm.result.explanation
    assert "reference sd" in alarm.result.explanation
