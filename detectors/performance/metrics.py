"""Mergeable, bounded accumulators of a model's realized performance.

Each accumulator holds counts, sums and fixed-size histograms only, so it
costs the same memory after ten events or ten million, and two of them merge
exactly (a window into the running "since reference" total). ROC AUC comes
from per-class score histograms (:data:`AUC_BINS` bins over ``[0, 1]``): scores
in the same bin count as ties, so the value is exact up to half the mass of
within-bin pairs. Calibration error is the top-label ECE over
:data:`CALIBRATION_BINS` equal-width confidence bins.
"""

from __future__ import annotations

import math
from collections import Counter
from typing import Any

import numpy as np
from numpy.typing import NDArray

from detectors.performance.batch import LabelledBatch

AUC_BINS = 100
CALIBRATION_BINS = 10
MAX_CLASSES = 64
OTHER_CLASS = "(other)"
# Scores are clipped this far from 0 and 1 in the log loss: one confidently
# wrong event then adds at most ~13.8, and the loss's variance stays finite.
LOG_LOSS_EPS = 1e-6


class Moments:
    """Count, mean and sum of squared deviations of a stream; merges exactly (Chan et al.).

    Examples
    --------
    >>> m = Moments()
    >>> m.add(np.array([1.0, 2.0])); m.add(np.array([3.0, 4.0]))
    >>> m.n, m.mean, round(m.variance, 4)
    (4, 2.5, 1.6667)

    """

    def __init__(self, n: int = 0, mean: float = 0.0, m2: float = 0.0) -> None:
        self.n = n
        self.mean = mean
        self.m2 = m2

    @property
    def variance(self) -> float:
        """Sample variance (``nan`` below two values)."""
        return self.m2 / (self.n - 1) if self.n > 1 else math.nan

    def add(self, values: NDArray[np.float64]) -> None:
        """Add a batch of finite values."""
        if values.size:
            mean = float(values.mean())
            self._combine(int(values.size), mean, float(np.square(values - mean).sum()))

    def add_one(self, value: float) -> None:
        """Add one finite value."""
        self._combine(1, value, 0.0)

    def merge(self, other: Moments) -> None:
        """Add everything ``other`` has seen."""
        if other.n:
            self._combine(other.n, other.mean, other.m2)

    def _combine(self, n: int, mean: float, m2: float) -> None:
        total = self.n + n
        delta = mean - self.mean
        self.m2 += m2 + delta * delta * self.n * n / total
        self.mean += delta * n / total
        self.n = total

    def to_state(self) -> list[float]:
        """``[n, mean, m2]``."""
        return [self.n, self.mean, self.m2]

    @classmethod
    def from_state(cls, state: list[float]) -> Moments:
        """Rebuild from :meth:`to_state` output."""
        n, mean, m2 = state
        return cls(int(n), float(mean), float(m2))


class ClassificationMetrics:
    """Accuracy, precision/recall/F1, log loss, ROC AUC and calibration of labelled events.

    Precision, recall and F1 are the positive class's when every class seen is
    ``positive_class`` or one other ("binary"), else macro averages over the
    classes seen (the first ``MAX_CLASSES``; later ones count as ``"(other)"``).
    Log loss and ROC AUC use ``score`` (the positive-class probability) where
    it is finite and in ``[0, 1]``.

    Examples
    --------
    >>> m = ClassificationMetrics("1")
    >>> m.update(LabelledBatch.of(["1", "1", "0", "0"], ["1", "0", "0", "1"],
    ...                           score=[0.8, 0.4, 0.3, 0.6])).tolist()
    [True, False, True, False]
    >>> r = m.result()
    >>> r["accuracy"], r["precision"], r["recall"], r["roc_auc"], round(r["log_loss"], 4)
    (0.5, 0.5, 0.5, 0.75, 0.6031)

    """

    def __init__(self, positive_class: str) -> None:
        self.positive_class = positive_class
        self.events = 0
        self.correct = 0
        self.classes: dict[str, list[int]] = {}   # class -> [true positives, predicted, actual]
        self.log_loss = Moments()
        self.auc_positive = np.zeros(AUC_BINS, dtype=np.int64)
        self.auc_negative = np.zeros(AUC_BINS, dtype=np.int64)
        self.calibration = np.zeros((3, CALIBRATION_BINS))  # events, confidence sum, correct

    def update(self, batch: LabelledBatch) -> NDArray[np.bool_]:
        """Add a batch of labelled events; return their correct flags."""
        correct = np.asarray(batch.y_true == batch.y_pred, dtype=np.bool_)
        self.events += int(correct.size)
        self.correct += int(np.count_nonzero(correct))
        # Counter, not np.unique: hashing class names is faster than sorting them as objects.
        for column, values in ((0, batch.y_true[correct]), (1, batch.y_pred),
                               (2, batch.y_true)):
            for name, count in Counter(values.tolist()).items():
                self._counts(str(name))[column] += count
        usable = np.isfinite(batch.score) & (batch.score >= 0.0) & (batch.score <= 1.0)
        if usable.any():
            score = batch.score[usable]
            positive = np.asarray(batch.y_true[usable] == self.positive_class, dtype=np.bool_)
            p = np.clip(score, LOG_LOSS_EPS, 1.0 - LOG_LOSS_EPS)
            self.log_loss.add(-np.where(positive, np.log(p), np.log1p(-p)))
            bins = np.minimum((score * AUC_BINS).astype(np.int64), AUC_BINS - 1)
            self.auc_positive += np.bincount(bins[positive], minlength=AUC_BINS)
            self.auc_negative += np.bincount(bins[~positive], minlength=AUC_BINS)
        known = np.isfinite(batch.confidence)
        if known.any():
            confidence = np.clip(batch.confidence[known], 0.0, 1.0)
            bins = np.minimum((confidence * CALIBRATION_BINS).astype(np.int64),
                              CALIBRATION_BINS - 1)
            self.calibration[0] += np.bincount(bins, minlength=CALIBRATION_BINS)
            self.calibration[1] += np.bincount(bins, confidence, minlength=CALIBRATION_BINS)
            self.calibration[2] += np.bincount(bins, correct[known], minlength=CALIBRATION_BINS)
        return correct

    def _counts(self, name: str) -> list[int]:
        counts = self.classes.get(name)
        if counts is None:
            if len(self.classes) >= MAX_CLASSES - 1 and name != OTHER_CLASS:
                return self._counts(OTHER_CLASS)
            counts = self.classes[name] = [0, 0, 0]
        return counts

    def merge(self, other: ClassificationMetrics) -> None:
        """Add everything ``other`` has counted."""
        self.events += other.events
        self.correct += other.correct
        for name, counts in other.classes.items():
            mine = self._counts(name)
            for i in range(3):
                mine[i] += counts[i]
        self.log_loss.merge(other.log_loss)
        self.auc_positive += other.auc_positive
        self.auc_negative += other.auc_negative
        self.calibration += other.calibration

    @property
    def accuracy(self) -> float:
        """Share of correct predictions (``nan`` before any event)."""
        return self.correct / self.events if self.events else math.nan

    def result(self) -> dict[str, Any]:
        """Every metric as a plain dict; ``None`` where a metric is undefined."""
        precision, recall, f1, average = self._precision_recall_f1()
        n_confident = float(self.calibration[0].sum())
        mean_confidence = float(self.calibration[1].sum()) / n_confident if n_confident else None
        confident_accuracy = (float(self.calibration[2].sum()) / n_confident
                              if n_confident else None)
        return {
            "events": self.events,
            "accuracy": _defined(self.accuracy),
            "error_rate": _defined(1.0 - self.accuracy),
            "precision": precision, "recall": recall, "f1": f1, "average": average,
            "log_loss": _defined(self.log_loss.mean) if self.log_loss.n else None,
            "roc_auc": self._roc_auc(),
            "scored_events": self.log_loss.n,
            "calibration_error": (float(np.abs(self.calibration[2] - self.calibration[1]).sum())
                                  / n_confident if n_confident else None),
            "confidence_events": int(n_confident),
            "mean_confidence": mean_confidence,
            "estimate_error": (mean_confidence - confident_accuracy
                               if mean_confidence is not None and confident_accuracy is not None
                               else None),
        }

    def _precision_recall_f1(self) -> tuple[float | None, float | None, float | None, str]:
        seen = {name for name, (_, predicted, actual) in self.classes.items()
                if predicted or actual}
        if not seen:
            return None, None, None, "binary"
        binary = self.positive_class in seen and len(seen) <= 2
        names = [self.positive_class] if binary else sorted(seen)
        precision, recall, f1 = np.mean([_per_class(*self.classes[name]) for name in names],
                                        axis=0).tolist()
        return precision, recall, f1, "binary" if binary else "macro"

    def _roc_auc(self) -> float | None:
        positives, negatives = int(self.auc_positive.sum()), int(self.auc_negative.sum())
        if not positives or not negatives:
            return None
        below = np.cumsum(self.auc_negative) - self.auc_negative
        wins = float(np.dot(self.auc_positive, below + 0.5 * self.auc_negative))
        return wins / (positives * negatives)

    def to_state(self) -> dict[str, Any]:
        """Plain-dict state."""
        return {"events": self.events, "correct": self.correct,
                "classes": {name: list(c) for name, c in self.classes.items()},
                "log_loss": self.log_loss.to_state(),
                "auc_positive": self.auc_positive.tolist(),
                "auc_negative": self.auc_negative.tolist(),
                "calibration": self.calibration.tolist()}

    @classmethod
    def from_state(cls, positive_class: str, state: dict[str, Any]) -> ClassificationMetrics:
        """Rebuild from :meth:`to_state` output."""
        metrics = cls(positive_class)
        metrics.events = int(state["events"])
        metrics.correct = int(state["correct"])
        metrics.classes = {str(k): [int(x) for x in v] for k, v in state["classes"].items()}
        metrics.log_loss = Moments.from_state(state["log_loss"])
        metrics.auc_positive = np.asarray(state["auc_positive"], dtype=np.int64)
        metrics.auc_negative = np.asarray(state["auc_negative"], dtype=np.int64)
        metrics.calibration = np.asarray(state["calibration"], dtype=np.float64)
        if metrics.auc_positive.shape != (AUC_BINS,) or metrics.calibration.shape != (
                3, CALIBRATION_BINS):
            raise ValueError("histogram sizes do not match this version")
        return metrics


class RegressionMetrics:
    """MAE, RMSE and R² of labelled events.

    Examples
    --------
    >>> m = RegressionMetrics()
    >>> m.update(LabelledBatch.of([1.0, 2.0, 3.0, 4.0], [1.5, 2.0, 2.0, 5.0],
    ...                           task="regression")).tolist()
    [0.5, 0.0, 1.0, 1.0]
    >>> r = m.result()
    >>> r["mae"], r["rmse"], r["r2"]
    (0.625, 0.75, 0.55)

    """

    def __init__(self) -> None:
        self.absolute_error = Moments()
        self.squared_error_sum = 0.0
        self.truth = Moments()

    @property
    def events(self) -> int:
        """Labelled events counted."""
        return self.absolute_error.n

    def update(self, batch: LabelledBatch) -> NDArray[np.float64]:
        """Add a batch of labelled events; return their absolute errors.

        Events whose label or prediction is not finite are skipped (their error is ``nan``).
        """
        truth = np.asarray(batch.y_true, dtype=np.float64)
        error = np.abs(np.asarray(batch.y_pred, dtype=np.float64) - truth)
        finite = np.isfinite(error)
        self.absolute_error.add(error[finite])
        self.squared_error_sum += float(np.square(error[finite]).sum())
        self.truth.add(truth[finite])
        return error

    def merge(self, other: RegressionMetrics) -> None:
        """Add everything ``other`` has counted."""
        self.absolute_error.merge(other.absolute_error)
        self.squared_error_sum += other.squared_error_sum
        self.truth.merge(other.truth)

    def result(self) -> dict[str, Any]:
        """Every metric as a plain dict; ``None`` where a metric is undefined."""
        n = self.events
        return {
            "events": n,
            "mae": self.absolute_error.mean if n else None,
            "rmse": math.sqrt(self.squared_error_sum / n) if n else None,
            "r2": 1.0 - self.squared_error_sum / self.truth.m2 if self.truth.m2 > 0 else None,
        }

    def to_state(self) -> dict[str, Any]:
        """Plain-dict state."""
        return {"absolute_error": self.absolute_error.to_state(),
                "squared_error_sum": self.squared_error_sum, "truth": self.truth.to_state()}

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> RegressionMetrics:
        """Rebuild from :meth:`to_state` output."""
        metrics = cls()
        metrics.absolute_error = Moments.from_state(state["absolute_error"])
        metrics.squared_error_sum = float(state["squared_error_sum"])
        metrics.truth = Moments.from_state(state["truth"])
        return metrics


def _per_class(true_positives: int, predicted: int, actual: int) -> tuple[float, float, float]:
    # An undefined precision or recall counts as 0, as scikit-learn's zero_division default.
    precision = true_positives / predicted if predicted else 0.0
    recall = true_positives / actual if actual else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return precision, recall, f1


def _defined(value: float) -> float | None:
    return value if math.isfinite(value) else None
