"""One-sided Bernoulli CUSUM on an error stream, against a baseline it estimates itself.

driftline's default error-stream detector. It asks one question: *has the
model's error rate gone up, by at least ``min_increase``?* A fall in the error
rate (a fresh model learning after a reset, an easier stretch of traffic) can
never signal, which is where two-sided detectors such as ADWIN raise false
alarms on error streams.

**Test.** For each odds ratio ``θ`` in ``odds_ratios`` a CUSUM accumulates the
log-likelihood ratio of "error rate ``p1``" against "error rate ``p0``", where
``odds(p1) = θ · odds(p0)``, clipped at zero from below:
``S ← max(0, S + x·log(p1/p0) + (1−x)·log((1−p1)/(1−p0)))``. Small ratios
catch small rises, large ratios catch large rises fast. Each CUSUM has its
own threshold (``threshold``, one per odds ratio or one for all). For a rise
to ``q`` the best-matched CUSUM crosses its threshold after about
``threshold / KL(q ‖ p0)`` events (Wald). Values are clipped into ``[0, 1]``,
so a loss in that range (the predicted probability of the wrong class, say)
works as a soft error.

**Minimum increase.** A crossing says the error rate has risen; whether the
rise is worth an alarm is judged by its size. Each CUSUM counts the values and
errors since it last stood at zero: the stretch whose evidence it holds. When
CUSUMs cross, the one with the longest stretch (the most precise) estimates the
new error rate; the detector signals if that is at least ``min_increase``
above ``p0``. A smaller rise is taken as the model's new level: the recent
estimate of the baseline jumps to it and every CUSUM starts again from zero.
The error rates of online learners creep: on river's STAGGER a Gaussian naive
Bayes goes from 0 % to 5–15 % over thousands of events, a few points at a time,
without any change in the data, while a concept change moves the error rate by
more at once (on the benchmark's streams the smallest, SEA's, by 6–10 points
from about 11 %). The default, 4 points, lies between the two, with little room
on either side (see the README's concept-drift figures). The price: a rise
smaller than ``min_increase`` is never reported, and one that creeps up in
steps each smaller than ``min_increase`` mostly is not (each step is caught
and accepted before the next); the estimate is noisy, so a step of
``min_increase`` itself is reported only part of the time (measured from
baselines of 0–20 % at the former threshold of 12: 26–62 %; a step of twice
that, 99–100 %). A slow decline
against a fixed reference is what the performance monitor's tolerance test is
for. ``min_increase=0`` is the plain CUSUM: every crossing signals.

**Baseline.** ``p0``, the error rate the model normally has, is the larger of
two estimates, each a running mean that turns into an exponentially weighted
mean: a *recent* one over about ``baseline_window`` values from a (re)start
and a *long-run* one over about ``long_window`` values that leaves out the
first ``baseline_window`` values (until then it is the recent one): a model
that has just been replaced is still learning, and its first errors, counted
in the long-run level, would lift the baseline for tens of thousands of
values and lengthen every detection (on the concept bench's SEA by about half
a point of baseline, 15 % of the delay). Taking the
larger means a model that returns to the error rate it has had for a long
while, after a lucky stretch, is not called worse; a model that has become
worse than both its recent and its long-run self is. The price: after a
lasting *improvement*, rises back to the old level go unnoticed until the
long-run mean has caught up (about ``long_window`` values). Values reach the
estimates in blocks (*folds*): as many values as the estimates already rest on,
from 16 up to 256, so the baseline is never staler than half its own evidence,
and the CUSUMs' coefficients follow it at every fold.

While any CUSUM is more than half way to ``threshold`` both estimates are
frozen, so the change being tested does not leak into the reference it is
tested against. The freeze starts only once the recent estimate rests on
``baseline_window`` values: before that a half-way CUSUM is more often a
baseline estimated from too few values than a change, and freezing it would
turn that estimation error into a false alarm. Nothing is signalled during
the first ``warm_up`` values after a start. ``p0`` is clipped into
``[min_rate, 1 − min_rate]``, so a model that has made no error yet still has a
finite baseline; rises among error rates below ``min_rate`` are invisible.

**False alarms.** With a known baseline, ``exp(S)`` of each CUSUM is a
likelihood ratio, and Lorden's bound gives an average run length of at least
``exp(threshold)`` values from zero to a crossing per CUSUM. The bound is
loose: Siegmund's approximation, about ``exp(threshold) / KL(p0 ‖ p1)``,
matched measured runs of the odds-ratio-2 CUSUM within 25 % (threshold 10,
known baseline of 10 % and 25 %), and the minimum increase turns most
crossings at low error rates into new levels. So the default thresholds
(:data:`DEFAULT_THRESHOLDS`, for the default odds ratios; other ratios get
:func:`lorden_threshold`) are measured, not bounded: 12.75, 13.75 and 18 for
the odds ratios 1.5, 2 and 4 where Lorden would ask for 17.2 each. Since
``KL(p0 ‖ p1)`` grows with ``p0`` for a fixed odds ratio, and with it the
false crossings, each threshold applies as given up to a baseline of
:data:`THRESHOLD_RATE` (10 %) and above it rises by
``log(KL(p0 ‖ p1) / KL(0.1 ‖ p1(0.1)))`` (0.74–0.88 at 40 %), which holds the
run length to its value at 10 %. Measured on stationary streams with these
(2026-12-07, 360M values): 8 signals, 0.22 per 10M values: none in 40M at each
of 1 %, 5 % and 30 %, 2 in 80M at 10 %, 4 in 80M at 20 % and 2 in 80M at 40 %
error; the bench (``driftline bench quality --part labels``) and its table are
in ``docs/benchmarks.md``. Raising the baseline after a small rise only
lengthens the runs that follow.

**Cost.** Memory is a handful of floats. :meth:`update_many` runs the CUSUMs a
segment at a time between folds and crossings with numpy
(:mod:`~detectors.concept.cusum_segment`), exactly as the per-value loop does
(values are rounded to multiples of 2⁻⁸ and coefficients to 2⁻²⁰ so that every
sum is exact).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any, ClassVar

import numpy as np
from numpy.typing import NDArray

from detectors.concept.base import ErrorStreamDetector
from detectors.concept.cusum_segment import COEFFICIENT_STEP, VALUE_STEP, cusum_segment
from detectors.errors import is_integer, is_number, require

# The false-alarm budget of the default threshold: one signal per this many labelled events.
FALSE_ALARM_EVENTS = 10_000_000.0
DEFAULT_ODDS_RATIOS = (1.5, 2.0, 4.0)
# Measured, not bounded, for DEFAULT_ODDS_RATIOS: 0.22 false alarms per 10M stationary values
# at error rates of 1-40 % (see the module docstring); Lorden's bound would ask for 17.2 each.
DEFAULT_THRESHOLDS = (12.75, 13.75, 18.0)
# The baseline takes new values in blocks of at most this many (and at first of this few).
_FOLD = 256
_FIRST_FOLD = 16
# Batches smaller than this take the per-value loop (numpy's fixed cost per call is larger).
_VECTOR_MIN = 64
# The thresholds apply as given up to this baseline; above it each rises with its CUSUM's
# Kullback-Leibler rate (see the class docstring: "False alarms").
THRESHOLD_RATE = 0.1


def lorden_threshold(cusums: int, false_alarm_events: float = FALSE_ALARM_EVENTS) -> float:
    """Threshold at which ``cusums`` CUSUMs cross at most once per ``false_alarm_events`` values.

    Lorden: with a known baseline each CUSUM runs at least ``exp(threshold)``
    values between crossings, so ``cusums · exp(-threshold)`` bounds the
    crossings per value; this is the smallest threshold that holds it to
    ``1 / false_alarm_events``.

    Examples
    --------
    >>> round(lorden_threshold(3), 2)
    17.22

    """
    return math.log(cusums * false_alarm_events)


def _kullback_leibler(p: float, q: float) -> float:
    return p * math.log(p / q) + (1.0 - p) * math.log((1.0 - p) / (1.0 - q))


def _alternative(p0: float, ratio: float) -> float:
    return ratio * p0 / (1.0 - p0 + ratio * p0)


def _on_grid(coefficient: float) -> float:
    return round(coefficient / COEFFICIENT_STEP) * COEFFICIENT_STEP


def _on_value_grid(x: float) -> float:
    clipped = 0.0 if x <= 0.0 else 1.0 if x >= 1.0 else x
    return round(clipped / VALUE_STEP) * VALUE_STEP


class BernoulliCusum(ErrorStreamDetector):
    """One-sided multi-alternative Bernoulli CUSUM with a self-estimated, frozen-on-alarm baseline.

    Parameters
    ----------
    threshold
        Log-likelihood ratio at which a CUSUM crosses (higher: fewer false
        alarms, longer delays), one for all CUSUMs or one per odds ratio, at
        baselines up to :data:`THRESHOLD_RATE` (above it, it rises; see
        "False alarms"); default :data:`DEFAULT_THRESHOLDS` for the default
        odds ratios, else :func:`lorden_threshold` of the number of CUSUMs
        (one crossing per 10M values).
    odds_ratios
        Error-odds ratios (each ``> 1``) that the CUSUMs are tuned to detect.
    baseline_window
        Effective number of values in the recent estimate of the baseline.
    long_window
        Effective number of values in the long-run estimate of the baseline
        (``>= baseline_window``; equal to it: one estimate only).
    warm_up
        Values after a (re)start before anything can be signalled.
    min_rate
        The baseline is clipped into ``[min_rate, 1 - min_rate]``.
    min_increase
        Smallest rise of the error rate (absolute: ``0.04`` = 4 points) that
        signals; a crossing that shows a smaller one becomes the new baseline.

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(3)
    >>> errors = np.r_[rng.random(5000) < 0.1, rng.random(5000) < 0.3].astype(float)
    >>> detector = BernoulliCusum()
    >>> detector.update_many(errors)
    array([5167])
    >>> detector.update_many(np.r_[rng.random(5000) < 0.3, rng.random(5000) < 0.1])
    array([], dtype=int64)

    From 1 % to 3 % error: significant, but 2 points are below ``min_increase``:

    >>> rng = np.random.default_rng(4)
    >>> errors = np.r_[rng.random(5000) < 0.01, rng.random(10_000) < 0.03].astype(float)
    >>> BernoulliCusum().update_many(errors), BernoulliCusum(min_increase=0.0).update_many(errors)
    (array([], dtype=int64), array([6026]))

    """

    name = "bernoulli_cusum"
    # 3: the baseline is folded in blocks (pending values) and values/coefficients are rounded.
    # 4: a threshold per CUSUM that rises with the baseline (limits); the long-run estimate
    #    leaves out the first baseline_window values.
    STATE_VERSION: ClassVar[int] = 4
    config_keys = ("threshold", "odds_ratios", "baseline_window", "long_window", "warm_up",
                   "min_rate", "min_increase")

    _seen: int
    _recent: float
    _long_run: float
    _baseline_count: int
    _pending_values: int
    _pending_errors: float
    _statistics: list[float]
    _coefficients: list[tuple[float, float]]
    _limits: list[float]
    _stretch_values: list[int]
    _stretch_errors: list[float]

    def __init__(self, threshold: float | Sequence[float] | None = None,
                 odds_ratios: Sequence[float] = DEFAULT_ODDS_RATIOS,
                 baseline_window: int = 2000, long_window: int = 20_000, warm_up: int = 200,
                 min_rate: float = 0.005, min_increase: float = 0.04) -> None:
        ratios = tuple(odds_ratios) if isinstance(odds_ratios, Sequence) else ()
        require(len(ratios) > 0 and all(is_number(r) and r > 1 for r in ratios), "odds_ratios",
                "a non-empty sequence of finite numbers > 1", odds_ratios)
        if threshold is None:
            threshold = (DEFAULT_THRESHOLDS if ratios == DEFAULT_ODDS_RATIOS
                         else lorden_threshold(len(ratios)))
        thresholds: tuple[Any, ...] = (
            (threshold,) * len(ratios) if not isinstance(threshold, Sequence)
            else tuple(threshold) if not isinstance(threshold, str) else ())
        require(len(thresholds) == len(ratios) and all(is_number(t) and t > 0
                                                       for t in thresholds), "threshold",
                f"a positive finite number or {len(ratios)} of them (one per odds ratio)",
                threshold)
        require(is_integer(baseline_window, 1), "baseline_window", "an integer >= 1",
                baseline_window)
        require(is_integer(long_window, baseline_window if is_integer(baseline_window, 1)
                            else 1), "long_window",
                f"an integer >= baseline_window ({baseline_window})", long_window)
        require(is_integer(warm_up, 1), "warm_up", "an integer >= 1", warm_up)
        require(is_number(min_rate) and 0 < min_rate < 0.5, "min_rate", "a number in (0, 0.5)",
                min_rate)
        require(is_number(min_increase) and 0 <= min_increase < 1, "min_increase",
                "a number in [0, 1)", min_increase)
        self.threshold = tuple(float(t) for t in thresholds)
        self.odds_ratios = tuple(float(r) for r in ratios)
        self.baseline_window = baseline_window
        self.long_window = long_window
        self.warm_up = warm_up
        self.min_rate = float(min_rate)
        self.min_increase = float(min_increase)
        super().__init__()

    def config(self) -> dict[str, Any]:
        """The constructor arguments (``odds_ratios`` as a list, as JSON has it)."""
        config = super().config()
        config["odds_ratios"] = list(self.odds_ratios)
        config["threshold"] = list(self.threshold)
        return config

    @property
    def baseline(self) -> float:
        """The in-control error rate tested against, before clipping (``nan`` before any value)."""
        return self._unclipped_rate() if self._baseline_count else math.nan

    @property
    def statistic(self) -> float:
        """The largest CUSUM statistic (each crosses above its own threshold)."""
        return max(self._statistics)

    def _reset(self) -> None:
        self._seen = 0
        self._recent = 0.0
        self._long_run = 0.0
        self._baseline_count = 0
        self._pending_values = 0
        self._pending_errors = 0.0
        self._statistics = [0.0] * len(self.odds_ratios)
        self._coefficients = []
        self._limits = list(self.threshold)
        self._stretch_values = [0] * len(self.odds_ratios)
        self._stretch_errors = [0.0] * len(self.odds_ratios)

    def _unclipped_rate(self) -> float:
        return max(self._recent, self._long_run)

    def _tested_rate(self) -> float:
        return min(max(self._unclipped_rate(), self.min_rate), 1.0 - self.min_rate)

    def _refresh_coefficients(self) -> None:
        p0 = self._tested_rate()
        coefficients = []
        limits = []
        for ratio, threshold in zip(self.odds_ratios, self.threshold, strict=True):
            p1 = _alternative(p0, ratio)
            coefficients.append((_on_grid(math.log(p1 / p0)),
                                 _on_grid(math.log((1.0 - p1) / (1.0 - p0)))))
            # Siegmund: a CUSUM runs about exp(threshold) / KL(p0 ‖ p1) values between false
            # crossings; above THRESHOLD_RATE the threshold keeps that run from shortening.
            reference = _kullback_leibler(THRESHOLD_RATE, _alternative(THRESHOLD_RATE, ratio))
            limits.append(threshold + max(0.0, math.log(_kullback_leibler(p0, p1) / reference)))
        self._coefficients = coefficients
        self._limits = limits

    def _fold_size(self) -> int:
        # The baseline absorbs new values in blocks: as many as it already rests on (from
        # _FIRST_FOLD), at most _FOLD, so it is never staler than half its own evidence.
        return max(_FIRST_FOLD, min(_FOLD, self._baseline_count))

    def _absorb(self, values: int, errors: float) -> None:
        """Count values into the baseline; fold them in when a block is complete."""
        self._pending_values += values
        self._pending_errors += errors
        if self._pending_values < self._fold_size():
            return
        n = self._pending_values
        count = self._baseline_count + n
        mean = self._pending_errors / n
        self._baseline_count = count
        self._recent += (mean - self._recent) * (n / min(count, self.baseline_window))
        if count <= self.baseline_window:
            # A model that has just (re)started is still learning: its first errors are not
            # its long-run level, so the long-run estimate starts after them.
            self._long_run = self._recent
        else:
            self._long_run += (mean - self._long_run) * (
                n / min(max(count - self.baseline_window, n), self.long_window))
        self._pending_values = 0
        self._pending_errors = 0.0
        self._refresh_coefficients()

    def _update(self, x: float) -> bool:
        error = _on_value_grid(x)
        self._seen += 1
        if self._seen > self.warm_up:
            if not self._coefficients:
                self._refresh_coefficients()
            statistics, values, errors = (self._statistics, self._stretch_values,
                                          self._stretch_errors)
            half_way = False
            longest = -1
            for i, (on_error, on_success) in enumerate(self._coefficients):
                threshold = self._limits[i]
                value = statistics[i] + (error * on_error + (1.0 - error) * on_success)
                if value <= 0.0:
                    value = 0.0
                    values[i] = 0
                    errors[i] = 0.0
                else:
                    values[i] += 1
                    errors[i] += error
                statistics[i] = value
                if value >= 0.5 * threshold:
                    half_way = True
                if value > threshold and (longest < 0 or values[i] > values[longest]):
                    longest = i
            if longest >= 0:
                return self._crossed(longest)
            if half_way and self._freezes():
                return False
        self._absorb(1, error)
        return False

    def _freezes(self) -> bool:
        return self._baseline_count >= self.baseline_window

    def _crossed(self, longest: int) -> bool:
        """A CUSUM crossed: signal if its stretch rose by ``min_increase``, else a new level."""
        rate = self._stretch_errors[longest] / self._stretch_values[longest]
        if rate - self._tested_rate() >= self.min_increase:
            return True
        self._accept_level(rate)
        return False

    def _update_finite(self, values: NDArray[np.float64]) -> NDArray[np.int64]:
        """The per-value loop, a segment at a time between folds and crossings (exact)."""
        if values.size < _VECTOR_MIN:
            return super()._update_finite(values)
        errors = np.round(np.clip(values, 0.0, 1.0) / VALUE_STEP) * VALUE_STEP
        hits: list[int] = []
        position, n = 0, errors.size
        while position < n:
            room = self._fold_size() - self._pending_values
            if self._seen < self.warm_up:
                take = min(n - position, self.warm_up - self._seen, room)
                self._seen += take
                self._absorb(take, float(errors[position:position + take].sum()))
                position += take
                continue
            if not self._coefficients:
                self._refresh_coefficients()
            take = min(n - position, room)
            result = cusum_segment(errors[position:position + take], self._coefficients,
                                   self._statistics, self._stretch_values,
                                   self._stretch_errors, self._limits, self._freezes())
            self._seen += result.events
            self._statistics = result.statistics
            self._stretch_values = result.stretch_values
            self._stretch_errors = result.stretch_errors
            position += result.events
            if result.baseline_values:
                self._absorb(result.baseline_values, result.baseline_errors)
            if result.crossing >= 0 and self._crossed(result.crossing):
                hits.append(position - 1)
                self._reset()
        return np.asarray(hits, dtype=np.int64)

    def _accept_level(self, rate: float) -> None:
        """A rise too small to report: the error rate of its stretch is the model's new level."""
        self._recent = rate
        for i in range(len(self._statistics)):
            self._statistics[i] = 0.0
            self._stretch_values[i] = 0
            self._stretch_errors[i] = 0.0
        self._refresh_coefficients()

    def _learned_state(self) -> dict[str, Any]:
        return {"seen": self._seen, "recent": self._recent, "long_run": self._long_run,
                "baseline_count": self._baseline_count, "pending_values": self._pending_values,
                "pending_errors": self._pending_errors, "statistics": list(self._statistics),
                "coefficients": [list(pair) for pair in self._coefficients],
                "limits": list(self._limits),
                "stretch_values": list(self._stretch_values),
                "stretch_errors": list(self._stretch_errors)}

    def _load_learned_state(self, state: dict[str, Any]) -> None:
        statistics = [float(value) for value in state["statistics"]]
        coefficients = [(float(a), float(b)) for a, b in state["coefficients"]]
        limits = [float(value) for value in state["limits"]]
        stretch_values = [int(value) for value in state["stretch_values"]]
        stretch_errors = [float(value) for value in state["stretch_errors"]]
        cusums = len(self.odds_ratios)
        if (len(statistics) != cusums or len(coefficients) not in (0, cusums)
                or len(limits) != cusums or len(stretch_values) != cusums
                or len(stretch_errors) != cusums):
            raise ValueError("statistics/coefficients/limits/stretches do not match odds_ratios")
        self._seen = int(state["seen"])
        self._recent = float(state["recent"])
        self._long_run = float(state["long_run"])
        self._baseline_count = int(state["baseline_count"])
        self._pending_values = int(state["pending_values"])
        self._pending_errors = float(state["pending_errors"])
        self._statistics = statistics
        self._coefficients = coefficients
        self._limits = limits
        self._stretch_values = stretch_values
        self._stretch_errors = stretch_errors
