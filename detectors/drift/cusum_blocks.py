"""The arithmetic of :class:`~detectors.drift.cusum.NumericCusum`, for many features at once.

:func:`block_sums` turns a segment into each feature's block sums of scores
and squared scores; :func:`advance` moves every feature's four CUSUMs over its
complete blocks with a few numpy calls; a feature that crosses a threshold in
the segment is replayed block by block by :func:`walk`, which raises its
alarms and resets the sides that crossed, exactly as the sequential definition.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
from numpy.typing import NDArray

from detectors.batch import NumericBlock
from detectors.drift.cusum_calibration import SCALE, SCALE_BITS

Ints = NDArray[np.int64]
# Per side, +1 if its CUSUM adds (statistic - centre), -1 if it adds (centre - statistic).
_SIGN = np.array([1, -1, 1, -1], dtype=np.int64)


class Cusums(NamedTuple):
    """The four CUSUMs of every feature: a row per feature, a column per side."""

    sums: Ints
    runs: Ints
    """Events since each side last stood at zero."""
    run_score: Ints
    """Per feature, the sum of scores over the spread-up side's run."""


def block_sums(block: NumericBlock, event_scores: Ints, live: NDArray[np.bool_], closing: Ints,
               pending: Ints, block_size: int) -> tuple[Ints, Ints, Ints]:
    """Score sums and squared-score sums of every feature's blocks in the segment.

    ``event_scores`` holds every value's score, a row per feature in event
    order, 0 where missing. Slot 0 of a feature is its open block (completed
    by the first ``closing`` values), then come whole blocks and a partial
    one. Returns the sums per slot, with the open block's earlier values
    (``pending``: count, sum of scores, sum of squares) included, and how many
    blocks each ``live`` feature completed; ``pending`` is updated in place to
    the new open blocks.
    """
    d, n = event_scores.shape
    b = block_size
    if block.any_missing:
        # Each row's present values first (missing ones are left out of every block).
        present_values = ~block.missing
        ranks = np.cumsum(present_values, axis=1) - 1 + block.row_starts[:, None]
        scores = np.zeros(d * n, dtype=np.int64)
        scores[ranks[present_values]] = event_scores[present_values]
    else:
        scores = event_scores.reshape(-1)
    squares = scores * scores
    squares >>= SCALE_BITS
    # Slot k of a feature starts at its present value 0, closing, closing + b, … (those
    # that exist); each slot sums to the next start, the last one to the row's end.
    present = block.present
    width = (n + b - 1) // b + 1
    starts = np.arange(-1, width - 1) * b + closing[:, None]
    starts[:, 0] = 0
    used = starts < present[:, None]
    used[:, 0] = True
    firsts = (starts + block.row_starts[:, None])[used]
    block_scores = np.zeros((d, width), dtype=np.int64)
    block_squares = np.zeros((d, width), dtype=np.int64)
    block_scores[used] = np.add.reduceat(scores, firsts)
    block_squares[used] = np.add.reduceat(squares, firsts)
    block_scores[:, 0] += pending[:, 1]
    block_squares[:, 0] += pending[:, 2]
    # Values past the open block; floor division makes a shortfall (>= -b) count -1.
    beyond = present - closing
    complete = (beyond // b + 1) * live
    rows = np.flatnonzero(live)
    last = complete[rows]
    pending[rows, 0] = beyond[rows] - (last - 1) * b
    pending[rows, 1] = block_scores[rows, last]
    pending[rows, 2] = block_squares[rows, last]
    return block_scores, block_squares, complete


def advance(block_scores: Ints, block_squares: Ints, complete: Ints, centres: Ints,
            thresholds: Ints, start: Cusums, block_size: int) -> tuple[Cusums, NDArray[np.bool_]]:
    """Move every feature's CUSUMs over its ``complete`` blocks.

    As running sums: S_k = max(0, S_k-1 + x_k) is C_k - min(0, min_j<=k C_j)
    with C the cumulative sum from S_-1. Returns the CUSUMs after the segment
    and which features crossed a threshold in it; those keep their ``start``
    values, for :func:`walk` to replay.
    """
    b = block_size
    blocks = int(complete.max())
    if blocks == 0:
        return start, np.zeros(complete.size, dtype=np.bool_)
    d = complete.size
    scores, squares = block_scores[:, :blocks], block_squares[:, :blocks]
    increments = np.empty((d, 4, blocks), dtype=np.int64)
    increments[:, 0] = scores
    increments[:, 1] = scores
    increments[:, 2] = squares
    increments[:, 3] = squares
    increments -= centres[:, :, None]
    increments *= _SIGN[:, None]
    index = np.arange(blocks)
    valid = None if complete.min() == blocks else index < complete[:, None]
    if valid is not None:  # past a feature's last complete block: no change
        increments *= valid[:, None, :]
    sums = increments.cumsum(axis=2)
    sums += start.sums[:, :, None]
    floor = np.minimum.accumulate(sums, axis=2)
    np.minimum(floor, 0, out=floor)
    sums -= floor
    crossed = np.asarray((sums > thresholds[:, :, None]).any(axis=(1, 2)), dtype=np.bool_)
    # A side's run restarts after the last block where it fell to zero.
    zero = sums == 0
    if valid is not None:
        zero &= valid[:, None, :]
    restart = np.where(zero, index, -1).max(axis=2)
    end = np.maximum(complete - 1, 0)
    rows = np.arange(d)
    runs = np.where(restart >= 0, b * (end[:, None] - restart),
                    start.runs + b * (end + 1)[:, None])
    cumulative = scores.cumsum(axis=1)
    totals = cumulative[rows, end]
    since = restart[:, 2]
    run_score = np.where(since >= 0, totals - cumulative[rows, np.maximum(since, 0)],
                         start.run_score + totals)
    final = sums[rows, :, end]
    if valid is None and not crossed.any():  # the usual segment: every feature moved
        return Cusums(final, runs, run_score), crossed
    moved = (complete > 0) & ~crossed
    return Cusums(np.where(moved[:, None], final, start.sums),
                  np.where(moved[:, None], runs, start.runs),
                  np.where(moved, run_score, start.run_score)), crossed


def walk(block_scores: list[int], block_squares: list[int], sums: list[int], runs: list[int],
         run_score: int, centres: list[int], thresholds: list[int], block_size: int,
         min_variance_ratio: float) -> tuple[list[tuple[int, int, int, int]], Cusums]:
    """One feature's CUSUMs, block by block, from ``sums``, ``runs`` and ``run_score``.

    Returns its alarms as ``(block, side, statistic, run)`` and its CUSUMs after
    the blocks (as one-row arrays).
    """
    up, down, wide, narrow = sums
    run_up, run_down, run_wide, run_narrow = runs
    c_up, c_down, c_wide, c_narrow = centres
    h_up, h_down, h_wide, h_narrow = thresholds
    b = block_size
    alarms: list[tuple[int, int, int, int]] = []
    for block, (score, square) in enumerate(zip(block_scores, block_squares, strict=True)):
        up += score - c_up
        if up > 0:
            run_up += b
        else:
            up = run_up = 0
        down += c_down - score
        if down > 0:
            run_down += b
        else:
            down = run_down = 0
        wide += square - c_wide
        if wide > 0:
            run_wide += b
            run_score += score
        else:
            wide = run_wide = run_score = 0
        narrow += c_narrow - square
        if narrow > 0:
            run_narrow += b
        else:
            narrow = run_narrow = 0
        if wide > h_wide and _shifted_not_spread(wide, run_wide, run_score, centres,
                                                 block_size, min_variance_ratio):
            wide = run_wide = run_score = 0
        if up > h_up or down > h_down or wide > h_wide or narrow > h_narrow:
            # One alarm per block: the side furthest past its threshold.
            now = (up, down, wide, narrow)
            lengths = (run_up, run_down, run_wide, run_narrow)
            side = max(range(4), key=lambda s: now[s] / thresholds[s])
            alarms.append((block, side, now[side], lengths[side]))
            if up > h_up:
                up = run_up = 0
            if down > h_down:
                down = run_down = 0
            if wide > h_wide:
                wide = run_wide = run_score = 0
            if narrow > h_narrow:
                narrow = run_narrow = 0
    return alarms, Cusums(np.array([up, down, wide, narrow], dtype=np.int64),
                          np.array([run_up, run_down, run_wide, run_narrow], dtype=np.int64),
                          np.array(run_score, dtype=np.int64))


def _shifted_not_spread(wide: int, run: int, run_score: int, centres: list[int], block_size: int,
                        min_variance_ratio: float) -> bool:
    """Whether a rise in mean squared score is only the mean moving (u² = (u - ū)² + ū²)."""
    block = block_size * SCALE
    mean_u = (centres[0] + centres[1]) / (2 * block)
    variance = centres[2] / (min_variance_ratio * block)
    mean_square = wide / (run * SCALE) + centres[2] / block
    mean_score = run_score / (run * SCALE)
    variance_now = mean_square - mean_score * mean_score
    return variance_now - mean_u * mean_u <= min_variance_ratio * variance
