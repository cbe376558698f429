"""Joint drift of several numeric features: PCA error and Hotelling T² against the reference.

Marginal tests look at one feature at a time, so they miss a change in how
features move together, such as two features whose correlation flips sign while
each keeps its own distribution. This test maps every feature to normal scores
through the reference's own distribution (its empirical CDF, then the inverse
normal CDF), fits a principal component analysis on the reference's scores, and
measures per window the mean squared distance of the events from the reference's
principal subspace (the squared prediction error, or Q statistic) and, within
the subspace, the mean Hotelling T² of the events on the kept components. Events
from an unchanged distribution sit as close to that subspace as the reference
did; a change in the joint structure pushes them off it (a correlation that
weakens or flips) or stretches them along it (a correlation that strengthens).

Normal scores rather than a plain mean/sd standardisation: every feature then has
bounded, Gaussian-like values whatever its distribution (incomes, counts, 0/1
flags), so one extreme event cannot outweigh a window, heavy tails do not inflate
the false-alarm rate, and the correlations in the explanation are rank-based.

Calibration comes from the reference itself. The PCA is refitted on 4/5 of the
reference and both statistics measured on the remaining fifth (five times), so
they are out of sample, like a window's. A window's sum of either statistic is a
sum of such per-event values; it is approximated by a scaled chi-square with the
same mean and variance (Satterthwaite), widened by the uncertainty of the
reference's own mean and components, and read at ``alpha / 2``. Resampling
reference windows could not resolve the 1e-8 tail a monitor runs at; the
moment-matched chi-square keeps the right skew of a sum of squares. A drift also
needs ``min_increase``: the window's mean must exceed the reference's by that
share, so that huge windows do not flag trivial changes.

The window state is three sums: the number of events, Σz and Σzzᵀ of the scores.
Both statistics are quadratic forms, so a window's mean is tr(M·Σzzᵀ)/n for a
fixed matrix M (the residual projector, or the kept components scaled by their
inverse variances), and the window's correlation matrix (for the explanation)
comes from the same sums. Scores are rounded to a 1/1024 grid, so every sum is
exact in float64 and a result does not depend on how events were split into
segments.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from functools import partial
from typing import Any, ClassVar

import numpy as np
from numpy.typing import NDArray

from detectors.base import CRITICAL, WARNING, TestResult, WindowedTest
from detectors.batch import NumericBlock, NumericColumn
from detectors.errors import ConfigurationError, require
from detectors.multivariate.pca_math import (
    EXACT_DF,
    MIN_EVENTS,
    TINY,
    Check,
    chi2_quantile,
    chi2_survival,
    correlation,
    fit_components,
    grid_scores,
    min_reference,
    moments,
    on_grid,
    pairs,
    score_table,
    signed,
)

MAX_COLUMNS = 100
_FOLDS = 5
_PAIRS_SHOWN = 3
_NOTABLE_CORRELATION_CHANGE = 0.1
# A window is compared with components and a mean both estimated from the reference; each
# estimate's noise is about that of a mean of reference_size per-event values (measured on
# Gaussian, Student-t and Poisson features), so the null variance counts it twice.
_REFERENCE_NOISE = 2.0

Segment = Mapping[str, NumericColumn]
Array = NDArray[np.float64]
Ints = NDArray[np.int64]


class PCADrift(WindowedTest[Any]):
    """Windowed PCA test (reconstruction error and Hotelling T²) over several numeric features.

    ``update_many`` takes a multi-column segment, a
    :class:`~detectors.batch.NumericBlock` holding (at least) the features or
    ``{feature: NumericColumn}``; an event missing any of the features is
    skipped, and a feature absent from a segment counts as missing in all of
    its events.

    Parameters
    ----------
    alpha
        False-alarm probability of one window's test.
    columns
        The numeric features tested together (2 to ``MAX_COLUMNS``, distinct).
    reference_size
        Capacity of the reference buffer (complete events); extra reference events
        are ignored and the buffer is released when the reference closes.
    variance_kept
        Share of the reference's variance the kept principal components explain
        (at least one component is kept and at least one left out).
    min_increase
        Smallest relative rise of the mean reconstruction error (or mean T²) worth an
        alert.
    critical_increase
        Relative rise from which a drift is ``critical`` rather than ``warning``.
    scored
        Whether the owner supplies the normal scores, as a
        :class:`~detectors.drift.cusum.NumericCusum` over the same features
        computes them (``NumericCusum.last_scores`` and ``scores_of``): each
        segment after the reference then comes with its scores, and
        :meth:`end_reference` with the function scoring the reference. The
        monitor does so, and a batch is scored once for both tests.

    Examples
    --------
    >>> rng = np.random.default_rng(1)
    >>> def events(n, rho):
    ...     x = rng.normal(size=n)
    ...     y = rho * x + np.sqrt(1 - rho**2) * rng.normal(size=n)
    ...     return {"x": NumericColumn(x, np.zeros(n, bool)),
    ...             "y": NumericColumn(y, np.zeros(n, bool))}
    >>> test = PCADrift(alpha=1e-6, columns=["x", "y"])
    >>> test.update_many(events(5000, 0.8))
    >>> test.end_reference()
    >>> test.update_many(events(2000, -0.8))
    >>> result = test.end_window()
    >>> result.drift
    True
    >>> result.explanation.split("; ")[-1]
    'rank correlation of x and y 0.79 → −0.80'

    """

    name: ClassVar[str] = "pca_drift"
    STATE_VERSION: ClassVar[int] = 2
    config_keys: ClassVar[tuple[str, ...]] = (
        "alpha", "columns", "reference_size", "variance_kept", "min_increase",
        "critical_increase", "scored")
    state_keys: ClassVar[tuple[str, ...]] = (
        "reference_ready", "drift", "buffer", "buffer_used", "reference_events", "knots",
        "scores", "components", "explained", "residual", "hotelling", "reference_correlation",
        "spe_mean", "spe_var", "t2_mean", "t2_var", "held_out_events", "events", "sums",
        "products",
    )

    def __init__(
        self,
        alpha: float,
        columns: list[str],
        reference_size: int = 5000,
        variance_kept: float = 0.9,
        min_increase: float = 0.25,
        critical_increase: float = 1.0,
        scored: bool = False,
    ) -> None:
        require(isinstance(columns, list) and 2 <= len(columns) <= MAX_COLUMNS
                and all(isinstance(name, str) for name in columns)
                and len(set(columns)) == len(columns),
                "columns", f"a list of 2 to {MAX_COLUMNS} distinct feature names", columns)
        require(reference_size >= MIN_EVENTS, "reference_size", f"an integer >= {MIN_EVENTS}",
                reference_size)
        require(0.0 < variance_kept < 1.0, "variance_kept", "a share in (0, 1)", variance_kept)
        require(min_increase >= 0.0, "min_increase", "a number >= 0", min_increase)
        require(critical_increase >= min_increase, "critical_increase",
                f"a number >= min_increase ({min_increase})", critical_increase)
        self.columns = list(columns)
        self.reference_size = reference_size
        self.variance_kept = variance_kept
        self.min_increase = min_increase
        self.critical_increase = critical_increase
        self.scored = scored
        super().__init__(alpha)

    def _reset(self) -> None:
        d = len(self.columns)
        self._reference_ready = False
        self._drift = False
        # Feature-major, like every array here: one contiguous row per feature.
        self._buffer: Array = np.empty((d, self.reference_size), dtype=np.float64)
        self._buffer_used = 0
        self._reference_events = 0
        self._knots: list[Array] = []
        self._scores: list[Array] = []
        self._components = 0
        self._explained = 0.0
        self._residual: Array = np.zeros((d, d), dtype=np.float64)
        self._hotelling: Array = np.zeros((d, d), dtype=np.float64)
        self._reference_correlation: Array = np.zeros((d, d), dtype=np.float64)
        self._spe_mean = 0.0
        self._spe_var = 0.0
        self._t2_mean = 0.0
        self._t2_var = 0.0
        self._held_out_events = 0
        self._events = 0
        self._sums: Array = np.zeros(d, dtype=np.float64)
        self._products: Array = np.zeros((d, d), dtype=np.float64)

    def update_many(self, segment: NumericBlock | Segment, scores: Ints | None = None) -> None:
        """Add the complete events of a multi-column segment to the reference or window.

        ``scores``: with ``scored``, the normal scores (``SCALE`` units) of the
        segment after the reference, a row per feature of the block.
        """
        block = self._as_block(segment)
        if block is None or block.events == 0:
            return
        complete = ~block.missing.any(axis=0) if block.any_missing else None
        n = block.events if complete is None else int(np.count_nonzero(complete))
        if n == 0:
            return
        if not self._reference_ready:
            values = block.values if complete is None else block.values[:, complete]
            take = min(n, self.reference_size - self._buffer_used)
            self._buffer[:, self._buffer_used:self._buffer_used + take] = values[:, :take]
            self._buffer_used += take
            return
        self._events += n
        if self._components == 0:
            return
        z = self._given_scores(segment, scores) if self.scored else self._ranked_scores(block)
        if complete is not None:
            z = z[:, complete]
        self._sums += z.sum(axis=1)
        self._products += z @ z.T

    def end_reference(self, scorer: Callable[[Array], Ints] | None = None) -> None:
        """Fit the PCA and calibrate its error on the buffered events; free the buffer.

        ``scorer``: with ``scored``, the function giving the normal scores
        (``SCALE`` units) of the reference values, a row per feature.
        """
        if self.scored and scorer is None:
            raise ConfigurationError("scorer: expected the function scoring the reference "
                                     "(the test was built with scored=True)")
        values = self._buffer[:, :self._buffer_used]
        self._buffer = np.empty((len(self.columns), 0), dtype=np.float64)
        self._buffer_used = 0
        self._reference_ready = True
        self._reference_events = n = int(values.shape[1])
        if n < min_reference(len(self.columns)):
            return
        if scorer is not None and self.scored:
            z = grid_scores(scorer(values))
            active = np.flatnonzero(z.min(axis=1) < z.max(axis=1))
        else:
            for feature in values:
                knots, scores = score_table(feature)
                self._knots.append(knots)
                self._scores.append(scores)
            z = self._normal_scores(values)
            active = np.flatnonzero([knots.size > 1 for knots in self._knots])
        self._reference_correlation = correlation(n, z.sum(axis=1), z @ z.T)
        if active.size < 2:
            return
        self._components, self._explained, self._residual, self._hotelling = fit_components(
            z @ z.T / n, active, self.variance_kept, None)
        # Each fold judged by a PCA fitted without it, as a window is judged by the reference's.
        fold = np.arange(n) % _FOLDS
        spe, t2 = [], []
        for k in range(_FOLDS):
            fit, held_out = z[:, fold != k], z[:, fold == k]
            _, _, residual, hotelling = fit_components(fit @ fit.T / fit.shape[1], active,
                                             self.variance_kept, self._components)
            spe.append(np.einsum("in,ij,jn->n", held_out, residual, held_out))
            t2.append(np.einsum("in,ij,jn->n", held_out, hotelling, held_out))
        self._spe_mean, self._spe_var = moments(np.concatenate(spe))
        self._t2_mean, self._t2_var = moments(np.concatenate(t2))
        self._held_out_events = n

    def end_window(self) -> TestResult:
        """Test the window's reconstruction error against the reference; reset the window."""
        result = self._evaluate()
        self._drift = result.drift
        d = len(self.columns)
        self._events = 0
        self._sums = np.zeros(d, dtype=np.float64)
        self._products = np.zeros((d, d), dtype=np.float64)
        return result

    def _as_block(self, segment: NumericBlock | Segment) -> NumericBlock | None:
        """The segment's values of this test's features (None: none of them is given)."""
        if isinstance(segment, NumericBlock):
            return segment.select(self.columns)
        present = [name for name in self.columns if name in segment]
        if not present:
            return None
        # A feature absent from the segment is missing from all of its events; from_columns
        # refuses a column that is not numeric or not of the first one's length.
        return NumericBlock.from_columns(segment, self.columns, len(segment[present[0]].values))

    def _given_scores(self, segment: NumericBlock | Segment, scores: Ints | None) -> Array:
        """The owner's scores of this test's features, on the grid (see ``scored``)."""
        if not isinstance(segment, NumericBlock) or scores is None \
                or scores.shape != segment.values.shape:
            raise ConfigurationError("scores: expected the normal scores of the segment's "
                                     "block, one row per feature (the test was built with "
                                     "scored=True)")
        if tuple(self.columns) != segment.names:
            scores = scores[segment.rows(self.columns)]
        return grid_scores(scores)

    def _ranked_scores(self, block: NumericBlock) -> Array:
        """Normal scores of every event (as :meth:`_normal_scores`), one row per feature.

        Computed in each feature's ascending order, where np.interp's search from the
        previous value always hits (a test fed its scores by its owner skips this).
        """
        ranked = block.ranked
        ordered = np.empty_like(ranked.ordered)
        for j, (knots, scores) in enumerate(zip(self._knots, self._scores, strict=True)):
            ordered[j] = np.interp(ranked.ordered[j], knots, scores)
        z = np.empty_like(ordered)
        # One flat scatter back to arrival order (put_along_axis is several times slower).
        z.ravel()[block.positions] = ordered
        return on_grid(z)

    def _normal_scores(self, values: Array) -> Array:
        z = np.empty_like(values)
        for j, (knots, scores) in enumerate(zip(self._knots, self._scores, strict=True)):
            z[j] = np.interp(values[j], knots, scores)
        return on_grid(z)

    def _evaluate(self) -> TestResult:
        n = self._events
        reference = self._reference_summary()
        if self._components == 0 or n < MIN_EVENTS:
            needed = min_reference(len(self.columns))
            if self._reference_events < needed:
                reason = (f"the reference has {self._reference_events} complete events "
                          f"(need {needed})")
            elif self._components == 0:
                reason = f"fewer than 2 of the {len(self.columns)} features vary in the reference"
            else:
                reason = f"{n} complete events in the window (need {MIN_EVENTS})"
            return TestResult(
                detector="pca_reconstruction", drift=False, statistic=0.0, threshold=math.inf,
                p_value=None, effect_size=0.0, severity=WARNING, window_events=n,
                explanation=f"not tested: {reason}", reference=reference)
        checks = [
            self._check("pca_reconstruction", "reconstruction error", self._residual,
                        self._spe_mean, self._spe_var),
            self._check("pca_hotelling", "Hotelling T²", self._hotelling, self._t2_mean,
                        self._t2_var),
        ]
        # The check that speaks for the window: a drifting one first, then the most extreme.
        checks.sort(key=lambda check: (not check.drift, -check.mean / check.threshold))
        lead = checks[0]
        # Arrays here are replaced, never changed in place, by the next window or reference.
        sums, products, components = self._sums, self._products, self._components
        reference_correlation = self._reference_correlation

        def explain() -> str:
            text = "; ".join(
                f"{check.label} {check.expected:.3g} → {check.mean:.3g} "
                f"(×{check.mean / check.expected:.2f}, threshold {check.threshold:.3g})"
                for check in checks)
            return (f"{text}; {components} of {len(self.columns)} principal components kept; "
                    + self._explain_correlations(n, sums, products, reference_correlation))

        return TestResult(
            detector=lead.detector, drift=lead.drift, statistic=lead.mean,
            threshold=lead.threshold, p_value=lead.p_value, effect_size=lead.effect,
            severity=CRITICAL if lead.effect >= self.critical_increase else WARNING,
            window_events=n, explanation=explain, reference=reference)

    def _check(self, detector: str, label: str, form: Array, null_mean: float,
               null_var: float) -> Check:
        """One quadratic-form statistic of the window against its held-out reference values."""
        n = self._events
        total = float(np.sum(form * self._products))  # tr(M Σzzᵀ); both are symmetric
        expected = max(null_mean, TINY)
        # Per-event variance, widened by the noise of the reference's mean and components.
        variance = max(null_var, TINY) * (1.0 + _REFERENCE_NOISE * n / self._held_out_events)
        df = 2.0 * n * expected * expected / variance
        if df <= EXACT_DF:
            df = float(max(1, math.floor(df)))  # fewer df, same mean: a wider, safer null
        scale = n * expected / df
        threshold = scale * chi2_quantile(df, self.alpha / 2.0) / n
        mean = total / n
        effect = mean / expected - 1.0
        return Check(detector, label, mean, expected, threshold,
                      partial(chi2_survival, total / scale, df), effect,
                      mean > threshold and effect >= self.min_increase)

    def _explain_correlations(self, n: int, sums: Array, products: Array,
                              reference: Array) -> str:
        window = correlation(n, sums, products)
        defined = (reference.diagonal() > 0) & (window.diagonal() > 0)
        first, second = pairs(len(self.columns))
        both = defined[first] & defined[second]
        first, second = first[both], second[both]
        if not first.size:
            return "no pair of features varies in both the reference and the window"
        change = np.abs(window[first, second] - reference[first, second])
        # The largest changes first; a stable sort keeps equal ones in (i, j) order.
        top = np.argsort(-change, kind="stable")[:_PAIRS_SHOWN].tolist()
        shown = [k for k in top if change[k] >= _NOTABLE_CORRELATION_CHANGE] or top[:1]
        parts = [f"{self.columns[first[k]]} and {self.columns[second[k]]} "
                 f"{signed(reference[first[k], second[k]])} → "
                 f"{signed(window[first[k], second[k]])}" for k in shown]
        return "rank correlation of " + ", of ".join(parts)

    def _reference_summary(self) -> dict[str, float]:
        return {"events": self._reference_events, "features": len(self.columns),
                "components": int(self._components), "explained_variance": self._explained,
                "reconstruction_error": self._spe_mean, "hotelling_t2": self._t2_mean}

    def _restore(self, key: str, value: Any) -> Any:
        d = len(self.columns)
        if key == "buffer":
            values = np.asarray(value, dtype=np.float64).reshape(d, -1)
            if self._reference_ready:
                return np.empty((d, 0), dtype=np.float64)
            full = np.empty((d, self.reference_size), dtype=np.float64)
            full[:, :values.shape[1]] = values
            return full
        if key in ("knots", "scores"):
            return [np.asarray(table, dtype=np.float64) for table in value]
        if key == "sums":
            return np.asarray(value, dtype=np.float64).reshape(d)
        if key in ("residual", "hotelling", "reference_correlation", "products"):
            return np.asarray(value, dtype=np.float64).reshape(d, d)
        return value

    def to_state(self) -> dict[str, Any]:
        """Versioned plain-dict state; only the used part of the reference buffer is kept."""
        state = super().to_state()
        state["state"]["buffer"] = self._buffer[:, :self._buffer_used].tolist()
        state["state"]["knots"] = [knots.tolist() for knots in self._knots]
        state["state"]["scores"] = [scores.tolist() for scores in self._scores]
        return state
