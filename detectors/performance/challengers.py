"""Incremental challenger models raced against the production model (the champion).

Each challenger is a river model that learns from the joined stream and is
scored *prequentially*: on every selected event it first predicts, then
learns the label, so every score is on an event the model had not seen. The
champion is scored on exactly the same events, and a paired test says whether
a challenger is better with significance: McNemar's exact test on the
discordant events for classification (challenger right where the champion was
wrong, and the reverse), a paired z-test on the difference of absolute errors
for regression.

Features reach river as a flat dict of floats: numbers (and booleans) as they
are, strings one-hot as ``"name=value"`` (the first :data:`MAX_CATEGORIES`
values of a feature, later ones as ``"name=(other)"``, so memory stays
bounded), ``None``, NaN, infinities and other types dropped.

**Not checkpointed.** river models can only be serialised with pickle, which
driftline never uses (unpickling state read back from Kafka or Redis would be
remote code execution). :meth:`ChallengerSet.to_state` therefore keeps the
scores and counters, so the comparison survives a restart, but a restored set
starts with untrained models that re-learn from the following events; their
predictions are not scored again until they have learned ``warm_up`` events.

The p-values are recomputed as events arrive; looking often inflates the
chance of a false "beats", which the small default ``alpha`` (Bonferroni over
challengers) keeps in check. Scoring restarts (counters to zero, models kept)
when the owner calls :meth:`ChallengerSet.restart_scoring`, e.g. at a concept
drift signal, so the comparison is about the current concept.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any

import numpy as np
from numpy.typing import NDArray

from detectors import stats
from detectors.performance.batch import CLASSIFICATION, LabelledBatch
from detectors.performance.config import LOGISTIC_REGRESSION
from detectors.performance.metrics import Moments

MAX_CATEGORIES = 32
_EXACT_MCNEMAR = 2000  # discordant pairs up to which McNemar's p-value is summed exactly
_SCORE_KEYS = ("events", "challenger", "champion", "challenger_only", "champion_only")


def _model(kind: str, task: str, seed: int) -> Any:
    # Imported here: river takes ~2 s to import, and most processes never build a challenger.
    from river import linear_model, multiclass, preprocessing, tree

    if task == CLASSIFICATION:
        if kind == LOGISTIC_REGRESSION:
            return preprocessing.StandardScaler() | multiclass.OneVsRestClassifier(
                linear_model.LogisticRegression())
        return tree.HoeffdingAdaptiveTreeClassifier(seed=seed)
    if kind == LOGISTIC_REGRESSION:
        return preprocessing.StandardScaler() | preprocessing.TargetStandardScaler(
            linear_model.LinearRegression())
    return tree.HoeffdingAdaptiveTreeRegressor(seed=seed)


class ChallengerSet:
    """Challengers of one model version, scored prequentially against the champion.

    Parameters
    ----------
    task
        ``"classification"`` or ``"regression"``.
    kinds
        Challenger models: ``"logistic_regression"`` (linear/logistic
        regression on standardized features) and/or
        ``"hoeffding_adaptive_tree"``.
    every
        Predict and learn on every k-th labelled event only (bounds the CPU cost).
    warm_up
        Events a model learns from before its predictions are scored.
    alpha
        Significance level of "beats the champion" (Bonferroni over ``kinds``).
    seed
        Seed of the adaptive tree.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> x = rng.normal(size=(3000, 2))
    >>> truth = np.where(x[:, 0] + x[:, 1] > 0, "1", "0").astype(object)
    >>> champion = rng.choice(["0", "1"], size=3000).astype(object)   # a coin flip
    >>> batch = LabelledBatch.of(truth, champion,
    ...                          features=[{"a": a, "b": b} for a, b in x.tolist()])
    >>> challengers = ChallengerSet("classification", ("logistic_regression",), warm_up=200)
    >>> challengers.update_many(batch, truth == champion)
    >>> result = challengers.result()["logistic_regression"]
    >>> result["beats_champion"], result["accuracy"] > 0.95, result["champion_accuracy"] < 0.55
    (True, True, True)

    """

    STATE_VERSION = 1

    def __init__(self, task: str, kinds: tuple[str, ...], *, every: int = 1,
                 warm_up: int = 500, alpha: float = 1e-3, seed: int = 0) -> None:
        self.task = task
        self.kinds = tuple(kinds)
        self.every = every
        self.warm_up = warm_up
        self.alpha = alpha
        self.seed = seed
        self._models = {kind: _model(kind, task, seed) for kind in self.kinds}
        self._learned = dict.fromkeys(self.kinds, 0)
        self._scores = {kind: self._fresh_scores() for kind in self.kinds}
        self._categories: dict[str, set[str]] = {}
        self._seen = 0
        self._scoring_since = 0

    def _fresh_scores(self) -> dict[str, Any]:
        if self.task == CLASSIFICATION:
            return dict.fromkeys(_SCORE_KEYS, 0)
        return {"events": 0, "challenger": 0.0, "champion": 0.0, "difference": Moments()}

    def restart_scoring(self) -> None:
        """Zero every score (the models keep what they learned)."""
        self._scores = {kind: self._fresh_scores() for kind in self.kinds}
        self._scoring_since = self._seen

    def update_many(self, batch: LabelledBatch,
                    champion: NDArray[np.bool_] | NDArray[np.float64]) -> None:
        """Predict, score and learn on the selected events of a batch.

        ``champion`` is, per event, whether the production model was right
        (classification) or its absolute error (regression).
        """
        n = len(batch)
        first = (-self._seen) % self.every
        self._seen += n
        if not batch.features or not self.kinds:
            return
        rows: Iterable[int] = range(first, n, self.every)
        if None in batch.features:
            # The stream kept features for a sample of events only: learn from those.
            rows = [row for row, features in enumerate(batch.features) if features is not None]
        for row in rows:
            target = batch.y_true[row]
            if self.task != CLASSIFICATION:
                target = float(target)
                if not math.isfinite(target):
                    continue
            features = batch.features[row]
            if features is None:
                continue
            x = self._encode(features)
            for kind, model in self._models.items():
                if self._learned[kind] >= self.warm_up:
                    predicted = model.predict_one(x)
                    if predicted is not None:
                        self._score(kind, target, predicted, champion[row])
                model.learn_one(x, target)
                self._learned[kind] += 1

    def _score(self, kind: str, target: Any, predicted: Any, champion: Any) -> None:
        scores = self._scores[kind]
        if self.task == CLASSIFICATION:
            right, champion_right = predicted == target, bool(champion)
            scores["events"] += 1
            scores["challenger"] += right
            scores["champion"] += champion_right
            scores["challenger_only"] += right and not champion_right
            scores["champion_only"] += champion_right and not right
            return
        error, champion_error = abs(float(predicted) - target), float(champion)
        if math.isfinite(error) and math.isfinite(champion_error):
            scores["events"] += 1
            scores["challenger"] += error
            scores["champion"] += champion_error
            scores["difference"].add_one(champion_error - error)

    def _encode(self, features: dict[str, Any]) -> dict[str, float]:
        x: dict[str, float] = {}
        for name, value in features.items():
            if isinstance(value, bool):
                x[name] = float(value)
            elif isinstance(value, int | float):
                if math.isfinite(value):
                    x[name] = float(value)
            elif isinstance(value, str):
                seen = self._categories.setdefault(name, set())
                if value not in seen and len(seen) < MAX_CATEGORIES:
                    seen.add(value)
                x[f"{name}={value if value in seen else '(other)'}"] = 1.0
        return x

    def result(self) -> dict[str, dict[str, Any]]:
        """Per challenger: its score, the champion's on the same events, the paired test."""
        return {kind: self._result(kind) for kind in self.kinds}

    def _result(self, kind: str) -> dict[str, Any]:
        scores, n = self._scores[kind], self._scores[kind]["events"]
        alpha = self.alpha / max(len(self.kinds), 1)
        common = {"events": n, "learned": self._learned[kind], "every": self.every,
                  "scoring_since_event": self._scoring_since, "alpha": alpha}
        if self.task == CLASSIFICATION:
            better, worse = scores["challenger_only"], scores["champion_only"]
            p_value = _mcnemar_upper(better, worse)
            return {**common, "accuracy": scores["challenger"] / n if n else None,
                    "champion_accuracy": scores["champion"] / n if n else None,
                    "challenger_only_correct": better, "champion_only_correct": worse,
                    "test": "mcnemar_exact", "p_value": p_value,
                    "beats_champion": better > worse and p_value < alpha}
        difference: Moments = scores["difference"]
        p_value = _paired_upper(difference)
        return {**common, "mae": scores["challenger"] / n if n else None,
                "champion_mae": scores["champion"] / n if n else None,
                "mean_improvement": difference.mean if n else None,
                "test": "paired_z", "p_value": p_value,
                "beats_champion": n > 1 and difference.mean > 0 and p_value < alpha}

    def to_state(self) -> dict[str, Any]:
        """Scores and counters only: the river models are not checkpointed (see module doc)."""
        scores = {kind: {key: (value.to_state() if isinstance(value, Moments) else value)
                         for key, value in s.items()} for kind, s in self._scores.items()}
        return {"type": "challenger_set", "version": self.STATE_VERSION, "task": self.task,
                "config": {"kinds": list(self.kinds), "every": self.every,
                           "warm_up": self.warm_up, "alpha": self.alpha, "seed": self.seed},
                "seen": self._seen, "scoring_since": self._scoring_since, "scores": scores,
                "categories": {name: sorted(values) for name, values in self._categories.items()}}

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> ChallengerSet:
        """Rebuild from :meth:`to_state` output, with untrained models."""
        if state.get("type") != "challenger_set" or state.get("version") != cls.STATE_VERSION:
            raise ValueError(f"expected challenger_set version {cls.STATE_VERSION}, got "
                             f"{state.get('type')!r} version {state.get('version')!r}")
        config = state["config"]
        challengers = cls(state["task"], tuple(config["kinds"]), every=int(config["every"]),
                          warm_up=int(config["warm_up"]), alpha=float(config["alpha"]),
                          seed=int(config["seed"]))
        challengers._seen = int(state["seen"])
        challengers._scoring_since = int(state["scoring_since"])
        for kind in challengers.kinds:
            saved = state["scores"][kind]
            challengers._scores[kind] = {
                key: (Moments.from_state(value) if key == "difference" else value)
                for key, value in saved.items()}
        challengers._categories = {name: set(values)
                                   for name, values in state["categories"].items()}
        return challengers


def _mcnemar_upper(better: int, worse: int) -> float:
    """One-sided McNemar p-value of the challenger being right more often than the champion.

    The chance that at least ``better`` discordant events favour the
    challenger when each favours either side with probability 1/2.
    """
    pairs = better + worse
    if pairs == 0:
        return 1.0
    if pairs <= _EXACT_MCNEMAR:
        return stats.binomial_survival(better, pairs, 0.5)
    z = (better - worse - 1.0) / math.sqrt(pairs)   # with continuity correction
    return 0.5 * math.erfc(z / math.sqrt(2.0))


def _paired_upper(difference: Moments) -> float:
    """One-sided p-value of a positive mean improvement (paired z-test)."""
    if difference.n < 2:
        return 1.0
    se = math.sqrt(difference.variance / difference.n)
    if se == 0:
        return 0.0 if difference.mean > 0 else 1.0
    return 0.5 * math.erfc(difference.mean / se / math.sqrt(2.0))
