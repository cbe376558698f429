"""Binned two-sample drift test for one numeric feature.

The reference is summarised by a histogram on its own quantiles (p1, p5, p10,
…, p95, p99), so memory is fixed and every window costs one ``searchsorted``.
A window drifts when the binned Kolmogorov–Smirnov or the chi-square
homogeneity test rejects at level ``alpha`` *and* the population stability
index reaches ``min_psi``: with large windows, significance alone would flag
shifts too small to matter. A significant window's explanation also quotes
the Wasserstein-1 distance between the two histograms (in reference IQRs)
and their Jensen–Shannon distance.
"""

from __future__ import annotations

import math
from typing import Any, ClassVar

import numpy as np
from numpy.typing import NDArray

from detectors import stats
from detectors.base import CRITICAL, WARNING, TestResult, WindowedTest
from detectors.batch import NumericColumn
from detectors.errors import require

# Finer bins in the tails, where drift in spread shows first.
_QUANTILES = np.array([0.01, 0.05] + [i / 20 for i in range(2, 19)] + [0.95, 0.99])
_MIN_EVENTS = 50


class NumericDrift(WindowedTest[NumericColumn]):
    """Windowed binned KS + chi-square test with a PSI effect-size floor.

    Parameters
    ----------
    alpha
        False-alarm probability of one window's test.
    reference_size
        Capacity of the reference buffer (events); extra reference events are ignored.
    min_psi
        Smallest population stability index worth an alert.
    critical_psi
        PSI from which a drift is ``critical`` rather than ``warning``.

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
    config_keys: ClassVar[tuple[str, ...]] = ("alpha", "reference_size", "min_psi", "critical_psi")
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
    ) -> None:
        require(reference_size >= _MIN_EVENTS, "reference_size", f"an integer >= {_MIN_EVENTS}",
                reference_size)
        require(min_psi >= 0.0, "min_psi", "a number >= 0", min_psi)
        require(critical_psi >= min_psi, "critical_psi", f"a number >= min_psi ({min_psi})",
                critical_psi)
        self.reference_size = reference_size
        self.min_psi = min_psi
        self.critical_psi = critical_psi
        super().__init__(alpha)

    def _reset(self) -> None:
        self._reference_ready = False
        self._drift = False
        self._buffer: NDArray[np.float64] = np.empty(self.reference_size, dtype=np.float64)
        self._buffer_used = 0
        self._edges: NDArray[np.float64] = np.empty(0, dtype=np.float64)
        self._reference_counts: NDArray[np.float64] = np.empty(0, dtype=np.float64)
        self._reference_summary: dict[str, float] = {}
        self._counts: NDArray[np.float64] = np.empty(0, dtype=np.float64)
        self._events = 0
        self._total = 0.0
        self._total_sq = 0.0

    def update_many(self, column: NumericColumn) -> None:
        """Add the non-missing values of a segment to the reference or window."""
        values = column.values[~column.missing] if column.missing.any() else column.values
        if not self._reference_ready:
            take = min(values.size, self.reference_size - self._buffer_used)
            self._buffer[self._buffer_used:self._buffer_used + take] = values[:take]
            self._buffer_used += take
            return
        if values.size == 0:
            return
        # Locating 23 edges in the sorted segment beats locating every value among the
        # edges: numpy's sort is vectorized, a binary search per value mispredicts.
        ordered = np.sort(values)
        cumulative = np.empty(self._edges.size + 2, dtype=np.intp)
        cumulative[0], cumulative[-1] = 0, values.size
        cumulative[1:-1] = np.searchsorted(ordered, self._edges, side="left")
        self._counts += cumulative[1:] - cumulative[:-1]
        self._events += int(values.size)
        self._total += float(values.sum())
        self._total_sq += float(np.dot(values, values))

    def end_reference(self) -> None:
        """Build the reference histogram from the buffered values and free the buffer."""
        reference = self._buffer[:self._buffer_used]
        if reference.size >= _MIN_EVENTS:
            self._edges = np.unique(np.quantile(reference, _QUANTILES))
            bins = np.searchsorted(self._edges, reference, side="right")
            self._reference_counts = np.bincount(bins, minlength=self._edges.size + 1).astype(
                np.float64)
            self._reference_summary = _summary(reference)
        self._counts = np.zeros(self._edges.size + 1, dtype=np.float64)
        self._buffer = np.empty(0, dtype=np.float64)
        self._buffer_used = 0
        self._reference_ready = True

    def end_window(self) -> TestResult:
        """Compare the window with the reference; reset the window."""
        result = self._evaluate()
        self._drift = result.drift
        self._counts = np.zeros(self._edges.size + 1, dtype=np.float64)
        self._events = 0
        self._total = 0.0
        self._total_sq = 0.0
        return result

    def _evaluate(self) -> TestResult:
        n_ref = int(self._reference_counts.sum())
        n_win = self._events
        if n_ref < _MIN_EVENTS or n_win < _MIN_EVENTS:
            return TestResult(
                detector="ks", drift=False, statistic=0.0, threshold=math.inf, p_value=None,
                effect_size=0.0, severity=WARNING, window_events=n_win,
                explanation=f"not tested: {n_ref} reference and {n_win} window values "
                f"(need {_MIN_EVENTS} of each)",
                reference=self._reference_summary,
            )
        alpha_each = self.alpha / 2.0
        ks = stats.binned_ks(self._reference_counts, self._counts)
        ks_threshold = stats.ks_critical_value(alpha_each, n_ref, n_win)
        chi2, df = stats.chi2_homogeneity(self._reference_counts, self._counts)
        chi2_threshold = stats.chi2_upper_quantile(df, alpha_each)
        effect = stats.psi(self._reference_counts, self._counts)
        significant = ks > ks_threshold or chi2 > chi2_threshold
        drift = significant and effect >= self.min_psi
        # Wasserstein and Jensen–Shannon describe a drift; not worth computing for every window.
        distances = self._distances() if significant else ""
        if ks / ks_threshold >= chi2 / chi2_threshold:
            detector, statistic, threshold = "ks", ks, ks_threshold
            p_value = stats.ks_p_value(ks, n_ref, n_win)
        else:
            detector, statistic, threshold = "chi2", chi2, chi2_threshold
            p_value = stats.chi2_survival(chi2, df)
        return TestResult(
            detector=detector, drift=drift, statistic=statistic, threshold=threshold,
            p_value=p_value, effect_size=effect,
            severity=CRITICAL if effect >= self.critical_psi else WARNING,
            window_events=n_win, explanation=self._explain(effect) + distances,
            reference=self._reference_summary,
        )

    def _explain(self, effect: float) -> str:
        ref = self._reference_summary
        mean = self._total / self._events
        sd = math.sqrt(max(self._total_sq / self._events - mean * mean, 0.0))
        share = self._counts / self._events
        # "Above p99" only means something when the reference had values above its p99
        # (not so for a 0/1 prediction, whose p99 is its maximum).
        tails = []
        if self._edges.size and ref["p99"] < ref["max"] and self._edges[-1] == ref["p99"]:
            tails.append((float(share[-1]), f"above the reference p99 ({ref['p99']:.4g})"))
        if self._edges.size and ref["p01"] > ref["min"] and self._edges[0] == ref["p01"]:
            tails.append((float(share[0]), f"below the reference p01 ({ref['p01']:.4g})"))
        text = f"mean {ref['mean']:.4g} → {mean:.4g}, sd {ref['sd']:.4g} → {sd:.4g}; "
        if tails:
            tail_share, where = max(tails)
            text += f"{tail_share:.1%} of the window {where}; "
        return text + f"PSI {effect:.3f}"

    def _distances(self) -> str:
        ref = self._reference_summary
        wasserstein = stats.binned_wasserstein(self._reference_counts, self._counts, self._edges)
        # Normalized by the reference IQR (its sd when the IQR is zero, e.g. a rare flag).
        iqr = ref["p75"] - ref["p25"]
        scale, unit = (iqr, "IQR") if iqr > 0 else (ref["sd"], "sd")
        normalized = wasserstein / scale if scale > 0 else 0.0
        js = stats.jensen_shannon(self._reference_counts, self._counts)
        return f"; Wasserstein {normalized:.3f} reference {unit}, Jensen–Shannon {js:.3f}"

    def _restore(self, key: str, value: Any) -> Any:
        if key in ("buffer", "edges", "reference_counts", "counts"):
            array = np.asarray(value, dtype=np.float64)
            if key == "buffer":
                full = np.empty(self.reference_size, dtype=np.float64)
                full[:array.size] = array
                return full if not self._reference_ready else array
            return array
        return value

    def to_state(self) -> dict[str, Any]:
        """Versioned plain-dict state; only the used part of the reference buffer is kept."""
        state = super().to_state()
        state["state"]["buffer"] = self._buffer[:self._buffer_used].tolist()
        return state


def _summary(reference: NDArray[np.float64]) -> dict[str, float]:
    p01, p25, p50, p75, p99 = np.quantile(reference, [0.01, 0.25, 0.5, 0.75, 0.99])
    return {
        "events": float(reference.size),
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
