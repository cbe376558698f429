"""Small builders shared by the detector tests: columns, streams and window loops."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np
from numpy.typing import NDArray

from detectors.base import TestResult, WindowedTest
from detectors.batch import CategoricalColumn, NumericColumn

# Per-window false-alarm probability the standalone tests run at: the monitor's
# default budget for a whole model, so a single test gets no more than this.
ALPHA = 1e-6
REFERENCE = 5000
WINDOW = 2000


def numeric(values: Sequence[float] | NDArray[np.float64],
            missing: Sequence[bool] | NDArray[np.bool_] | None = None) -> NumericColumn:
    array = np.asarray(values, dtype=np.float64)
    mask = (np.zeros(array.shape, dtype=np.bool_) if missing is None
            else np.asarray(missing, dtype=np.bool_))
    return NumericColumn(array, mask)


def reference_knots(reference: NDArray[np.float64]) -> NDArray[np.float64]:
    """Reference values at 129 quantiles, as the sequential test picks its knots."""
    ordered = np.sort(reference)
    return np.unique(ordered[np.round(np.linspace(0, ordered.size - 1, 129)).astype(int)])


def categorical(values: Iterable[str | None]) -> CategoricalColumn:
    return CategoricalColumn(list(values))


def run(test: WindowedTest[Any], reference: Any, windows: Iterable[Any]) -> list[TestResult]:
    """Learn ``reference``, then close one window per element of ``windows``."""
    test.update_many(reference)
    test.end_reference()
    results = []
    for window in windows:
        test.update_many(window)
        results.append(test.end_window())
    return results


def first_drift(results: Sequence[TestResult]) -> int | None:
    """Index of the first window that reported drift."""
    return next((i for i, result in enumerate(results) if result.drift), None)


def skewed_tail_categories(tail: int = 200, tail_share: float = 0.10,
                           ) -> tuple[NDArray[np.str_], NDArray[np.float64]]:
    """Eight skewed head categories plus ``tail`` rare ones with Zipf shares."""
    head = np.array([0.30, 0.20, 0.12, 0.09, 0.07, 0.05, 0.04, 0.03])
    head = head / head.sum() * (1.0 - tail_share)
    zipf = 1.0 / np.arange(1, tail + 1)
    zipf = zipf / zipf.sum() * tail_share
    names = np.array([f"head{i}" for i in range(head.size)] + [f"tail{i}" for i in range(tail)])
    return names, np.r_[head, zipf]


def draw_categories(rng: np.random.Generator, names: NDArray[np.str_],
                    shares: NDArray[np.float64], n: int) -> CategoricalColumn:
    return CategoricalColumn(names[rng.choice(names.size, n, p=shares)].tolist())
