"""Binned two-sample drift test for numeric features.

The reference of each feature is summarised by a histogram on its own
quantiles (p1, p5, p10, …, p95, p99), so memory is fixed and a window costs
one ``searchsorted`` of the edges in the feature's sorted values. A window
drifts when the binned Kolmogorov–Smirnov or the chi-square homogeneity test
rejects at level ``alpha`` *and* the population stability index reaches
``min_psi``: with large windows, significance alone would flag shifts too
small to matter. A significant window's explanation also quotes the
Wasserstein-1 distance between the two histograms (in reference IQRs) and
their Jensen–Shannon distance.

One test watches every feature of a :class:`~detectors.batch.NumericBlock`:
the window histograms are one array (a row per feature, padded to the widest),
updated with one call per feature and a few for all of them.
"""

from __future__ import annotations

import math
from functools import partial
from typing import Any, ClassVar, NamedTuple

import numpy as np
from numpy.typing import NDArray

from detectors import stats
from detectors.base import CRITICAL, WARNING, FeatureTest, TestResult
from detectors.batch import NumericBlock, NumericColumn
from detectors.buffers import buffer_rows, collect, empty_buffer, restore_buffer
from detectors.drift import histogram_rows
from detectors.drift.two_valued import describe_shares, share_of_high, two_values
from detectors.errors import ConfigurationError, require

# Finer bins in the tails, where drift in spread shows first.
_QUANTILES = np.array([0.01, 0.05] + [i / 20 for i in range(2, 19)] + [0.95, 0.99])
_MIN_EVENTS = 50
Floats = NDArray[np.float64]


class _Window(NamedTuple):
    """One feature's window, as plain numbers: sizes, statistics and moments."""

    n_ref: int
    n_win: int
    tested: bool
    ks: float
    ks_threshold: float
    chi2: float
    chi2_threshold: float
    df: int
    by_ks: bool
    """Whether the KS test (rather than chi-square) is nearer to rejecting."""
    psi: float
    mean: float
    sd: float
    first: float
    """Share of the window in the first bin (below the reference p01)."""
    last: float
    """Share of the window in the last bin (from the reference p99 on)."""


class NumericDrift(FeatureTest[NumericColumn | NumericBlock]):
    """Windowed binned KS + chi-square test with a PSI effect-size floor, per feature.

    Parameters
    ----------
    alpha
        False-alarm probability of one window's test of one feature.
    reference_size
        Capacity of each feature's reference buffer (values); extra reference values
        are ignored.
    min_psi
        Smallest population stability index worth an alert.
    critical_psi
        PSI from which a drift is ``critical`` rather than ``warning``.
    columns
        The features watched (see :class:`~detectors.base.FeatureTest`); ``None``
        for one feature fed as a :class:`~detectors.batch.NumericColumn`.

    Examples
    --------
    >>> rng = np.random.default_rng(1)
    >>> test = NumericDrift(alpha=1e-6, reference_size=5000)
    >>> test.update_many(NumericColumn(rng.normal(size=5000), np.zeros(5000, bool)))
    >>> test.end_reference()
    >>> test.update_many(NumericColumn(rng.normal(1.0, 1.0, 2000), np.zeros(2000, bool)))
    >>> test.end_window().drift
    True

    """

    name: ClassVar[str] = "numeric_drift"
    STATE_VERSION: ClassVar[int] = 2
    config_keys: ClassVar[tuple[str, ...]] = (
        "alpha", "reference_size", "min_psi", "critical_psi", "columns")
    state_keys: ClassVar[tuple[str, ...]] = (
        "reference_ready", "drift", "buffer", "buffer_used", "edges", "reference_counts",
        "reference_summary", "counts", "events", "total", "total_sq",
    )

    def __init__(
        self,
        alpha: float,
        reference_size: int = 5000,
        min_psi: float = 0.05,
        critical_psi: float = 0.25,
        columns: list[str] | None = None,
    ) -> None:
        require(reference_size >= _MIN_EVENTS, "reference_size", f"an integer >= {_MIN_EVENTS}",
                reference_size)
        require(min_psi >= 0.0, "min_psi", "a number >= 0", min_psi)
        require(critical_psi >= min_psi, "critical_psi", f"a number >= min_psi ({min_psi})",
                critical_psi)
        self.reference_size = reference_size
        self.min_psi = min_psi
        self.critical_psi = critical_psi
        super().__init__(alpha, columns)

    def _reset(self) -> None:
        d = self.width
        self._reference_ready = False
        self._drift = False
        self._buffer = empty_buffer(d, self.reference_size)
        self._buffer_used = np.zeros(d, dtype=np.int64)
        # Per feature; a feature with too small a reference has no edges and is not tested.
        self._edges: list[Floats] = []
        self._reference_summary: list[dict[str, float]] = [{} for _ in range(d)]
        # Histograms, a row per feature, padded with empty bins to the widest feature's.
        self._reference_counts: Floats = np.zeros((d, 1), dtype=np.float64)
        self._counts: Floats = np.zeros((d, 1), dtype=np.float64)
        self._events = np.zeros(d, dtype=np.int64)
        self._total = np.zeros(d, dtype=np.float64)
        self._total_sq = np.zeros(d, dtype=np.float64)
        # The edges padded with inf, a row per feature, and each feature's first and last
        # edge (derived from the edges, not state).
        self._padded: Floats = np.empty((d, 0), dtype=np.float64)
        self._ends: list[tuple[float, float]] = []
        self._reference = histogram_rows.reference(self._reference_counts,
                                                   np.zeros(d, dtype=np.int64))

    def update_many(self, segment: NumericColumn | NumericBlock) -> None:
        """Add the non-missing values of a segment to the references or windows."""
        block = self._block(segment)
        if block.events == 0:
            return
        if not self._reference_ready:
            self._buffer = collect(self._buffer, self._buffer_used, block, self.reference_size)
            return
        present = block.present
        if not present.any():
            return
        # Locating the ~23 edges in the sorted values beats locating every value among the
        # edges: a binary search per value mispredicts. Padding edges (inf) locate past the
        # present values, so padding bins stay empty.
        d = self.width
        cumulative = np.zeros((d, self._padded.shape[1] + 2), dtype=np.intp)
        cumulative[:, -1] = present
        for feature, (ordered, edges) in enumerate(zip(block.ordered, self._padded,
                                                       strict=True)):
            cumulative[feature, 1:-1] = ordered.searchsorted(edges)
        self._add(block, cumulative[:, 1:] - cumulative[:, :-1])

    @property
    def edges(self) -> list[Floats]:
        """Each feature's histogram edges (empty for a feature left untested)."""
        return list(self._edges)

    def add_counts(self, block: NumericBlock, counts: NDArray[np.float64]) -> None:
        """Add a segment whose histogram counts were found elsewhere.

        ``counts`` has a row per feature, as wide as the widest histogram: bin
        ``j`` holds the present values with ``j`` of the feature's :attr:`edges`
        at or below them (see :class:`~detectors.drift.row_bins.RowBins`). Only
        once the reference is closed.
        """
        if not self._reference_ready:
            raise ConfigurationError("add_counts: the reference is not closed yet")
        require(counts.shape == self._counts.shape, "counts", f"shape {self._counts.shape}",
                counts.shape)
        if block.events:
            self._add(block, counts)

    def _add(self, block: NumericBlock, counts: NDArray[Any]) -> None:
        """Add a segment's histogram counts and moments."""
        self._counts += counts
        self._events += block.present
        values = np.where(block.missing, 0.0, block.values) if block.any_missing else block.values
        self._total += values.sum(axis=1)
        self._total_sq += np.einsum("ij,ij->i", values, values)

    def end_reference(self) -> None:
        """Build each feature's reference histogram from its buffered values; free the buffer."""
        d = self.width
        counts: list[Floats] = []
        for feature in range(d):
            reference = self._buffer[feature, :int(self._buffer_used[feature])]
            edges = np.empty(0, dtype=np.float64)
            histogram = np.empty(0, dtype=np.float64)
            if reference.size >= _MIN_EVENTS:
                edges = np.unique(np.quantile(reference, _QUANTILES))
                bins = np.searchsorted(edges, reference, side="right")
                histogram = np.bincount(bins, minlength=edges.size + 1).astype(np.float64)
                self._reference_summary[feature] = _summary(reference)
            self._edges.append(edges)
            counts.append(histogram)
        width = max(edges.size for edges in self._edges) + 1
        self._reference_counts = np.zeros((d, width), dtype=np.float64)
        for feature, histogram in enumerate(counts):
            self._reference_counts[feature, :histogram.size] = histogram
        self._counts = np.zeros((d, width), dtype=np.float64)
        self._derive()
        self._buffer = empty_buffer(d, 0)
        self._buffer_used[:] = 0
        self._reference_ready = True

    def _derive(self) -> None:
        """Pad the edges into one array, note each feature's first and last edge and bins."""
        width = max((edges.size for edges in self._edges), default=0)
        self._padded = np.full((self.width, width), np.inf, dtype=np.float64)
        bins = np.zeros(self.width, dtype=np.int64)  # no edges (yet): no real bins
        for feature, edges in enumerate(self._edges):
            self._padded[feature, :edges.size] = edges
            bins[feature] = edges.size + 1 if edges.size else 0
        # First and last edge per feature (NaN without edges: equal to nothing).
        self._ends = [(float(edges[0]), float(edges[-1])) if edges.size else (math.nan, math.nan)
                      for edges in self._edges]
        self._reference = histogram_rows.reference(self._reference_counts, bins)

    def _close_windows(self) -> list[TestResult]:
        """Compare each feature's window with its reference; reset the windows."""
        window, bins = self._counts, self._reference.bins
        # The statistics of every feature at once; only the verdicts are built one by one.
        ks, chi2, df, effect = histogram_rows.compare_to(self._reference, window)
        n_ref = self._reference.total.astype(np.int64)
        n_win = self._events
        tested = (n_ref >= _MIN_EVENTS) & (n_win >= _MIN_EVENTS)
        n, m = np.where(tested, n_ref, 1), np.where(tested, n_win, 1)
        alpha_each = self.alpha / 2.0
        ks_threshold = math.sqrt(-0.5 * math.log(alpha_each / 2.0)) * np.sqrt((n + m) / (n * m))
        chi2_threshold = np.array([stats.chi2_upper_quantile(k, alpha_each)
                                   for k in df.tolist()])
        # The test nearer to rejecting speaks for the window.
        by_ks = ks / ks_threshold >= chi2 / chi2_threshold
        events = np.maximum(n_win, 1)
        mean = self._total / events
        sd = np.sqrt(np.maximum(self._total_sq / events - mean * mean, 0.0))
        first = window[:, 0] / events
        last = window[np.arange(self.width), np.maximum(bins - 1, 0)] / events
        results = [self._verdict(feature, _Window(*values)) for feature, values in enumerate(zip(
            n_ref.tolist(), n_win.tolist(), tested.tolist(), ks.tolist(), ks_threshold.tolist(),
            chi2.tolist(), chi2_threshold.tolist(), df.tolist(), by_ks.tolist(),
            effect.tolist(), mean.tolist(), sd.tolist(), first.tolist(), last.tolist(),
            strict=True))]
        self._counts = np.zeros_like(window)
        self._events[:] = 0
        self._total[:] = 0.0
        self._total_sq[:] = 0.0
        return results

    def _histograms(self, feature: int) -> tuple[Floats, Floats]:
        """The feature's reference and window counts, without padding bins."""
        bins = int(self._reference.bins[feature])
        return self._reference_counts[feature, :bins], self._counts[feature, :bins]

    def _verdict(self, feature: int, window: _Window) -> TestResult:
        summary = self._reference_summary[feature]
        if not window.tested:
            return TestResult(
                detector="ks", drift=False, statistic=0.0, threshold=math.inf, p_value=None,
                effect_size=0.0, severity=WARNING, window_events=window.n_win,
                explanation=f"not tested: {window.n_ref} reference and {window.n_win} window "
                f"values (need {_MIN_EVENTS} of each)",
                reference=summary,
            )
        significant = window.ks > window.ks_threshold or window.chi2 > window.chi2_threshold
        # Wasserstein and Jensen–Shannon describe a drift; not worth computing for every window.
        distances = self._distances(feature) if significant else ""
        # p-values, like explanations, are computed only if read.
        if window.by_ks:
            detector, statistic, threshold = "ks", window.ks, window.ks_threshold
            p_value = partial(stats.ks_p_value, window.ks, window.n_ref, window.n_win)
        else:
            detector, statistic, threshold = "chi2", window.chi2, window.chi2_threshold
            p_value = partial(stats.chi2_survival, window.chi2, window.df)
        effect = window.psi
        return TestResult(
            detector=detector, drift=significant and effect >= self.min_psi,
            statistic=statistic, threshold=threshold, p_value=p_value,
            effect_size=effect, severity=CRITICAL if effect >= self.critical_psi else WARNING,
            window_events=window.n_win,
            explanation=partial(_explain, summary, self._ends[feature], window, distances),
            reference=summary,
            # The arrays are replaced, never changed in place, by the next window.
            distribution=partial(_distribution, self._edges[feature], *self._histograms(feature),
                                 summary),
        )

    def _distances(self, feature: int) -> str:
        ref = self._reference_summary[feature]
        reference_counts, counts = self._histograms(feature)
        wasserstein = stats.binned_wasserstein(reference_counts, counts, self._edges[feature])
        # Normalized by the reference IQR (its sd when the IQR is zero, e.g. a rare flag).
        iqr = ref["p75"] - ref["p25"]
        scale, unit = (iqr, "IQR") if iqr > 0 else (ref["sd"], "sd")
        normalized = wasserstein / scale if scale > 0 else 0.0
        js = stats.jensen_shannon(reference_counts, counts)
        return f"; Wasserstein {normalized:.3f} reference {unit}, Jensen–Shannon {js:.3f}"

    def _restore(self, key: str, value: Any) -> Any:
        d = self.width
        if key == "buffer":
            return restore_buffer(value, self.reference_size, self._reference_ready)
        if key == "edges":
            return [np.asarray(edges, dtype=np.float64) for edges in value]
        if key in ("reference_counts", "counts"):
            return np.asarray(value, dtype=np.float64).reshape(d, -1)
        if key in ("buffer_used", "events"):
            return np.asarray(value, dtype=np.int64).reshape(d)
        if key in ("total", "total_sq"):
            return np.asarray(value, dtype=np.float64).reshape(d)
        if key == "reference_summary" and len(value) != d:
            raise ValueError(f"reference_summary: expected {d} features, got {len(value)}")
        return value

    def to_state(self) -> dict[str, Any]:
        """Versioned plain-dict state; only the used part of the reference buffer is kept."""
        state = super().to_state()
        state["state"]["buffer"] = buffer_rows(self._buffer, self._buffer_used)
        return state


def _summary(reference: Floats) -> dict[str, float]:
    p01, p25, p50, p75, p99 = np.quantile(reference, [0.01, 0.25, 0.5, 0.75, 0.99])
    return {
        "events": int(reference.size),
        "mean": float(reference.mean()),
        "sd": float(reference.std()),
        "min": float(reference.min()),
        "p01": float(p01),
        "p25": float(p25),
        "p50": float(p50),
        "p75": float(p75),
        "p99": float(p99),
        "max": float(reference.max()),
    }


def _distribution(edges: Floats, reference: Floats, window: Floats,
                  summary: dict[str, float]) -> dict[str, Any]:
    """Both histograms: bin ``j`` holds the values with ``j`` of the ``edges`` at or below them.

    The outer bins are open; ``min`` and ``max`` are the reference's extremes.
    """
    return {"type": "numeric", "edges": edges.tolist(), "reference": reference.tolist(),
            "window": window.tolist(), "min": summary["min"], "max": summary["max"]}


def _explain(ref: dict[str, float], ends: tuple[float, float], window: _Window,
             distances: str) -> str:
    if two_values(ref["mean"], ref["sd"], ref["min"], ref["max"]) and two_values(
            window.mean, window.sd, ref["min"], ref["max"]):
        # A 0/1 output (or any two-valued column): the share of one value is the story.
        low, high = ref["min"], ref["max"]
        shares = describe_shares(low, high, share_of_high(ref["mean"], low, high),
                                 share_of_high(window.mean, low, high))
        return f"{shares}; PSI {window.psi:.3f}" + distances
    low, high = ends
    # "Above p99" only means something when the reference had values above its p99
    # (not so for a 0/1 prediction, whose p99 is its maximum).
    tails = []
    if ref["p99"] < ref["max"] and high == ref["p99"]:
        tails.append((window.last, f"above the reference p99 ({ref['p99']:.4g})"))
    if ref["p01"] > ref["min"] and low == ref["p01"]:
        tails.append((window.first, f"below the reference p01 ({ref['p01']:.4g})"))
    text = (f"mean {ref['mean']:.4g} → {window.mean:.4g}, "
            f"sd {ref['sd']:.4g} → {window.sd:.4g}; ")
    if tails:
        tail_share, where = max(tails)
        text += f"{tail_share:.1%} of the window {where}; "
    return text + f"PSI {window.psi:.3f}" + distances
