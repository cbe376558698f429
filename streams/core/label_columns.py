"""Columns of the label side: pending rows from prediction events, labelled batches from joins.

The helpers :class:`~streams.core.labels.LabelEngine` uses to turn a step's
prediction events into :class:`~streams.state.pending.PendingRows` and a
label batch's joined rows into a :class:`~detectors.performance.LabelledBatch`,
without a per-event Python loop on the common path.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from itertools import repeat
from operator import itemgetter
from typing import Any

import msgspec
import numpy as np
from numpy.typing import NDArray

from detectors.performance import (
    CLASSIFICATION,
    REGRESSION,
    LabelledBatch,
    confidence_of,
    normalise_class,
    normalise_classes,
)
from streams.ingest.columnar import float_column, packed_floats, struct_columns, unset_as_none
from streams.ingest.values import category_text
from streams.state.pending import PendingRows


def segment_label(name: str, value: Any) -> str:
    """How a segment value is named in alerts and metrics: ``name=value``.

    Examples
    --------
    >>> segment_label("channel", "web"), segment_label("tier", 2), segment_label("vip", True)
    ('channel=web', 'tier=2', 'vip=true')
    >>> segment_label("tier", 2.0), segment_label("ratio", 0.5)
    ('tier=2', 'ratio=0.5')
    """
    return f"{name}={category_text(value)}"


def infer_task(label: Any, prediction: Any) -> str:
    """Classification unless a label or prediction is a non-integral number.

    Examples
    --------
    >>> infer_task(1, 0), infer_task("spam", "ham"), infer_task(3.25, 2.0)
    ('classification', 'classification', 'regression')
    """
    for value in (label, prediction):
        if isinstance(value, float) and not value.is_integer():
            return REGRESSION
    return CLASSIFICATION


def labelled_batch(task: str, labels: list[Any], rows: PendingRows) -> LabelledBatch:
    """The joined rows of one model version with their labels, as the monitors take them."""
    if task == REGRESSION:
        y_true: np.ndarray[Any, Any] = np.array([_number(label) for label in labels])
        y_pred: np.ndarray[Any, Any] = np.array([_number(y) for y in rows.predictions])
    else:
        y_true = np.array(normalise_classes(labels), dtype=object)
        y_pred = np.array(normalise_classes(rows.predictions), dtype=object)
    return LabelledBatch(
        ts=np.asarray(rows.ts, dtype=np.float64), y_true=y_true, y_pred=y_pred,
        score=np.asarray(rows.score, dtype=np.float64),
        confidence=np.asarray(rows.confidence, dtype=np.float64),
        features=rows.features if rows.features is not None else [])


def message_indices(origins: list[int]) -> NDArray[np.int64]:
    """Each event's index within its message, from the message each came from (in order).

    Examples
    --------
    >>> message_indices([3, 3, 3, 5, 8, 8]).tolist()
    [0, 1, 2, 0, 0, 1]
    """
    positions = np.asarray(origins, dtype=np.int64)
    if not len(positions):
        return positions
    starts = np.flatnonzero(np.r_[True, positions[1:] != positions[:-1]])
    lengths = np.diff(np.r_[starts, len(positions)])
    return np.arange(len(positions), dtype=np.int64) - np.repeat(starts, lengths)


def pending_rows(events: list[Any], offsets: NDArray[np.int64], feature_every: int = 0,
                 fields: dict[str, tuple[Any, ...]] | None = None) -> PendingRows:
    """The columns of validated prediction events that wait for labels.

    ``events`` are all dicts or all typed structs (:mod:`streams.ingest.typed`).
    A confidence (the model's probability that its prediction is right) is
    computed for every row whose score makes one; ``nan`` elsewhere. Features
    are kept for every ``feature_every``-th row (``0``: none), as dicts.

    Examples
    --------
    >>> rows = pending_rows([{"model_version": "v1", "event_id": "a", "ts": 1.0,
    ...                       "prediction": 0, "score": 0.2, "features": {}}],
    ...                     np.array([5]))
    >>> rows.event_ids, float(rows.confidence[0]), rows.features
    (['a'], 0.8, None)
    """
    if events and type(events[0]) is not dict:
        return _typed_pending_rows(fields or struct_columns(events), offsets, feature_every)
    ts = np.array(list(map(_TS, events)), dtype=np.float64)
    features: list[dict[str, Any] | None] | None = None
    if feature_every == 1:
        features = list(map(_FEATURES, events))
    elif feature_every:
        features = [None] * len(events)
        features[::feature_every] = map(_FEATURES, events[::feature_every])
    return _rows(list(map(_EVENT_ID, events)), list(map(_VERSION, events)), ts,
                 offsets, list(map(_PREDICTION, events)),
                 list(map(dict.get, events, repeat("score"))),
                 list(map(dict.get, events, repeat("scores"))),
                 list(map(dict.get, events, repeat("segments"))), features)


def _typed_pending_rows(columns: dict[str, tuple[Any, ...]], offsets: NDArray[np.int64],
                        feature_every: int) -> PendingRows:
    features: list[dict[str, Any] | None] | None = None
    if feature_every:
        features = [None] * len(offsets)
        features[::feature_every] = map(msgspec.to_builtins,
                                        columns["features"][::feature_every])
    # The structs declare the score a float (UNSET when absent): packed, it needs no check.
    score = packed_floats(columns["score"])
    return _rows(list(columns["event_id"]), list(columns["model_version"]),
                 float_column(columns["ts"]), offsets, list(columns["prediction"]),
                 list(unset_as_none(columns["score"])) if score is None else columns["score"],
                 list(unset_as_none(columns["scores"])),
                 list(unset_as_none(columns["segments"])), features, score)


def _rows(event_ids: list[str], versions: list[str],
          ts: NDArray[np.float64], offsets: NDArray[np.int64], predictions: list[Any],
          raw_scores: Sequence[Any], multi: list[Any], segments: list[Any],
          features: list[dict[str, Any] | None] | None,
          score: NDArray[np.float64] | None = None) -> PendingRows:
    if score is None:
        score = float_column(raw_scores)      # None (no score) as NaN
    kinds = set(map(type, predictions))
    if kinds <= {int, float, bool}:
        numeric = float_column(predictions)
        positive, negative = numeric == 1.0, numeric == 0.0
    else:
        classes = normalise_classes(predictions)
        positive = np.array([c == "1" for c in classes], dtype=np.bool_)
        negative = np.array([c == "0" for c in classes], dtype=np.bool_)
    with np.errstate(invalid="ignore"):
        confidence = np.where(positive, score, np.where(negative, 1.0 - score, math.nan))
        confidence[~((confidence >= 0.0) & (confidence <= 1.0))] = math.nan
    if any(multi):
        for row, scores in enumerate(multi):
            if scores:
                confidence[row] = confidence_of(normalise_class(predictions[row]),
                                                raw_scores[row], scores)
    return PendingRows(event_ids, versions, ts, np.asarray(offsets, dtype=np.int64), predictions,
                       score, confidence, segments if any(segments) else None, features)


_EVENT_ID, _VERSION = itemgetter("event_id"), itemgetter("model_version")
_TS, _PREDICTION, _FEATURES = itemgetter("ts"), itemgetter("prediction"), itemgetter("features")


def _number(value: Any) -> float:
    if isinstance(value, bool):
        return float(value)
    if isinstance(value, int | float):
        return float(value)
    return math.nan


__all__ = ["infer_task", "labelled_batch", "message_indices", "pending_rows", "segment_label"]
