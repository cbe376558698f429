"""Reference buffers with one row per feature, shared by the numeric tests.

A numeric test keeps the first ``capacity`` present values of each feature
until its reference closes, then frees the buffer. Features fill their rows
at their own pace (their missing values differ), so ``used`` counts per row.

A buffer starts small and doubles as values arrive, up to ``capacity``: most
of a partition's models may never send a reference's worth of events, and a
buffer sized for the whole reference up front cost 40 KB per feature and test
for each of them (three tests keep one per model: 5,000 models with three
numeric columns held 1.3 GB of mostly empty buffers).
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from detectors.batch import NumericBlock

INITIAL_CAPACITY = 64
"""Values per row a new buffer has room for before it first grows."""


def empty_buffer(features: int, capacity: int) -> NDArray[np.float64]:
    """A buffer for ``features`` features, with room for the first values of ``capacity``.

    >>> empty_buffer(2, 5000).shape, empty_buffer(2, 10).shape
    ((2, 64), (2, 10))
    """
    return np.empty((features, min(capacity, INITIAL_CAPACITY)), dtype=np.float64)


def collect(buffer: NDArray[np.float64], used: NDArray[np.int64], block: NumericBlock,
            capacity: int) -> NDArray[np.float64]:
    """Append each feature's present values to its row while there is room.

    ``used`` is updated in place; returns the buffer, a larger one when it
    had to grow (never beyond ``capacity`` values per row).

    >>> buffer, used = empty_buffer(2, 3), np.zeros(2, dtype=np.int64)
    >>> values = np.array([[1.0, 2.0, 3.0, 4.0], [5.0, 6.0, 7.0, 8.0]])
    >>> missing = np.array([[False, True, False, False], [False] * 4])
    >>> buffer = collect(buffer, used, NumericBlock(("x", "y"), values, missing), 3)
    >>> used.tolist(), buffer_rows(buffer, used)
    ([3, 3], [[1.0, 3.0, 4.0], [5.0, 6.0, 7.0]])
    >>> buffer = empty_buffer(1, 1000)
    >>> buffer = collect(buffer, np.zeros(1, dtype=np.int64),
    ...                  NumericBlock(("x",), np.ones((1, 100)), np.zeros((1, 100), bool)), 1000)
    >>> buffer.shape
    (1, 128)
    """
    needed = min(capacity, int(used.max(initial=0)) + block.values.shape[1])
    if needed > buffer.shape[1]:
        size = max(buffer.shape[1], 1)
        while size < needed:
            size *= 2
        grown = np.empty((buffer.shape[0], min(size, capacity)), dtype=np.float64)
        grown[:, :buffer.shape[1]] = buffer
        buffer = grown
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
    return buffer


def buffer_rows(buffer: NDArray[np.float64], used: NDArray[np.int64]) -> list[list[float]]:
    """The used part of every row, as plain lists (for state)."""
    return [buffer[row, :int(count)].tolist() for row, count in enumerate(used)]


def restore_buffer(rows: list[list[float]], capacity: int, ready: bool) -> NDArray[np.float64]:
    """Rebuild a buffer from :func:`buffer_rows` output (released once the reference is ready).

    >>> restore_buffer([[1.0, 2.0], [3.0]], 5000, ready=False).shape
    (2, 64)
    """
    if ready:
        return np.empty((len(rows), 0), dtype=np.float64)
    longest = max(map(len, rows), default=0)
    buffer = empty_buffer(len(rows), capacity)
    if longest > buffer.shape[1]:
        buffer = np.empty((len(rows), longest), dtype=np.float64)
    for row, values in enumerate(rows):
        buffer[row, :len(values)] = values
    return buffer
