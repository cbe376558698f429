"""Tests for the seeded synthetic prediction/label generator."""

from __future__ import annotations

import functools
import json
import math
from typing import Any

import numpy as np
import pytest

from detectors.synthetic import (
    FEATURES,
    GRADUAL_WIDTH,
    SCENARIOS,
    DriftPoint,
    ScenarioSpec,
    iter_chunks,
    truth,
)

# Long enough for the statistical tolerances below to sit at 3.5+ standard errors.
EVENTS = 50_000
DRIFT_AT = 25_000

Events = list[dict[str, Any]]


def stream(spec: ScenarioSpec, chunk_size: int = 10_000) -> tuple[Events, Events]:
    predictions: Events = []
    labels: Events = []
    for chunk_predictions, chunk_labels in iter_chunks(spec, chunk_size):
        predictions.extend(chunk_predictions)
        labels.extend(chunk_labels)
    return predictions, labels


@functools.cache
def long_columns(scenario: str) -> dict[str, list[Any]]:
    """Columns of a long run; caching columns, not event dicts, keeps GC passes short."""
    predictions, labels = stream(ScenarioSpec(scenario, events=EVENTS, drift_at=DRIFT_AT))
    label_of = {event["event_id"]: event["label"] for event in labels}
    columns = {name: [event["features"][name] for event in predictions] for name in FEATURES}
    for name in ("ts", "prediction", "score"):
        columns[name] = [event[name] for event in predictions]
    columns["label"] = [label_of[event["event_id"]] for event in predictions]
    return columns


def feature(scenario: str, name: str) -> np.ndarray:
    return np.array(long_columns(scenario)[name], dtype=object)


def numeric(scenario: str, name: str) -> np.ndarray:
    return np.array(long_columns(scenario)[name], dtype=np.float64)


def accuracy_and_expected(scenario: str) -> tuple[float, float, float, float]:
    correct = numeric(scenario, "prediction") == numeric(scenario, "label")
    score = numeric(scenario, "score")
    expected = np.maximum(score, 1.0 - score)
    before, after = slice(0, DRIFT_AT), slice(DRIFT_AT, None)
    return (
        float(correct[before].mean()),
        float(expected[before].mean()),
        float(correct[after].mean()),
        float(expected[after].mean()),
    )


# --- determinism -------------------------------------------------------------


def test_same_spec_gives_same_stream() -> None:
    spec = ScenarioSpec("mean_shift", events=3_000, seed=11)
    first = [chunk for chunk in iter_chunks(spec, 1_000)]
    second = [chunk for chunk in iter_chunks(spec, 1_000)]
    assert first == second


@pytest.mark.parametrize("chunk_size", [7, 999, 8_192, 50_000])
def test_output_does_not_depend_on_chunk_size(chunk_size: int) -> None:
    spec = ScenarioSpec("gradual", events=12_000, drift_at=3_000, label_fraction=0.5)
    assert stream(spec, chunk_size) == stream(spec, 10_000)


def test_different_seeds_give_different_streams() -> None:
    first = stream(ScenarioSpec("stationary", events=1_000, seed=1))[0]
    second = stream(ScenarioSpec("stationary", events=1_000, seed=2))[0]
    assert [event["features"] for event in first] != [event["features"] for event in second]


# --- counts, labels and delay ------------------------------------------------


def test_chunk_sizes_and_event_ids() -> None:
    spec = ScenarioSpec("stationary", events=2_500)
    sizes = [len(predictions) for predictions, _ in iter_chunks(spec, 1_000)]
    assert sizes == [1_000, 1_000, 500]
    predictions, labels = stream(spec)
    assert [event["event_id"] for event in predictions] == [
        f"credit-risk-{i:09d}" for i in range(2_500)
    ]
    assert len(labels) == 2_500


def test_label_fraction_sets_label_coverage() -> None:
    spec = ScenarioSpec("stationary", events=100_000, label_fraction=0.7)
    predictions, labels = stream(spec)
    assert len(predictions) == 100_000
    assert len(labels) / 100_000 == pytest.approx(0.7, abs=0.01)
    assert len({event["event_id"] for event in labels}) == len(labels)


@pytest.mark.parametrize("fraction", [0.0, 1.0])
def test_label_fraction_extremes(fraction: float) -> None:
    _, labels = stream(ScenarioSpec("stationary", events=3_000, label_fraction=fraction))
    assert len(labels) == round(3_000 * fraction)


@pytest.mark.parametrize("delay", [0, 250, 5_000])
def test_labels_arrive_with_their_delay_in_event_order(delay: int) -> None:
    spec = ScenarioSpec(
        "stationary", events=4_000, label_delay_events=delay, label_fraction=0.6, seed=3
    )
    chunk_size = 700
    chunks = list(iter_chunks(spec, chunk_size))
    last_chunk = len(chunks) - 1
    prediction_ts: dict[str, float] = {}
    emitted: list[int] = []
    for chunk_number, (predictions, labels) in enumerate(chunks):
        prediction_ts.update((event["event_id"], event["ts"]) for event in predictions)
        for label in labels:
            index = int(label["event_id"].rsplit("-", 1)[1])
            due_chunk = (index + delay) // chunk_size
            assert chunk_number == min(due_chunk, last_chunk)
            assert label["event_id"] in prediction_ts
            expected_ts = prediction_ts[label["event_id"]] + delay / spec.events_per_second
            assert label["ts"] == pytest.approx(expected_ts, abs=1e-3)
            emitted.append(index)
    assert emitted == sorted(emitted)
    assert len(emitted) == len(set(emitted))


# --- event shapes --------------------------------------------------------------


def test_every_event_has_the_contract_fields_and_types() -> None:
    spec = ScenarioSpec("new_category", events=20_000, label_fraction=0.8, seed=5)
    predictions, labels = stream(spec)
    for i, event in enumerate(predictions):
        assert set(event) == {
            "model_id", "model_version", "event_id", "ts", "features", "prediction", "score",
        }  # fmt: skip
        assert event["model_id"] == "credit-risk"
        assert event["model_version"] == "v1"
        assert event["ts"] == round(spec.start_ts + i / spec.events_per_second, 3)
        assert type(event["score"]) is float and 0.0 <= event["score"] <= 1.0
        assert type(event["prediction"]) is int
        assert event["prediction"] == int(event["score"] >= 0.5)
        features = event["features"]
        assert list(features) == list(FEATURES)
        for name in ("age", "tenure_months", "num_txn_30d", "credit_score"):
            assert type(features[name]) is int
        for name in ("balance", "avg_txn_amount", "credit_utilization"):
            assert type(features[name]) is float
        for name in ("income", "days_since_login"):
            assert features[name] is None or type(features[name]) is float
        for name in ("country", "device", "plan"):
            assert type(features[name]) is str
        assert type(features["is_promo"]) is bool
    for label in labels:
        assert set(label) == {"model_id", "event_id", "ts", "label"}
        assert type(label["ts"]) is float
        assert label["label"] in (0, 1) and type(label["label"]) is int
    json.dumps(predictions, allow_nan=False)
    json.dumps(labels, allow_nan=False)


def test_feature_values_are_realistic() -> None:
    scenario = "stationary"
    assert len(FEATURES) >= 12
    age, score = numeric(scenario, "age"), numeric(scenario, "credit_score")
    assert age.min() >= 18 and age.max() <= 90
    assert score.min() >= 300 and score.max() <= 850
    assert score.mean() == pytest.approx(680, abs=2) and score.std() == pytest.approx(50, abs=2)
    utilization = numeric(scenario, "credit_utilization")
    assert utilization.min() >= 0.0 and utilization.max() <= 1.0
    assert numeric(scenario, "num_txn_30d").min() >= 0
    for name in ("income", "days_since_login"):
        missing = np.mean([value is None for value in feature(scenario, name)])
        assert missing == pytest.approx(0.01, abs=0.002)
    countries = feature(scenario, "country")
    assert set(countries) == {"US", "GB", "DE", "FR", "ES", "IT", "NL", "PL"}
    assert np.mean(countries == "US") == pytest.approx(0.42, abs=0.01)
    assert set(feature(scenario, "device")) == {"mobile", "desktop", "tablet"}
    assert set(feature(scenario, "plan")) == {"basic", "plus", "pro"}


# --- planted drifts ------------------------------------------------------------


def before_after(scenario: str, name: str) -> tuple[np.ndarray, np.ndarray]:
    values = numeric(scenario, name)
    return values[:DRIFT_AT], values[DRIFT_AT:]


def test_mean_shift_moves_credit_score_by_one_sd() -> None:
    before, after = before_after("mean_shift", "credit_score")
    assert after.mean() - before.mean() == pytest.approx(50, abs=5)
    assert after.std() == pytest.approx(before.std(), rel=0.05)


def test_stationary_has_no_shift() -> None:
    for name in ("credit_score", "balance", "age", "credit_utilization"):
        before, after = before_after("stationary", name)
        assert abs(after.mean() - before.mean()) < 0.05 * before.std()
        assert after.std() == pytest.approx(before.std(), rel=0.03)


@pytest.mark.parametrize("scenario", [s for s in SCENARIOS if s != "stationary"])
def test_only_the_planted_feature_changes(scenario: str) -> None:
    changed = {point["feature"] for point in truth(ScenarioSpec(scenario, events=10))["drifts"]}
    for name in FEATURES:
        same = long_columns(scenario)[name] == long_columns("stationary")[name]
        assert same == (name not in changed), name
    for name in [*FEATURES, "ts", "score", "label"]:
        before = long_columns(scenario)[name][:DRIFT_AT]
        assert before == long_columns("stationary")[name][:DRIFT_AT], name


def test_variance_change_doubles_balance_sd_and_keeps_mean() -> None:
    before, after = before_after("variance_change", "balance")
    assert after.std() / before.std() == pytest.approx(2.0, abs=0.06)
    assert abs(after.mean() - before.mean()) < 0.05 * before.std()


def test_new_category_appears_after_drift() -> None:
    countries = feature("new_category", "country")
    assert not np.any(countries[:DRIFT_AT] == "XX")
    assert np.mean(countries[DRIFT_AT:] == "XX") == pytest.approx(0.15, abs=0.01)


def test_gradual_shift_is_linear_over_its_width() -> None:
    scores = numeric("gradual", "credit_score")
    baseline = scores[:DRIFT_AT].mean()
    middle = scores[DRIFT_AT + 4_000 : DRIFT_AT + 6_000].mean() - baseline
    done = scores[DRIFT_AT + GRADUAL_WIDTH :].mean() - baseline
    early = scores[DRIFT_AT : DRIFT_AT + 1_000].mean() - baseline
    assert early == pytest.approx(2.5, abs=5)
    assert middle == pytest.approx(25, abs=5)
    assert done == pytest.approx(50, abs=5)


def test_missing_surge_raises_income_missing_rate_only() -> None:
    income = feature("missing_surge", "income")
    login = feature("missing_surge", "days_since_login")
    assert np.mean(income[:DRIFT_AT] == None) == pytest.approx(0.01, abs=0.003)  # noqa: E711
    assert np.mean(income[DRIFT_AT:] == None) == pytest.approx(0.30, abs=0.01)  # noqa: E711
    assert np.mean(login[DRIFT_AT:] == None) == pytest.approx(0.01, abs=0.003)  # noqa: E711


def test_labels_match_calibrated_scores_when_stationary() -> None:
    accuracy_before, expected_before, accuracy_after, expected_after = accuracy_and_expected(
        "stationary"
    )
    assert accuracy_before == pytest.approx(expected_before, abs=0.01)
    assert accuracy_after == pytest.approx(expected_after, abs=0.01)


def test_concept_change_keeps_features_and_scores_but_breaks_labels() -> None:
    reference, drifted = long_columns("stationary"), long_columns("concept_change")
    for name in [*FEATURES, "ts", "prediction", "score"]:
        assert drifted[name] == reference[name], name
    for name in ("credit_score", "balance", "credit_utilization"):
        before, after = before_after("concept_change", name)
        assert abs(after.mean() - before.mean()) < 0.05 * before.std()
    accuracy_before, expected_before, accuracy_after, expected_after = accuracy_and_expected(
        "concept_change"
    )
    assert accuracy_before == pytest.approx(expected_before, abs=0.01)
    assert expected_after == pytest.approx(expected_before, abs=0.01)
    assert accuracy_after < accuracy_before - 0.2


# --- truth ---------------------------------------------------------------------


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_truth_is_json_ready_and_describes_the_plant(scenario: str) -> None:
    spec = ScenarioSpec(scenario, events=40_000, seed=9)
    described = truth(spec)
    assert json.loads(json.dumps(described)) == described
    assert {"scenario", "events", "seed", "model_id", "model_version"} <= set(described)
    assert described["features"] == FEATURES
    assert set(described["features"].values()) == {"numeric", "categorical"}
    drifts = described["drifts"]
    if scenario == "stationary":
        assert drifts == []
        return
    assert drifts and all(point["start_index"] == 20_000 for point in drifts)
    expected_end = 20_000 + GRADUAL_WIDTH if scenario == "gradual" else 20_000
    assert all(point["end_index"] == expected_end for point in drifts)


def test_default_drift_point() -> None:
    assert ScenarioSpec("mean_shift", events=1_000).drift_index == 500
    assert ScenarioSpec("mean_shift", events=30_000).drift_index == 15_000
    assert ScenarioSpec("mean_shift", events=30_000, drift_at=12).drift_index == 12


def test_drift_point_to_dict() -> None:
    point = DriftPoint("credit_score", "data_drift", 5, 15)
    assert point.to_dict() == {
        "feature": "credit_score",
        "kind": "data_drift",
        "start_index": 5,
        "end_index": 15,
    }


# --- validation ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("overrides", "parameter"),
    [
        ({"scenario": "sudden"}, "scenario"),
        ({"events": 0}, "events"),
        ({"events": 2.5}, "events"),
        ({"seed": -1}, "seed"),
        ({"model_id": ""}, "model_id"),
        ({"model_version": 3}, "model_version"),
        ({"drift_at": 100}, "drift_at"),
        ({"drift_at": -1}, "drift_at"),
        ({"label_fraction": 1.5}, "label_fraction"),
        ({"label_fraction": -0.1}, "label_fraction"),
        ({"label_fraction": math.nan}, "label_fraction"),
        ({"label_delay_events": -5}, "label_delay_events"),
        ({"start_ts": math.inf}, "start_ts"),
        ({"events_per_second": 0.0}, "events_per_second"),
    ],
)
def test_invalid_spec_names_the_parameter(overrides: dict[str, Any], parameter: str) -> None:
    arguments: dict[str, Any] = {"scenario": "stationary", "events": 100, **overrides}
    with pytest.raises(ValueError, match=parameter) as raised:
        ScenarioSpec(**arguments)
    assert repr(overrides[parameter]) in str(raised.value)
    assert "must be" in str(raised.value)


def test_invalid_chunk_size() -> None:
    with pytest.raises(ValueError, match="chunk_size"):
        iter_chunks(ScenarioSpec("stationary", events=10), chunk_size=0)
