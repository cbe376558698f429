"""Sequential detection of a shift in the location or spread of one numeric feature.

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
"""

from __future__ import annotations

import copy
import math
from typing import Any, ClassVar

import numpy as np
from numpy.typing import NDArray

from detectors import stats
from detectors.base import CRITICAL, WARNING, TestResult, WindowedTest
from detectors.batch import NumericColumn
from detectors.errors import require

_SCALE_BITS = 20
_SCALE = 1 << _SCALE_BITS
_KNOTS = 129
_MIN_EVENTS = 100
_BOOTSTRAP = 64
_BOOTSTRAP_SEED = 20261123
# Siegmund's overshoot correction for normal increments (2 × 0.583 sd).
_OVERSHOOT = 1.166
_NODES, _WEIGHTS = np.polynomial.hermite_e.hermegauss(24)
_WEIGHTS = _WEIGHTS / _WEIGHTS.sum()
# Checked by simulation at run lengths of 1e5–1e6 events: the approximation is within
# ±30% on continuous data but up to 3.7 times optimistic on one side of small counts
# (Poisson(3), spread down), and the bootstrap understates the spread of a continuous
# reference's error by about a fifth (resamples carry ties). Hence a third of the rate
# and a quarter more spread.
_SAFETY = 1.0 / 3.0
_DRIFT_INFLATION = 1.25
# "No threshold" must still fit orjson's 64-bit integers (checkpoints): 2**62 / _SCALE is
# ~4e12 in score units, which a CUSUM adding at most ~1e9 per block needs ~1e12 events to reach.
_NEVER = 1 << 62
SIDES = ("location_up", "location_down", "spread_up", "spread_down")


class NumericCusum(WindowedTest[NumericColumn]):
    """Four block CUSUMs on reference normal scores, calibrated from the reference.

    Parameters
    ----------
    alpha
        False-alarm rate per event of this detector (all four sides together):
        ``1 / alpha`` is the expected number of events between false alarms.
    reference_size
        Capacity of the reference buffer (events); extra reference events are ignored.
    block_size
        Present values per block; the CUSUMs are checked at every block end.
    min_shift
        Location reference value, in reference standard deviations of the
        scores: smaller mean shifts do not accumulate.
    min_variance_ratio
        Spread reference value: variance ratios between ``1 / min_variance_ratio``
        and ``min_variance_ratio`` do not accumulate.

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
    >>> [(position, result.detector) for position, result in test.last_alarms]
    [(199, 'cusum_location')]

    """

    name: ClassVar[str] = "numeric_cusum"
    config_keys: ClassVar[tuple[str, ...]] = (
        "alpha", "reference_size", "block_size", "min_shift", "min_variance_ratio")
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
    ) -> None:
        require(reference_size >= _MIN_EVENTS, "reference_size", f"an integer >= {_MIN_EVENTS}",
                reference_size)
        require(2 <= block_size <= 10_000, "block_size", "an integer in [2, 10000]", block_size)
        require(0.0 < min_shift <= 5.0, "min_shift", "a number in (0, 5]", min_shift)
        require(1.0 < min_variance_ratio <= 100.0, "min_variance_ratio", "a number in (1, 100]",
                min_variance_ratio)
        self.reference_size = reference_size
        self.block_size = block_size
        self.min_shift = min_shift
        self.min_variance_ratio = min_variance_ratio
        super().__init__(alpha)

    def _reset(self) -> None:
        self._reference_ready = False
        self._drift = False
        self._buffer: NDArray[np.float64] = np.empty(self.reference_size, dtype=np.float64)
        self._buffer_used = 0
        self._knots: NDArray[np.float64] = np.empty(0, dtype=np.float64)
        self._table: NDArray[np.float64] = np.empty(0, dtype=np.float64)
        self._reference_summary: dict[str, float] = {}
        # Per side, the integer block-sum subtracted (location) or compared with (spread).
        self._centres: list[int] = []
        self._thresholds: list[int] = []
        self._sums = [0, 0, 0, 0]
        self._runs = [0, 0, 0, 0]
        self._run_score = 0  # sum of scores over the spread-up run
        # Present values of the open block: count, sum of scores, sum of squared scores.
        self._pending = [0, 0, 0]
        self._events = 0
        self._window_alarm: dict[str, Any] | None = None
        self._window_alarms = 0
        self.last_alarms: list[tuple[int, TestResult]] = []

    @property
    def active(self) -> bool:
        """Whether the reference allowed a calibration (enough, non-constant values)."""
        return bool(self._thresholds)

    def update_many(self, column: NumericColumn) -> None:
        """Add a segment; :attr:`last_alarms` then lists the alarms it raised.

        Each alarm is ``(row, result)``: ``row`` is the position in ``column``
        (missing rows included) of the value that closed the alarming block.
        Only a window's first alarm is listed; later ones are counted in the
        window's summary.
        """
        self.last_alarms = []
        kept: NDArray[np.intp] | None = None
        values = column.values
        if column.missing.any():
            kept = np.flatnonzero(~column.missing)
            values = values[kept]
        if not self._reference_ready:
            take = min(values.size, self.reference_size - self._buffer_used)
            self._buffer[self._buffer_used:self._buffer_used + take] = values[:take]
            self._buffer_used += take
            return
        m = int(values.size)
        if m == 0:
            return
        events_before = self._events
        self._events += m
        if not self._thresholds:
            return
        # np.interp searches with a guess from the previous value: in sorted order its
        # branches are predictable and it runs about twice as fast as on arrival order.
        order = np.argsort(values)
        scores = np.empty(m, dtype=np.int64)
        scores[order] = np.interp(values[order], self._knots, self._table)
        squares = (scores * scores) >> _SCALE_BITS
        pending = self._pending
        b = self.block_size
        closing = b - pending[0]  # values that complete the open block
        if closing > m:
            pending[0] += m
            pending[1] += int(scores.sum())
            pending[2] += int(squares.sum())
            return
        # Segments: the rest of the open block, then whole blocks, then maybe a partial one.
        starts = np.arange(closing - b, m, b)
        starts[0] = 0
        block_scores = np.add.reduceat(scores, starts).tolist()
        block_squares = np.add.reduceat(squares, starts).tolist()
        block_scores[0] += pending[1]
        block_squares[0] += pending[2]
        complete = (m - closing) // b + 1
        if len(block_scores) > complete:
            pending[0] = m - int(starts[-1])
            pending[1] = block_scores.pop()
            pending[2] = block_squares.pop()
        else:
            pending[0] = pending[1] = pending[2] = 0
        alarms = self._run_blocks(block_scores, block_squares)
        for block, side, statistic, run in alarms:
            end = closing - 1 + block * b
            row = end if kept is None else int(kept[end])
            self._window_alarms += 1
            if self._window_alarm is None:
                # Later alarms of the same window (a shift that persists) are only counted:
                # one report per window says all there is to say.
                result = self._alarm_result(side, statistic, run, events_before + end + 1)
                self.last_alarms.append((row, result))
                self._window_alarm = result.to_dict()

    def _run_blocks(self, block_scores: list[int], block_squares: list[int],
                    ) -> list[tuple[int, int, int, int]]:
        up, down, wide, narrow = self._sums
        run_up, run_down, run_wide, run_narrow = self._runs
        c_up, c_down, c_wide, c_narrow = self._centres
        h_up, h_down, h_wide, h_narrow = self._thresholds
        b = self.block_size
        run_score = self._run_score
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
            if wide > h_wide and self._shifted_not_spread(wide, run_wide, run_score):
                wide = run_wide = run_score = 0
            if up > h_up or down > h_down or wide > h_wide or narrow > h_narrow:
                # One alarm per block: the side furthest past its threshold.
                sums = (up, down, wide, narrow)
                runs = (run_up, run_down, run_wide, run_narrow)
                side = max(range(4), key=lambda s: sums[s] / self._thresholds[s])
                alarms.append((block, side, sums[side], runs[side]))
                if up > h_up:
                    up = run_up = 0
                if down > h_down:
                    down = run_down = 0
                if wide > h_wide:
                    wide = run_wide = run_score = 0
                if narrow > h_narrow:
                    narrow = run_narrow = 0
        self._sums = [up, down, wide, narrow]
        self._runs = [run_up, run_down, run_wide, run_narrow]
        self._run_score = run_score
        return alarms

    def _shifted_not_spread(self, wide: int, run: int, run_score: int) -> bool:
        """Whether a rise in mean squared score is only the mean moving (u² = (u - ū)² + ū²)."""
        block = self.block_size * _SCALE
        mean_u = (self._centres[0] + self._centres[1]) / (2 * block)
        variance = self._centres[2] / (self.min_variance_ratio * block)
        mean_square = wide / (run * _SCALE) + self._centres[2] / block
        mean_score = run_score / (run * _SCALE)
        variance_now = mean_square - mean_score * mean_score
        return variance_now - mean_u * mean_u <= self.min_variance_ratio * variance

    def end_reference(self) -> None:
        """Build the score transform and calibrate the four thresholds; free the buffer."""
        reference = np.sort(self._buffer[:self._buffer_used])
        self._buffer = np.empty(0, dtype=np.float64)
        self._buffer_used = 0
        self._reference_ready = True
        if reference.size < _MIN_EVENTS or reference[0] == reference[-1]:
            return
        self._reference_summary = _summary(reference)
        n = reference.size
        # z of every possible mid-rank probability k / 2n, looked up by integer k.
        z_of = stats.normal_quantiles(np.clip(np.arange(2 * n + 1), 1, 2 * n - 1) / (2.0 * n))
        knots, z = _transform(reference, z_of)
        z_reference = np.interp(reference, knots, z)
        mean, sd = float(z_reference.mean()), float(z_reference.std())
        self._knots = knots
        self._table = (z - mean) / sd * _SCALE
        scores = np.interp(reference, knots, self._table).astype(np.int64)
        u = scores / _SCALE
        w = ((scores * scores) >> _SCALE_BITS) / _SCALE
        mean_u, mean_w = float(u.mean()), float(w.mean())
        variance = mean_w - mean_u * mean_u
        up_ratio, down_ratio = self.min_variance_ratio, 1.0 / self.min_variance_ratio
        centres = (mean_u + self.min_shift, mean_u - self.min_shift, up_ratio * variance,
                   down_ratio * variance)
        increments = (u - centres[0], centres[1] - u, w - centres[2], centres[3] - w)
        drift_u, drift_w = _bootstrap_drift(reference, z_of)
        drifts = (drift_u, -drift_u, drift_w, -drift_w)
        rate = self.alpha / 4.0 * _SAFETY
        thresholds = [_threshold(a, d, self.block_size, rate)
                      for a, d in zip(increments, drifts, strict=True)]
        self._centres = [round(c * self.block_size * _SCALE) for c in centres]
        # A side the reference cannot calibrate (e.g. no increment is ever positive) never fires.
        self._thresholds = [_NEVER if math.isinf(h) else round(h * _SCALE) for h in thresholds]

    def end_window(self) -> TestResult:
        """Summarise the window (drift if any block in it alarmed); start a new window."""
        result = self._window_result()
        self._drift = result.drift
        self._events = 0
        self._window_alarm = None
        self._window_alarms = 0
        return result

    def _window_result(self) -> TestResult:
        if self._window_alarm is not None:
            alarm = dict(self._window_alarm)
            if self._window_alarms > 1:
                alarm["explanation"] += f" ({self._window_alarms} alarms in this window)"
            alarm["window_events"] = self._events
            return TestResult(**alarm)
        if not self._thresholds:
            return TestResult(
                detector="cusum", drift=False, statistic=0.0, threshold=math.inf, p_value=None,
                effect_size=0.0, severity=WARNING, window_events=self._events,
                explanation=f"not tested: the reference had fewer than {_MIN_EVENTS} values "
                "or only one distinct value", reference=self._reference_summary)
        side = max(range(4), key=lambda s: self._sums[s] / self._thresholds[s])
        return TestResult(
            detector=_detector(side), drift=False, statistic=self._sums[side] / _SCALE,
            threshold=self._thresholds[side] / _SCALE, p_value=None, effect_size=0.0,
            severity=WARNING, window_events=self._events,
            explanation=f"no alarm; the closest CUSUM ({SIDES[side].replace('_', ' ')}) is at "
            f"{self._sums[side] / self._thresholds[side]:.0%} of its threshold",
            reference=self._reference_summary)

    def _alarm_result(self, side: int, statistic: int, run: int, window_events: int,
                      ) -> TestResult:
        ref = self._reference_summary
        per_event = statistic / (run * _SCALE)
        block_centre = self._centres[side] / (self.block_size * _SCALE)
        if side < 2:
            shift = block_centre + per_event if side == 0 else block_centre - per_event
            effect = abs(shift)
            median = float(np.interp(ref["p50"], self._knots, self._table))
            typical = float(np.interp(median + shift * _SCALE, self._table, self._knots))
            direction = "higher" if side == 0 else "lower"
            explanation = (
                f"values {direction} than in the reference: over the last {run:,} events the "
                f"typical value is ≈{typical:.4g} (reference median {ref['p50']:.4g}), a shift "
                f"of {shift:+.2f} reference sd")
            severity = CRITICAL if effect >= 1.0 else WARNING
        else:
            ratio = block_centre + per_event if side == 2 else block_centre - per_event
            ratio = max(ratio, 1e-6)
            effect = abs(math.log(ratio))
            direction = "more" if side == 2 else "less"
            explanation = (
                f"values {direction} spread out than in the reference: over the last {run:,} "
                f"events the variance is ≈{ratio:.2f}× the reference's (reference sd "
                f"{ref['sd']:.4g}, p01–p99 {ref['p01']:.4g} to {ref['p99']:.4g})")
            severity = CRITICAL if effect >= math.log(2.0) else WARNING
        threshold = self._thresholds[side] / _SCALE
        return TestResult(
            detector=_detector(side), drift=True, statistic=statistic / _SCALE,
            threshold=threshold, p_value=None, effect_size=effect, severity=severity,
            window_events=window_events,
            explanation=f"{explanation}; CUSUM {statistic / _SCALE:.1f} > {threshold:.1f}",
            reference=ref)

    def _restore(self, key: str, value: Any) -> Any:
        if key in ("buffer", "knots", "table"):
            array = np.asarray(value, dtype=np.float64)
            if key == "buffer" and not self._reference_ready:
                full = np.empty(self.reference_size, dtype=np.float64)
                full[:array.size] = array
                return full
            return array
        return value

    def to_state(self) -> dict[str, Any]:
        """Versioned plain-dict state; only the used part of the reference buffer is kept."""
        state = super().to_state()
        learned = state["state"]
        learned["buffer"] = self._buffer[:self._buffer_used].tolist()
        # Copies: the working lists change in place with every block.
        for key in ("centres", "thresholds", "sums", "runs", "pending"):
            learned[key] = list(learned[key])
        learned["window_alarm"] = copy.deepcopy(self._window_alarm)
        return state


def _detector(side: int) -> str:
    return "cusum_location" if side < 2 else "cusum_spread"


def _transform(reference: NDArray[np.float64], z_of: NDArray[np.float64],
               weights: NDArray[np.intp] | None = None,
               ) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Knots (values at fine quantiles) and their mid-rank normal scores.

    ``weights`` (how often each sorted reference value is drawn) describes a
    bootstrap resample without materializing it.
    """
    n = reference.size
    positions = np.round(np.linspace(0.0, n - 1.0, _KNOTS)).astype(np.intp)
    if weights is None:
        knots = np.unique(reference[positions])
        below = np.searchsorted(reference, knots, side="left")
        upto = np.searchsorted(reference, knots, side="right")
    else:
        cumulative = np.concatenate(([0], np.cumsum(weights)))
        knots = np.unique(reference[np.searchsorted(cumulative, positions, side="right") - 1])
        below = cumulative[np.searchsorted(reference, knots, side="left")]
        upto = cumulative[np.searchsorted(reference, knots, side="right")]
    # Mid-rank: half of the ties at a knot count below it, so counts and flags centre.
    return knots, z_of[below + upto]


def _bootstrap_drift(reference: NDArray[np.float64], z_of: NDArray[np.float64],
                     ) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """How far a reference's estimation error moves future scores, by bootstrap.

    Each replicate resamples the reference, rebuilds and standardizes the
    transform on the resample, then scores the original reference (standing in
    for the population): the mean score and the mean squared score minus one
    are the drifts a detector built on that resample would see in stationary data.
    """
    n = reference.size
    rng = np.random.default_rng(_BOOTSTRAP_SEED)
    drift_u = np.empty(_BOOTSTRAP)
    drift_w = np.empty(_BOOTSTRAP)
    for replicate in range(_BOOTSTRAP):
        weights = np.bincount(rng.integers(0, n, n), minlength=n)
        knots, z = _transform(reference, z_of, weights)
        scored = np.interp(reference, knots, z)
        mean = float(weights @ scored) / n
        sd = math.sqrt(max(float(weights @ (scored * scored)) / n - mean * mean, 1e-300))
        drift_u[replicate] = (float(scored.mean()) - mean) / sd
        drift_w[replicate] = float(np.mean((scored - mean) ** 2)) / (sd * sd) - 1.0
    return drift_u, drift_w


def _tilt(increments: NDArray[np.float64]) -> float:
    """Root θ > 0 of log E[exp(θ a)] = 0 over the empirical increments (inf if none)."""
    top = float(increments.max())
    if top <= 0.0:
        return math.inf

    def cgf(theta: float) -> float:
        return theta * top + math.log(float(np.mean(np.exp(theta * (increments - top)))))

    high = 1.0
    while cgf(high) < 0.0:
        high *= 2.0
    low = 0.0
    for _ in range(40):
        middle = 0.5 * (low + high)
        if cgf(middle) < 0.0:
            low = middle
        else:
            high = middle
    return 0.5 * (low + high)


def _threshold(increments: NDArray[np.float64], drift: NDArray[np.float64], block: int,
               rate: float) -> float:
    """Smallest threshold whose false-alarm rate per event is at most ``rate``.

    The rate is averaged over the bootstrap spread of ``drift`` (the reference's
    estimation error), with the increments' exponential tilt in Siegmund's
    corrected approximation of the run length.
    """
    sd = float(increments.std())
    theta = _tilt(increments)
    if sd == 0.0 or math.isinf(theta):
        return math.inf
    block_sd = math.sqrt(block) * sd
    # Normal-equivalent standardized drift per block with the same exponential tilt.
    base = -0.5 * theta * block_sd
    centre, spread = float(drift.mean()), _DRIFT_INFLATION * float(drift.std())
    deltas = base + math.sqrt(block) * (centre + spread * _NODES) / sd

    def false_alarm_rate(h: float) -> float:
        barrier = h / block_sd + _OVERSHOOT
        y = -2.0 * deltas * barrier
        with np.errstate(over="ignore"):
            excess = np.where(np.abs(y) < 1e-4, 0.5 * y * y * (1.0 + y / 3.0),
                              np.expm1(np.minimum(y, 700.0)) - y)
        run_blocks = excess / (2.0 * deltas * deltas)
        return float(np.dot(_WEIGHTS, 1.0 / (block * run_blocks)))

    low, high = 0.0, block_sd
    while false_alarm_rate(high) > rate:
        low, high = high, 2.0 * high
        if high > 1e9:
            return math.inf
    for _ in range(40):
        middle = 0.5 * (low + high)
        if false_alarm_rate(middle) > rate:
            low = middle
        else:
            high = middle
    return high


def _summary(reference: NDArray[np.float64]) -> dict[str, float]:
    p01, p50, p99 = np.quantile(reference, [0.01, 0.5, 0.99])
    return {"events": float(reference.size), "mean": float(reference.mean()),
            "sd": float(reference.std()), "p01": float(p01), "p50": float(p50),
            "p99": float(p99)}
