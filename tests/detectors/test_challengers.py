"""Challenger models: prequential scores, paired tests, bounded cost, state."""

from __future__ import annotations

import math

import numpy as np
import orjson
import pytest

from detectors.performance import (
    CLASSIFICATION,
    REGRESSION,
    ChallengerSet,
    LabelledBatch,
    PerformanceConfig,
    PerformanceMonitor,
)
from detectors.performance.challengers import MAX_CATEGORIES

CLASSES = np.array(["0", "1"], dtype=object)
BOTH = ("logistic_regression", "hoeffding_adaptive_tree")


def logistic_stream(rng: np.random.Generator, n: int,
                    champion: str) -> tuple[LabelledBatch, np.ndarray]:
    """y ~ Bernoulli(sigmoid(3 x0 - 2 x1 + segment effect)), a learnable concept.

    ``champion="true"`` predicts with the true probability (the Bayes-optimal
    rule: nothing can beat it on average); ``"random"`` flips a coin.
    """
    x = rng.normal(size=(n, 2))
    segment = rng.choice(np.array(["a", "b"], dtype=object), n)
    logit = 3.0 * x[:, 0] - 2.0 * x[:, 1] + np.where(segment == "a", 1.0, -1.0)
    p = 1.0 / (1.0 + np.exp(-logit))
    y = rng.random(n) < p
    predicted = p >= 0.5 if champion == "true" else rng.random(n) < 0.5
    features = [{"x0": a, "x1": b, "segment": s}
                for (a, b), s in zip(x.tolist(), segment.tolist(), strict=True)]
    batch = LabelledBatch(ts=np.arange(n, dtype=np.float64), y_true=CLASSES[y * 1],
                          y_pred=CLASSES[predicted * 1], score=np.where(predicted, p, 1 - p),
                          confidence=np.maximum(p, 1 - p), features=features)
    return batch, predicted == y


def test_challengers_beat_a_coin_flip_champion_with_significance() -> None:
    rng = np.random.default_rng(0)
    batch, _ = logistic_stream(rng, 4000, champion="random")
    monitor = PerformanceMonitor(CLASSIFICATION, PerformanceConfig(challenger_every=1,
                                                                   challenger_warm_up=300))
    for start in range(0, 4000, 500):
        monitor.update_many(batch.slice(start, start + 500))
    result = monitor.challenger_result()
    assert result is not None and set(result) == set(BOTH)
    for name in BOTH:
        challenger = result[name]
        assert challenger["events"] == 3700 and challenger["test"] == "mcnemar_exact"
        assert challenger["beats_champion"], (name, challenger)
        assert challenger["p_value"] < 1e-12
        assert challenger["accuracy"] > 0.75 > 0.55 > challenger["champion_accuracy"]
        assert challenger["alpha"] == pytest.approx(1e-3 / 2)
    assert orjson.loads(orjson.dumps(result)) == result


def test_no_challenger_beats_the_true_model() -> None:
    rng = np.random.default_rng(1)
    batch, _ = logistic_stream(rng, 8000, champion="true")
    monitor = PerformanceMonitor(CLASSIFICATION, PerformanceConfig(challenger_every=1,
                                                                   challenger_warm_up=300))
    for start in range(0, 8000, 500):
        monitor.update_many(batch.slice(start, start + 500))
        # Checked after every batch: looking often must not manufacture a winner.
        result = monitor.challenger_result()
        assert result is not None
        assert not any(r["beats_champion"] for r in result.values()), result
    assert all(r["events"] == 7700 for r in result.values())


def test_regression_challengers_against_bad_and_true_champions() -> None:
    rng = np.random.default_rng(2)
    n = 3000
    x = rng.normal(size=(n, 3))
    mean = 5.0 + 2.0 * x[:, 0] - x[:, 1]
    y = mean + rng.normal(0.0, 0.5, n)
    features = [dict(zip(("x0", "x1", "x2"), row, strict=True)) for row in x.tolist()]
    for champion, should_beat in ((np.full(n, 5.0), True), (mean, False)):
        batch = LabelledBatch(ts=np.arange(n, dtype=np.float64), y_true=y, y_pred=champion,
                              score=np.full(n, np.nan), confidence=np.full(n, np.nan),
                              features=features)
        challengers = ChallengerSet(REGRESSION, BOTH, warm_up=300)
        challengers.update_many(batch, np.abs(champion - y))
        linear = challengers.result()["logistic_regression"]
        assert linear["test"] == "paired_z" and linear["events"] == n - 300
        assert linear["beats_champion"] is should_beat, linear
        if should_beat:
            assert linear["mae"] < 0.6 < 1.5 < linear["champion_mae"]
        else:
            assert not challengers.result()["hoeffding_adaptive_tree"]["beats_champion"]


def test_every_kth_event_only_and_batching_does_not_matter() -> None:
    rng = np.random.default_rng(3)
    batch, correct = logistic_stream(rng, 2000, champion="random")
    whole = ChallengerSet(CLASSIFICATION, ("logistic_regression",), every=4, warm_up=100)
    whole.update_many(batch, correct)
    pieces = ChallengerSet(CLASSIFICATION, ("logistic_regression",), every=4, warm_up=100)
    for start, stop in ((0, 3), (3, 777), (777, 778), (778, 2000)):
        pieces.update_many(batch.slice(start, stop), correct[start:stop])
    assert whole.result() == pieces.result()
    assert whole.result()["logistic_regression"]["learned"] == 500
    assert whole.result()["logistic_regression"]["events"] == 400


def test_features_are_cleaned_before_river_sees_them() -> None:
    challengers = ChallengerSet(CLASSIFICATION, ("logistic_regression",))
    x = challengers._encode({"a": 1, "b": math.nan, "c": None, "d": math.inf, "e": True,
                             "f": "red", "g": [1, 2], "h": -2.5})
    assert x == {"a": 1.0, "e": 1.0, "f=red": 1.0, "h": -2.5}
    for i in range(MAX_CATEGORIES + 5):
        last = challengers._encode({"id": f"user{i}"})
    assert last == {"id=(other)": 1.0}
    assert len(challengers._categories["id"]) == MAX_CATEGORIES


def test_state_keeps_scores_and_restored_models_relearn() -> None:
    rng = np.random.default_rng(4)
    batch, correct = logistic_stream(rng, 3000, champion="random")
    challengers = ChallengerSet(CLASSIFICATION, BOTH, warm_up=200)
    challengers.update_many(batch.slice(0, 1500), correct[:1500])
    state = orjson.loads(orjson.dumps(challengers.to_state()))
    restored = ChallengerSet.from_state(state)
    before = challengers.result()
    assert {k: {**v, "learned": 0} for k, v in before.items()} == restored.result()
    # Untrained again: the next 200 events are learned from but not scored.
    restored.update_many(batch.slice(1500, 1700), correct[1500:1700])
    assert restored.result()["logistic_regression"]["events"] == before[
        "logistic_regression"]["events"]
    restored.update_many(batch.slice(1700, 3000), correct[1700:3000])
    assert restored.result()["logistic_regression"]["events"] == before[
        "logistic_regression"]["events"] + 1300
    with pytest.raises(ValueError, match="challenger_set"):
        ChallengerSet.from_state({**state, "version": 2})


def test_concept_drift_signal_restarts_challenger_scoring() -> None:
    rng = np.random.default_rng(5)
    batch, _ = logistic_stream(rng, 6000, champion="true")
    # From event 4000 the champion flips its predictions: a concept change for it.
    flipped = np.where(np.arange(6000) >= 4000, np.where(batch.y_pred == "1", "0", "1"),
                       batch.y_pred).astype(object)
    batch = LabelledBatch(batch.ts, batch.y_true, flipped, batch.score, batch.confidence,
                          batch.features)
    monitor = PerformanceMonitor(CLASSIFICATION, PerformanceConfig(
        challengers=("logistic_regression",), challenger_every=1, challenger_warm_up=300))
    reports = monitor.update_many(batch)
    signal = next(r for r in reports if r.partial)
    result = monitor.challenger_result()
    assert result is not None
    challenger = result["logistic_regression"]
    assert challenger["scoring_since_event"] == int(signal.end_ts) + 1
    assert challenger["events"] == 6000 - challenger["scoring_since_event"]
    assert challenger["beats_champion"]
