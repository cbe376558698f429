"""Fixed-size reference buffers with one row per feature, shared by the numeric tests.

A numeric test keeps the first ``capacity`` present values of each feature
until its reference closes, then frees the buffer. Features fill their rows
at their own pace (their missing values differ), so ``used`` counts per row.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from detectors.batch import NumericBlock


def empty_buffer(features: int, capacity: int) -> NDArray[np.float64]:
    """A buffer of ``capacity`` values for each of ``features`` features."""
    return np.empty((features, capacity), dtype=np.float64)


def collect(buffer: NDArray[np.float64], used: NDArray[np.int64], block: NumericBlock) -> None:
    """Append each feature's present values to its row while there is room (in place).

    >>> buffer, used = empty_buffer(2, 3), np.zeros(2, dtype=np.int64)
    >>> values = np.array([[1.0, 2.0, 3.0, 4.0], [5.0, 6.0, 7.0, 8.0]])
    >>> missing = np.array([[False, True, False, False], [False] * 4])
    >>> collect(buffer, used, NumericBlock(("x", "y"), values, missing))
    >>> used.tolist(), buffer_rows(buffer, used)
    ([3, 3], [[1.0, 3.0, 4.0], [5.0, 6.0, 7.0]])
    """
    capacity = buffer.shape[1]
    for row in range(buffer.shape[0]):
        start = int(used[row])
        if start == capacity:
            continue
        values = block.values[row]
        if block.any_missing:
            values = values[~block.missing[row]]
        take = min(values.size, capacity - start)
        buffer[row, start:start + take] = values[:take]
        used[row] = start + take


def buffer_rows(buffer: NDArray[np.float64], used: NDArray[np.int64]) -> list[list[float]]:
    """The used part of every row, as plain lists (for state)."""
    return [buffer[row, :int(count)].tolist() for row, count in enumerate(used)]


def restore_buffer(rows: list[list[float]], capacity: int, ready: bool) -> NDArray[np.float64]:
    """Rebuild a buffer from :func:`buffer_rows` output (released once the reference is ready)."""
    if ready:
        return np.empty((len(rows), 0), dtype=np.float64)
    buffer = empty_buffer(len(rows), capacity)
    for row, values in enumerate(rows):
        buffer[row, :len(values)] = values
    return buffer
