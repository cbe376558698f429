"""Sequential detection of a shift in the location or spread of numeric features.

Every value is turned into a normal score through the reference's own
empirical CDF (mid-ranks at fine reference quantiles, linear in between), so
heavy tails, skew and ties (counts, flags) need no assumption. Scores are
summed over blocks of ``block_size`` present values, and four one-sided CUSUMs
run on the block sums: mean score up and down (location), mean squared score
up and down (spread). A CUSUM that crosses its threshold raises an alarm at
the end of that block, reports it and starts again from zero.

**Thresholds come from the reference itself.** For each side, the increments'
exponential tilt (the root of the empirical cumulant generating function) and
Siegmund's corrected approximation give the expected run length for a
threshold. The reference is only a sample, so the scores of future stationary
data are off-centre by an amount the reference cannot see; a bootstrap of the
reference (resample, rebuild the transform, score the original) measures that
error, and the threshold is set so that the false-alarm rate *averaged over
it* meets ``alpha`` (per event, split evenly over the four sides).

**Minimum effect.** Each CUSUM subtracts a reference value: ``min_shift``
reference sd for location, a variance ratio of ``min_variance_ratio`` for
spread. Smaller changes make the statistic drift down, so piling up data does
not make them significant: their alarm rate falls exponentially with the gap
(at a model's default budget, a persistent shift of two thirds of
``min_shift`` alarms about once per 2·10^5 events, half of it about once per
3·10^6). A rise in
mean squared score that the location shift of the same stretch explains
(u² = (u - ū)² + ū²) is not reported as spread.

Scores are fixed-point integers (``2**-20`` units): block sums, and therefore
alarms, are exactly the same however the events were batched.

**Every feature at once.** One detector watches all the features of a
:class:`~detectors.batch.NumericBlock`, so a segment costs a few numpy calls
whatever their number: every value is scored in event order through one
table lookup (:class:`~detectors.drift.score_lookup.ScoreLookup`, no sort),
one ``reduceat`` sums the scores of every feature's blocks, and the CUSUMs of
all features advance block by block together. Only an alarm is handled
feature by feature. The scores stay available (:attr:`NumericCusum.last_scores`)
for the joint test over the same features, and where the lookup located each
value (:attr:`NumericCusum.last_rows`) for the histogram and range counts.
"""

from __future__ import annotations

import math
from functools import partial
from typing import Any, ClassVar, NamedTuple

import numpy as np
from numpy.typing import NDArray

from detectors.base import CRITICAL, WARNING, FeatureTest, TestResult
from detectors.batch import NumericBlock, NumericColumn
from detectors.buffers import buffer_rows, collect, empty_buffer, restore_buffer
from detectors.drift.cusum_blocks import Cusums, advance, block_sums, walk
from detectors.drift.cusum_calibration import MIN_EVENTS, SCALE, Resamples, calibrate
from detectors.drift.cusum_explain import explain_location, explain_quiet, explain_spread
from detectors.drift.score_lookup import ScoreLookup
from detectors.errors import ConfigurationError, require

Ints = NDArray[np.int64]


class Alarm(NamedTuple):
    """One alarm raised by :meth:`NumericCusum.update_many`."""

    row: int
    """Position in the segment (missing values included) of the value that closed the block."""
    feature: int
    """Row of the alarming feature in ``columns`` (0 for a single feature)."""
    result: TestResult


class NumericCusum(FeatureTest[NumericColumn | NumericBlock]):
    """Four block CUSUMs per feature on reference normal scores, calibrated from the reference.

    Parameters
    ----------
    alpha
        False-alarm rate per event of each feature (its four sides together):
        ``1 / alpha`` is the expected number of events between a feature's false alarms.
    reference_size
        Capacity of each feature's reference buffer (values); extra reference values
        are ignored.
    block_size
        Present values per block; the CUSUMs are checked at every block end.
    min_shift
        Location reference value, in reference standard deviations of the
        scores: smaller mean shifts do not accumulate.
    min_variance_ratio
        Spread reference value: variance ratios between ``1 / min_variance_ratio``
        and ``min_variance_ratio`` do not accumulate.
    columns
        The features watched (see :class:`~detectors.base.FeatureTest`); ``None``
        for one feature fed as a :class:`~detectors.batch.NumericColumn`.

    Examples
    --------
    >>> rng = np.random.default_rng(1)
    >>> test = NumericCusum(alpha=1e-8, reference_size=5000)
    >>> test.update_many(NumericColumn(rng.normal(size=5000), np.zeros(5000, bool)))
    >>> test.end_reference()
    >>> test.update_many(NumericColumn(rng.normal(size=3000), np.zeros(3000, bool)))
    >>> test.last_alarms
    []
    >>> test.update_many(NumericColumn(rng.normal(0.5, 1.0, 1000), np.zeros(1000, bool)))
    >>> [(alarm.row, alarm.result.detector) for alarm in test.last_alarms]
    [(199, 'cusum_location')]

    Several features at once, fed as blocks:

    >>> test = NumericCusum(alpha=1e-8, columns=["x", "y"])
    >>> def block(n, y_shift=0.0):
    ...     values = rng.normal(size=(2, n)) + np.array([[0.0], [y_shift]])
    ...     return NumericBlock(("x", "y"), values, np.zeros((2, n), bool))
    >>> test.update_many(block(5000))
    >>> test.end_reference()
    >>> test.update_many(block(1000, y_shift=-1.0))
    >>> [(alarm.row, alarm.feature, alarm.result.detector) for alarm in test.last_alarms]
    [(199, 1, 'cusum_location')]

    """

    name: ClassVar[str] = "numeric_cusum"
    STATE_VERSION: ClassVar[int] = 2
    config_keys: ClassVar[tuple[str, ...]] = (
        "alpha", "reference_size", "block_size", "min_shift", "min_variance_ratio", "columns")
    state_keys: ClassVar[tuple[str, ...]] = (
        "reference_ready", "drift", "buffer", "buffer_used", "knots", "table",
        "reference_summary", "centres", "thresholds", "sums", "runs", "run_score", "pending",
        "events", "window_alarm", "window_alarms",
    )

    def __init__(
        self,
        alpha: float,
        reference_size: int = 5000,
        block_size: int = 200,
        min_shift: float = 0.15,
        min_variance_ratio: float = 1.2,
        columns: list[str] | None = None,
    ) -> None:
        require(reference_size >= MIN_EVENTS, "reference_size", f"an integer >= {MIN_EVENTS}",
                reference_size)
        require(2 <= block_size <= 10_000, "block_size", "an integer in [2, 10000]", block_size)
        require(0.0 < min_shift <= 5.0, "min_shift", "a number in (0, 5]", min_shift)
        require(1.0 < min_variance_ratio <= 100.0, "min_variance_ratio", "a number in (1, 100]",
                min_variance_ratio)
        self.reference_size = reference_size
        self.block_size = block_size
        self.min_shift = min_shift
        self.min_variance_ratio = min_variance_ratio
        super().__init__(alpha, columns)

    def _reset(self) -> None:
        d = self.width
        self._reference_ready = False
        self._drift = False
        self._buffer = empty_buffer(d, self.reference_size)
        self._buffer_used: Ints = np.zeros(d, dtype=np.int64)
        self._knots: list[NDArray[np.float64]] = []
        self._table: list[NDArray[np.float64]] = []
        # The knots and tables as one event-order lookup (derived, not state).
        self._lookup = ScoreLookup([], [])
        self._reference_summary: list[dict[str, float]] = [{} for _ in range(d)]
        # Per feature and side, the integer block sum subtracted (location) or compared with
        # (spread), and the threshold; a threshold of 0 marks a feature left uncalibrated.
        self._centres: Ints = np.zeros((d, 4), dtype=np.int64)
        self._thresholds: Ints = np.zeros((d, 4), dtype=np.int64)
        self._sums: Ints = np.zeros((d, 4), dtype=np.int64)
        self._runs: Ints = np.zeros((d, 4), dtype=np.int64)
        self._run_score: Ints = np.zeros(d, dtype=np.int64)  # sum of scores over the spread-up run
        # Present values of each feature's open block: count, sum of scores, sum of squares.
        self._pending: Ints = np.zeros((d, 3), dtype=np.int64)
        self._events: Ints = np.zeros(d, dtype=np.int64)
        self._window_alarm: list[dict[str, Any] | None] = [None] * d
        self._window_alarms: Ints = np.zeros(d, dtype=np.int64)
        self.last_alarms: list[Alarm] = []
        # The last segment's normal scores (SCALE units), a row per feature in event order;
        # 0 where a value is missing or its feature uncalibrated. None during the reference.
        self.last_scores: Ints | None = None
        # The last segment's rows in the score lookup (ScoreLookup.rows), when it found them.
        self.last_rows: NDArray[np.int32] | None = None

    @property
    def lookup(self) -> ScoreLookup:
        """The score transform of every feature (empty until the reference is closed)."""
        return self._lookup

    @property
    def active(self) -> bool:
        """Whether every feature's reference allowed a calibration (enough, varied values)."""
        return bool((self._thresholds[:, 0] > 0).all())

    def update_many(self, segment: NumericColumn | NumericBlock) -> None:
        """Add a segment; :attr:`last_alarms` then lists the alarms it raised.

        Alarms come in stream order (by row, then feature). Only a feature's first
        alarm in a window is listed; later ones are counted in the window's summary.
        After the reference, :attr:`last_scores` holds the segment's normal scores.
        """
        self.last_alarms = []
        self.last_scores = self.last_rows = None
        block = self._block(segment)
        if block.events == 0:
            return
        if not self._reference_ready:
            self._buffer = collect(self._buffer, self._buffer_used, block, self.reference_size)
            return
        events_before = self._events.copy()
        self._events += block.present
        live = (self._thresholds[:, 0] > 0) & (block.present > 0)
        if not live.any():
            self.last_scores = np.zeros(block.values.shape, dtype=np.int64)
            return
        rows = self._lookup.rows(block.values)
        scores = self._lookup.scores(block.values, rows)
        if block.any_missing:
            scores[block.missing] = 0
        self.last_scores, self.last_rows = scores, rows
        closing = self.block_size - self._pending[:, 0]  # values that complete the open block
        block_scores, block_squares, complete = block_sums(
            block, scores, live, closing, self._pending, self.block_size)
        alarms = self._advance(block_scores, block_squares, complete)
        for block_index, feature, side, statistic, run in alarms:
            # Position among the feature's present values, then in the segment.
            end = int(closing[feature]) - 1 + block_index * self.block_size
            row = end
            if block.any_missing:
                row = int(np.flatnonzero(~block.missing[feature])[end])
            self._window_alarms[feature] += 1
            if self._window_alarm[feature] is None:
                # Later alarms of the same window (a shift that persists) are only counted:
                # one report per window says all there is to say.
                result = self._alarm_result(feature, side, statistic, run,
                                            int(events_before[feature]) + end + 1)
                self.last_alarms.append(Alarm(row, feature, result))
                self._window_alarm[feature] = result.to_dict()
        self.last_alarms.sort(key=lambda alarm: (alarm.row, alarm.feature))

    def _advance(self, block_scores: Ints, block_squares: Ints, complete: Ints,
                 ) -> list[tuple[int, int, int, int, int]]:
        """Move the CUSUMs over the complete blocks; alarms as (block, feature, side, …)."""
        cusums, crossed = advance(block_scores, block_squares, complete, self._centres,
                                  self._thresholds,
                                  Cusums(self._sums, self._runs, self._run_score),
                                  self.block_size)
        self._sums, self._runs, self._run_score = cusums
        alarms: list[tuple[int, int, int, int, int]] = []
        for feature in np.flatnonzero(crossed).tolist():
            count = int(complete[feature])
            found, after = walk(
                block_scores[feature, :count].tolist(), block_squares[feature, :count].tolist(),
                self._sums[feature].tolist(), self._runs[feature].tolist(),
                int(self._run_score[feature]), self._centres[feature].tolist(),
                self._thresholds[feature].tolist(), self.block_size, self.min_variance_ratio)
            self._sums[feature], self._runs[feature] = after.sums, after.runs
            self._run_score[feature] = after.run_score
            alarms += [(block, feature, side, statistic, run)
                       for block, side, statistic, run in found]
        return alarms

    def scores_of(self, values: NDArray[np.float64]) -> Ints:
        """Normal scores (SCALE units) of any values, a row per feature, as segments get them.

        0 throughout for a feature left uncalibrated. Only once the reference is closed.
        """
        if not self._reference_ready:
            raise ConfigurationError("scores_of: the reference is not closed yet")
        require(values.ndim == 2 and values.shape[0] == self.width, "values",
                f"an array of {self.width} rows (features)", values.shape)
        return self._lookup.scores(values)

    def end_reference(self) -> None:
        """Build each feature's score transform and calibrate its thresholds; free the buffer."""
        resamples = Resamples()      # features of one size share the bootstrap's draws
        for feature in range(self.width):
            reference = np.sort(self._buffer[feature, :int(self._buffer_used[feature])])
            calibration = calibrate(reference, self.alpha, self.block_size, self.min_shift,
                                    self.min_variance_ratio, resamples)
            if calibration is None:
                self._knots.append(np.empty(0, dtype=np.float64))
                self._table.append(np.empty(0, dtype=np.float64))
                continue
            self._knots.append(calibration.knots)
            self._table.append(calibration.table)
            self._reference_summary[feature] = calibration.summary
            self._centres[feature] = calibration.centres
            self._thresholds[feature] = calibration.thresholds
        self._derive()
        self._buffer = empty_buffer(self.width, 0)
        self._buffer_used[:] = 0
        self._reference_ready = True

    def _derive(self) -> None:
        """Build the knots' and tables' event-order lookup."""
        self._lookup = ScoreLookup(self._knots, self._table)

    def end_alarmed_windows(self) -> dict[int, TestResult]:
        """Close every feature's window; return the verdicts of those that alarmed in it.

        By feature position. The monitor needs no other: a quiet feature's window
        speaks through its windowed test. Leaves :attr:`window_results` empty.
        """
        alarmed = {feature: self._alarmed_result(feature, events)
                   for feature, events in enumerate(self._events.tolist())
                   if self._window_alarm[feature] is not None}
        self._reset_windows()
        self.window_results = []
        self._drift = bool(alarmed)
        return alarmed

    def _reset_windows(self) -> None:
        self._events[:] = 0
        self._window_alarm = [None] * self.width
        self._window_alarms[:] = 0

    def _close_windows(self) -> list[TestResult]:
        """Summarise each feature's window (drift if any of its blocks alarmed); reset them."""
        # Without an alarm, a feature's summary names its side nearest to the threshold.
        nearness = np.divide(self._sums, self._thresholds, out=np.zeros((self.width, 4)),
                             where=self._thresholds > 0)
        sides = np.argmax(nearness, axis=1)
        rows = np.arange(self.width)
        results = [self._window_result(feature, *values) for feature, values in enumerate(zip(
            self._events.tolist(), sides.tolist(), self._sums[rows, sides].tolist(),
            self._thresholds[rows, sides].tolist(), strict=True))]
        self._reset_windows()
        return results

    def _window_result(self, feature: int, events: int, side: int, statistic: int,
                       threshold: int) -> TestResult:
        if self._window_alarm[feature] is not None:
            return self._alarmed_result(feature, events)
        reference = self._reference_summary[feature]
        if threshold == 0:
            return TestResult(
                detector="cusum", drift=False, statistic=0.0, threshold=math.inf, p_value=None,
                effect_size=0.0, severity=WARNING, window_events=events,
                explanation=f"not tested: the reference had fewer than {MIN_EVENTS} values "
                "or only one distinct value", reference=reference)
        return TestResult(
            detector=_detector(side), drift=False, statistic=statistic / SCALE,
            threshold=threshold / SCALE, p_value=None, effect_size=0.0,
            severity=WARNING, window_events=events,
            explanation=partial(explain_quiet, side, statistic, threshold), reference=reference)

    def _alarmed_result(self, feature: int, events: int) -> TestResult:
        """The window verdict of a feature that alarmed: its first alarm, with the count."""
        alarm = dict(self._window_alarm[feature] or {})
        if self._window_alarms[feature] > 1:
            alarm["explanation"] += f" ({self._window_alarms[feature]} alarms in this window)"
        alarm["window_events"] = events
        return TestResult(**alarm)

    def _alarm_result(self, feature: int, side: int, statistic: int, run: int,
                      window_events: int) -> TestResult:
        ref = self._reference_summary[feature]
        per_event = statistic / (run * SCALE)
        block_centre = int(self._centres[feature, side]) / (self.block_size * SCALE)
        if side < 2:
            shift = block_centre + per_event if side == 0 else block_centre - per_event
            effect = abs(shift)
            explanation = explain_location(ref, self._knots[feature], self._table[feature],
                                           shift, run, up=side == 0)
            severity = CRITICAL if effect >= 1.0 else WARNING
        else:
            ratio = block_centre + per_event if side == 2 else block_centre - per_event
            ratio = max(ratio, 1e-6)
            effect = abs(math.log(ratio))
            explanation = explain_spread(ref, ratio, run, up=side == 2)
            severity = CRITICAL if effect >= math.log(2.0) else WARNING
        threshold = int(self._thresholds[feature, side]) / SCALE
        return TestResult(
            detector=_detector(side), drift=True, statistic=statistic / SCALE,
            threshold=threshold, p_value=None, effect_size=effect, severity=severity,
            window_events=window_events,
            explanation=f"{explanation}; CUSUM {statistic / SCALE:.1f} > {threshold:.1f}",
            reference=ref)

    def _restore(self, key: str, value: Any) -> Any:
        d = self.width
        if key == "buffer":
            return restore_buffer(value, self.reference_size, self._reference_ready)
        if key in ("knots", "table"):
            return [np.asarray(row, dtype=np.float64) for row in value]
        if key in ("centres", "thresholds", "sums", "runs", "pending"):
            return np.asarray(value, dtype=np.int64).reshape(d, -1)
        if key in ("buffer_used", "run_score", "events", "window_alarms"):
            return np.asarray(value, dtype=np.int64).reshape(d)
        if key == "reference_summary" and len(value) != d:
            raise ValueError(f"reference_summary: expected {d} features, got {len(value)}")
        return value

    def to_state(self) -> dict[str, Any]:
        """Versioned plain-dict state; only the used part of the reference buffer is kept."""
        state = super().to_state()
        state["state"]["buffer"] = buffer_rows(self._buffer, self._buffer_used)
        return state


def _detector(side: int) -> str:
    return "cusum_location" if side < 2 else "cusum_spread"
