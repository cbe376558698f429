"""Drift test for one categorical feature: frequencies, unseen categories, cardinality.

Three questions per window, each at level ``alpha / 3``:

* did the category shares change? A chi-square homogeneity test over the
  reference's frequent categories (plus one "other" bin), gated by a PSI floor;
* do categories never seen in the reference appear more often than the
  reference itself predicts? The Good–Turing estimate (share of categories
  seen once) is the expected rate of novelties; a one-sided binomial test of
  the window's novelties against the reference's singletons (conditional on
  their sum, so the estimate's own noise counts), gated by ``min_new_rate``,
  decides;
* did the number of distinct categories grow? The window's distinct count is
  compared with what a sample of its size from the reference would show
  (rarefaction of the reference tally, plus the Good–Turing allowance for
  novelties), gated by ``min_cardinality_ratio``. This catches a feature
  turning into free text or identifiers even when each new value is rare.

The share test's explanation also quotes the Jensen–Shannon distance.
"""

from __future__ import annotations

import math
from functools import partial
from typing import Any, ClassVar

import numpy as np
from numpy.typing import NDArray

from detectors import stats
from detectors.base import CRITICAL, WARNING, TestResult, WindowedTest
from detectors.batch import CategoricalColumn
from detectors.errors import require

_MIN_EVENTS = 50
_MIN_BIN_COUNT = 5
_UNSEEN_EXAMPLES = 16
_MIN_EXTRA_CATEGORIES = 5


class CategoricalDrift(WindowedTest[CategoricalColumn]):
    """Chi-square share test, new-category rate test and cardinality-growth test.

    Parameters
    ----------
    alpha
        False-alarm probability of one window's test.
    max_categories
        Frequent reference categories tested individually; the rest share one bin.
    max_known
        Distinct reference categories remembered for the unseen-category test.
    min_psi
        Smallest PSI of the category shares worth an alert.
    min_new_rate
        Smallest share of unseen categories in a window worth an alert.
    min_cardinality_ratio
        Smallest ratio of the window's distinct categories to the expected
        number worth an alert.

    Examples
    --------
    >>> test = CategoricalDrift(alpha=1e-6)
    >>> test.update_many(CategoricalColumn(["a", "b"] * 2500))
    >>> test.end_reference()
    >>> test.update_many(CategoricalColumn(["a", "b", "zz", "zz"] * 500))
    >>> result = test.end_window()
    >>> result.drift, result.detector
    (True, 'new_category')

    """

    name: ClassVar[str] = "categorical_drift"
    config_keys: ClassVar[tuple[str, ...]] = (
        "alpha", "max_categories", "max_known", "min_psi", "min_new_rate", "critical_psi",
        "min_cardinality_ratio")
    state_keys: ClassVar[tuple[str, ...]] = (
        "reference_ready", "drift", "reference_tally", "vocabulary", "reference_counts",
        "unseen_rate", "reference_events", "counts", "events", "unseen", "unseen_examples",
        "distinct",
    )

    def __init__(
        self,
        alpha: float,
        max_categories: int = 64,
        max_known: int = 10_000,
        min_psi: float = 0.05,
        min_new_rate: float = 0.01,
        critical_psi: float = 0.25,
        min_cardinality_ratio: float = 1.5,
    ) -> None:
        require(max_categories >= 1, "max_categories", "an integer >= 1", max_categories)
        require(max_known >= max_categories, "max_known", f"an integer >= max_categories "
                f"({max_categories})", max_known)
        require(min_psi >= 0.0, "min_psi", "a number >= 0", min_psi)
        require(0.0 <= min_new_rate <= 1.0, "min_new_rate", "a share in [0, 1]", min_new_rate)
        require(critical_psi >= min_psi, "critical_psi", f"a number >= min_psi ({min_psi})",
                critical_psi)
        require(min_cardinality_ratio >= 1.0, "min_cardinality_ratio", "a number >= 1",
                min_cardinality_ratio)
        self.min_cardinality_ratio = min_cardinality_ratio
        self.max_categories = max_categories
        self.max_known = max_known
        self.min_psi = min_psi
        self.min_new_rate = min_new_rate
        self.critical_psi = critical_psi
        super().__init__(alpha)

    def _reset(self) -> None:
        self._reference_ready = False
        self._drift = False
        self._reference_tally: dict[str, int] = {}
        self._vocabulary: dict[str, int] = {}
        self._reference_counts: NDArray[np.float64] = np.empty(0, dtype=np.float64)
        self._unseen_rate = 0.0
        self._reference_events = 0
        self._counts: NDArray[np.float64] = np.empty(0, dtype=np.float64)
        self._events = 0
        self._unseen = 0
        self._unseen_examples: dict[str, int] = {}
        # Distinct categories of the window (at most max_known are remembered).
        self._distinct: dict[str, None] = {}
        # Derived from the reference tally for the last window size; not state.
        self._expected_distinct: tuple[tuple[int, int, float],
                                       tuple[float, float, float]] | None = None

    def update_many(self, column: CategoricalColumn) -> None:
        """Add a segment's categories (``None`` = missing, skipped)."""
        # The column counts its values once (a C-level pass, shared with the missing-value
        # check); the Python loops below run per distinct value.
        tally = column.tally
        present = len(column.values) - tally.get(None, 0)
        if not self._reference_ready:
            reference = self._reference_tally
            for value, count in tally.items():
                if value is not None and (value in reference or len(reference) < self.max_known):
                    reference[value] = reference.get(value, 0) + count
            self._reference_events += present
            return
        if not present:
            return
        other = len(self._vocabulary)
        vocabulary = self._vocabulary
        known = self._reference_tally
        examples = self._unseen_examples
        counts = self._counts
        distinct = self._distinct
        room = len(distinct) < self.max_known
        for value, count in tally.items():
            if value is None:
                continue
            counts[vocabulary.get(value, other)] += count
            if room and value not in distinct:
                distinct[value] = None
                room = len(distinct) < self.max_known
            if value not in known:
                self._unseen += count
                if value in examples or len(examples) < _UNSEEN_EXAMPLES:
                    examples[value] = examples.get(value, 0) + count
        self._events += present

    def end_reference(self) -> None:
        """Fix the tested vocabulary and the expected rate of unseen categories."""
        frequent = sorted(self._reference_tally.items(), key=lambda kv: (-kv[1], kv[0]))
        frequent = [kv for kv in frequent if kv[1] >= _MIN_BIN_COUNT][: self.max_categories]
        self._vocabulary = {value: i for i, (value, _) in enumerate(frequent)}
        counts = np.zeros(len(self._vocabulary) + 1, dtype=np.float64)
        for value, count in self._reference_tally.items():
            counts[self._vocabulary.get(value, len(self._vocabulary))] += count
        self._reference_counts = counts
        singletons = sum(1 for count in self._reference_tally.values() if count == 1)
        self._unseen_rate = (singletons + 1) / (self._reference_events + 1)
        self._counts = np.zeros(counts.size, dtype=np.float64)
        self._reference_ready = True

    def end_window(self) -> TestResult:
        """Test the window against the reference; reset the window."""
        result = self._evaluate()
        self._drift = result.drift
        self._counts = np.zeros(self._reference_counts.size, dtype=np.float64)
        self._events = 0
        self._unseen = 0
        self._unseen_examples = {}
        self._distinct = {}
        return result

    def _evaluate(self) -> TestResult:
        n_ref = self._reference_events
        n_win = self._events
        summary = {"events": int(n_ref), "categories": len(self._reference_tally),
                   "unseen_rate": self._unseen_rate}
        if n_ref < _MIN_EVENTS or n_win < _MIN_EVENTS:
            return TestResult(
                detector="chi2", drift=False, statistic=0.0, threshold=math.inf, p_value=None,
                effect_size=0.0, severity=WARNING, window_events=n_win,
                explanation=f"not tested: {n_ref} reference and {n_win} window values "
                f"(need {_MIN_EVENTS} of each)", reference=summary)
        alpha_each = self.alpha / 3.0
        new_rate = self._unseen / n_win
        # Each reference singleton is a draw unseen by the other n - 1 draws: the reference's
        # own count of novelties. Under no drift the window's novelties and the singletons
        # (+1, as in the rate) are two counts with one rate, so given their sum the window's
        # share is binomial. Testing against the Good–Turing rate as if it were exact ignores
        # its noise and raised hundreds of times more false alarms than ``alpha``.
        singletons = round(self._unseen_rate * (n_ref + 1))
        new_p = stats.binomial_survival(
            self._unseen, self._unseen + singletons, n_win / (n_win + n_ref))
        if new_p < alpha_each and new_rate >= self.min_new_rate:
            examples = ", ".join(f"{value!r} ({count})" for value, count in sorted(
                self._unseen_examples.items(), key=lambda kv: -kv[1])[:3])
            return TestResult(
                detector="new_category", drift=True, statistic=new_rate,
                threshold=self.min_new_rate, p_value=new_p, effect_size=new_rate,
                severity=CRITICAL if new_rate >= 0.1 else WARNING, window_events=n_win,
                explanation=f"{new_rate:.1%} of the window has categories never seen in the "
                f"reference (expected ≤ {self._unseen_rate:.2%}): {examples}",
                reference=summary,
                distribution=self._distribution())
        # New categories and more distinct ones say more than "the (other) bin grew".
        growth = self._cardinality(alpha_each, summary)
        if growth is not None:
            return growth
        chi2, df = stats.chi2_homogeneity(self._reference_counts, self._counts)
        threshold = stats.chi2_upper_quantile(df, alpha_each)
        effect = stats.psi(self._reference_counts, self._counts)
        shares_drift = chi2 > threshold and effect >= self.min_psi
        return TestResult(
            detector="chi2", drift=shares_drift, statistic=chi2,
            threshold=threshold, p_value=partial(stats.chi2_survival, chi2, df), effect_size=effect,
            severity=CRITICAL if effect >= self.critical_psi else WARNING, window_events=n_win,
            # The vocabulary and both count arrays are replaced, never changed in place, by
            # the next window or reference: the text can wait until someone reads it.
            explanation=partial(_explain_shares, self._vocabulary, self._reference_counts,
                                self._counts, effect, chi2 > threshold),
            reference=summary, distribution=self._distribution())

    def _cardinality(self, alpha: float, summary: dict[str, float]) -> TestResult | None:
        """A drift result if the window has far more distinct categories than expected."""
        n_win, n_ref = self._events, self._reference_events
        observed = len(self._distinct)
        expected, variance, threshold = self._rarefaction(n_win, alpha)
        z = (observed - expected) / math.sqrt(max(variance, 1.0))
        ratio = observed / max(expected, 1.0)
        if not (z > threshold and ratio >= self.min_cardinality_ratio
                and observed - expected >= _MIN_EXTRA_CATEGORIES):
            return None
        return TestResult(
            detector="cardinality", drift=True, statistic=z, threshold=threshold,
            p_value=0.5 * math.erfc(z / math.sqrt(2.0)), effect_size=ratio,
            severity=CRITICAL if ratio >= 3.0 else WARNING, window_events=n_win,
            explanation=f"{observed} distinct categories in {n_win} values, {ratio:.1f}× the "
            f"≈{expected:.0f} a sample of that size from the reference would show "
            f"(reference: {len(self._reference_tally)} categories in {n_ref} values)",
            reference=summary, distribution=self._distribution())

    def _distribution(self) -> partial[dict[str, Any]]:
        """The shares of the reference's frequent categories (and the rest), on demand."""
        # Like the explanation: the arrays are replaced, never changed in place.
        return partial(_distribution, self._vocabulary, self._reference_counts, self._counts,
                       self._unseen_examples)

    def _rarefaction(self, n_win: int, alpha: float) -> tuple[float, float, float]:
        """Expected distinct categories in ``n_win`` draws, their variance, and the z threshold.

        Rarefaction of the reference tally, plus the Good–Turing allowance for
        novelties. It depends on the window's size only, so the last one is kept.
        """
        key = (n_win, len(self._reference_tally), alpha)
        if self._expected_distinct is not None and self._expected_distinct[0] == key:
            return self._expected_distinct[1]
        shares = np.fromiter(self._reference_tally.values(),
                             dtype=np.float64) / self._reference_events
        seen = -np.expm1(n_win * np.log1p(-np.minimum(shares, 1.0 - 1e-12)))
        novel = n_win * self._unseen_rate
        expected = (float(seen.sum()) + novel, float(np.dot(seen, 1.0 - seen)) + novel,
                    stats.normal_upper_quantile(alpha))
        self._expected_distinct = (key, expected)
        return expected

    def _restore(self, key: str, value: Any) -> Any:
        if key in ("reference_counts", "counts"):
            return np.asarray(value, dtype=np.float64)
        return value


def _distribution(vocabulary: dict[str, int], reference_counts: NDArray[np.float64],
                  counts: NDArray[np.float64], unseen: dict[str, int]) -> dict[str, Any]:
    """Counts per category: the reference's frequent ones, then ``(other)``.

    ``(other)`` holds the window's never-seen categories too; ``new`` names some of them.
    """
    return {"type": "categorical", "categories": [*vocabulary, "(other)"],
            "reference": reference_counts.tolist(), "window": counts.tolist(),
            "new": dict(unseen)}


def _explain_shares(vocabulary: dict[str, int], reference_counts: NDArray[np.float64],
                    counts: NDArray[np.float64], effect: float, significant: bool) -> str:
    names = [*vocabulary, "(other)"]
    # A handful of bins: plain Python beats numpy's per-call overhead here.
    reference, window = reference_counts.tolist(), counts.tolist()
    ref_total, win_total = max(sum(reference), 1.0), max(sum(window), 1.0)
    ref_share = [count / ref_total for count in reference]
    win_share = [count / win_total for count in window]
    moved = max(range(len(names)), key=lambda i: abs(win_share[i] - ref_share[i]))
    text = (f"share of {names[moved]!r} {ref_share[moved]:.1%} → {win_share[moved]:.1%}; "
            f"PSI {effect:.3f}")
    if significant:  # a distance worth quoting; not computed for every quiet window
        js = stats.jensen_shannon(reference_counts, counts)
        text += f", Jensen–Shannon {js:.3f}"
    return text
