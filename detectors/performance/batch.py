"""Joined prediction⋈label events of one model version, as columnar numpy arrays.

The join (in :mod:`streams`) hands the performance library a
:class:`LabelledBatch` per model version, in label-arrival order. Class labels
travel as strings so that ``True``, ``1``, ``1.0`` and ``"1"`` from different
producers are one class: :func:`normalise_class` is the one place that rule lives.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass, field
from numbers import Integral, Real
from typing import Any

import numpy as np
from numpy.typing import NDArray

from detectors.errors import require

CLASSIFICATION = "classification"
REGRESSION = "regression"
TASKS = (CLASSIFICATION, REGRESSION)


def normalise_class(value: Any) -> str:
    """The class name of a label or a prediction.

    ``True``/``False`` become ``"1"``/``"0"``, an integral number becomes its
    integer digits, a string stays as it is, anything else becomes ``str(value)``.

    Examples
    --------
    >>> [normalise_class(v) for v in (True, False, 3, 3.0, "cat", 2.5)]
    ['1', '0', '3', '3', 'cat', '2.5']

    """
    # Exact-type fast paths first: this runs once per prediction and per label.
    kind = type(value)
    if kind is str:
        return value  # type: ignore[no-any-return]
    if kind is bool:
        return "1" if value else "0"
    if kind is int:
        return str(value)
    if isinstance(value, str):
        return value
    if isinstance(value, bool | np.bool_):
        return "1" if value else "0"
    if isinstance(value, Integral):
        return str(int(value))
    if isinstance(value, Real) and math.isfinite(float(value)) and float(value).is_integer():
        return str(int(float(value)))
    return str(value)


def normalise_classes(values: Iterable[Any]) -> list[str]:
    """:func:`normalise_class` of each value, one call per distinct value.

    Values equal in Python (``True``, ``1`` and ``1.0``) have the same class name,
    so a lookup table keyed by value gives every one its own.

    >>> normalise_classes([1, 0, True, 1.0, "cat", 1])
    ['1', '0', '1', '1', 'cat', '1']
    """
    values = values if isinstance(values, list) else list(values)
    try:
        names = {value: normalise_class(value) for value in set(values)}
        return list(map(names.__getitem__, values))
    except (TypeError, KeyError):   # unhashable, or a NaN not the one in the table
        return [normalise_class(value) for value in values]


def confidence_of(prediction: str, score: float | None,
                  scores: dict[str, float] | None) -> float:
    """The model's own probability that ``prediction`` is right, or ``nan`` when unknown.

    ``scores[prediction]`` when the event carries per-class scores; for a
    binary ``"1"``/``"0"`` prediction with a positive-class ``score``, that
    score or its complement. Values outside ``[0, 1]`` are not probabilities
    and give ``nan``.

    Examples
    --------
    >>> confidence_of("1", 0.8, None), round(confidence_of("0", 0.8, None), 3)
    (0.8, 0.2)
    >>> confidence_of("cat", None, {"cat": 0.7, "dog": 0.3})
    0.7
    >>> confidence_of("cat", 0.9, None)
    nan

    """
    value = math.nan
    if scores is not None and prediction in scores:
        value = _as_float(scores[prediction])
    elif score is not None and prediction in ("1", "0"):
        probability = _as_float(score)
        value = probability if prediction == "1" else 1.0 - probability
    return value if 0.0 <= value <= 1.0 else math.nan


def _as_float(value: Any) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        return math.nan


@dataclass(frozen=True)
class LabelledBatch:
    """One model version's joined events, in label-arrival order.

    Parameters
    ----------
    ts
        Prediction timestamps (epoch seconds).
    y_true, y_pred
        Classification: object arrays of class names (:func:`normalise_class`);
        regression: float64 arrays.
    score
        Positive-class score (classification); ``nan`` when absent.
    confidence
        The model's probability that its prediction is right
        (:func:`confidence_of`); ``nan`` when unknown.
    features
        Raw feature dicts, one per event, for challengers; ``[]`` when none are
        needed, ``None`` for an event whose features were not kept (a stream
        may keep them for a sample of its events only).

    Examples
    --------
    >>> batch = LabelledBatch.of(["1", "0", "1"], ["1", "1", "1"], score=[0.9, 0.6, 0.7])
    >>> len(batch), batch.confidence.tolist()
    (3, [0.9, 0.6, 0.7])
    >>> len(batch.slice(1, 3)), batch.take([0, 2]).score.tolist()
    (2, [0.9, 0.7])

    """

    ts: NDArray[np.float64]
    y_true: NDArray[Any]
    y_pred: NDArray[Any]
    score: NDArray[np.float64]
    confidence: NDArray[np.float64]
    features: list[dict[str, Any] | None] = field(default_factory=list)

    def __post_init__(self) -> None:
        n = len(self.ts)
        for name in ("y_true", "y_pred", "score", "confidence"):
            size = len(getattr(self, name))
            require(size == n, name, f"{n} values (as many as ts)", size)
        require(len(self.features) in (0, n), "features", f"0 or {n} feature dicts",
                len(self.features))

    def __len__(self) -> int:
        return len(self.ts)

    @classmethod
    def of(cls, y_true: Any, y_pred: Any, *, ts: Any = None, score: Any = None,
           confidence: Any = None, features: list[dict[str, Any] | None] | None = None,
           task: str = CLASSIFICATION) -> LabelledBatch:
        """Build a batch from lists (tests, examples); fills what is missing.

        Class names are normalised; ``ts`` defaults to ``0, 1, 2, ...``;
        ``confidence`` defaults to what :func:`confidence_of` makes of ``score``.
        """
        require(task in TASKS, "task", f"one of {TASKS}", task)
        n = len(y_true)
        if task == CLASSIFICATION:
            truth = np.array(normalise_classes(y_true), dtype=object)
            predicted = np.array(normalise_classes(y_pred), dtype=object)
        else:
            truth = np.asarray(y_true, dtype=np.float64)
            predicted = np.asarray(y_pred, dtype=np.float64)
        scores = (np.full(n, np.nan) if score is None
                  else np.asarray(score, dtype=np.float64))
        if confidence is None:
            confidence = ([confidence_of(str(p), float(s), None)
                           for p, s in zip(predicted.tolist(), scores.tolist(), strict=True)]
                          if task == CLASSIFICATION else np.full(n, np.nan))
        return cls(
            ts=np.arange(n, dtype=np.float64) if ts is None else np.asarray(ts, np.float64),
            y_true=truth, y_pred=predicted, score=scores,
            confidence=np.asarray(confidence, dtype=np.float64),
            features=list(features) if features is not None else [])

    def slice(self, start: int, stop: int) -> LabelledBatch:
        """Events ``start`` to ``stop`` (exclusive), sharing the arrays (views)."""
        return LabelledBatch(
            ts=self.ts[start:stop], y_true=self.y_true[start:stop],
            y_pred=self.y_pred[start:stop], score=self.score[start:stop],
            confidence=self.confidence[start:stop],
            features=self.features[start:stop] if self.features else [])

    def take(self, rows: list[int]) -> LabelledBatch:
        """The events at ``rows``, in that order (copies), without their feature dicts."""
        return LabelledBatch(
            ts=self.ts[rows], y_true=self.y_true[rows], y_pred=self.y_pred[rows],
            score=self.score[rows], confidence=self.confidence[rows])
