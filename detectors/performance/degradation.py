"""One-sided tests of "this window is worse than the reference by more than the tolerance".

The null hypothesis is *degraded by at most the tolerance*, not *unchanged*,
so a window only alerts when the data show, at level ``alpha``, that the
metric moved past what the owner said they can live with. A stationary stream
sits ``tolerance / se`` standard errors inside the null and almost never
alerts; noise alone cannot make a drift.
"""

from __future__ import annotations

import math

from detectors import stats
from detectors.base import CRITICAL, WARNING, TestResult
from detectors.performance.metrics import Moments

# A drop (or relative rise) this many times the tolerance is critical rather than a warning.
_CRITICAL_MULTIPLE = 5.0


def _upper_p(z: float) -> float:
    return 0.5 * math.erfc(z / math.sqrt(2.0))


def accuracy_drop(reference_correct: int, reference_events: int, window_correct: int,
                  window_events: int, *, tolerance: float, alpha: float) -> TestResult:
    """Two-proportion z-test of ``accuracy(window) < accuracy(reference) - tolerance``.

    The standard error is unpooled (the two proportions differ under the null
    by the tolerance) and uses half-count smoothing, so a perfect reference
    still has a finite z.

    Examples
    --------
    >>> r = accuracy_drop(1820, 2000, 780, 1000, tolerance=0.02, alpha=1e-5)
    >>> r.drift, round(r.effect_size, 2), r.severity
    (True, 0.13, 'critical')
    >>> r.explanation
    'accuracy 0.910 → 0.780 over the last 1,000 labelled events (reference 0.910 ± 0.013 \
over 2,000 events; tolerated drop 0.02)'
    >>> accuracy_drop(1820, 2000, 900, 1000, tolerance=0.02, alpha=1e-5).drift
    False

    """
    p_ref = reference_correct / reference_events
    p_win = window_correct / window_events
    smooth_ref = (reference_correct + 0.5) / (reference_events + 1.0)
    smooth_win = (window_correct + 0.5) / (window_events + 1.0)
    se_ref = math.sqrt(smooth_ref * (1.0 - smooth_ref) / reference_events)
    se = math.sqrt(se_ref**2 + smooth_win * (1.0 - smooth_win) / window_events)
    z = (p_ref - tolerance - p_win) / se
    threshold = stats.normal_upper_quantile(alpha)
    drop = p_ref - p_win
    return TestResult(
        detector="accuracy_drop", drift=z > threshold, statistic=z, threshold=threshold,
        p_value=_upper_p(z), effect_size=drop,
        severity=CRITICAL if drop >= max(_CRITICAL_MULTIPLE * tolerance, 0.05) else WARNING,
        window_events=window_events,
        explanation=f"accuracy {p_ref:.3f} → {p_win:.3f} over the last {window_events:,} "
        f"labelled events (reference {p_ref:.3f} ± {1.96 * se_ref:.3f} over "
        f"{reference_events:,} events; tolerated drop {tolerance:g})",
        reference={"events": int(reference_events), "accuracy": p_ref})


def mean_loss_rise(metric: str, reference: Moments, window: Moments, *,
                   relative_tolerance: float, alpha: float, min_events: int = 2,
                   unit: str = "labelled events") -> TestResult:
    """Welch z-test of ``mean loss(window) > (1 + relative_tolerance) · mean loss(reference)``.

    For MAE (the mean of absolute errors) and log loss (the mean of per-event
    log losses). With fewer than ``min_events`` losses on either side the
    metric is not tested (``drift=False``, ``p_value=None``).

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(1)
    >>> reference, window = Moments(), Moments()
    >>> reference.add(np.abs(rng.normal(0.0, 1.0, 2000)))
    >>> window.add(np.abs(rng.normal(0.0, 1.5, 1000)))
    >>> r = mean_loss_rise("mae", reference, window, relative_tolerance=0.1, alpha=1e-5)
    >>> r.drift, r.severity
    (True, 'warning')
    >>> r.explanation
    'mae 0.802 → 1.17 (+46%) over the last 1,000 labelled events (reference 0.802 ± 0.027 \
over 2,000 events; tolerated rise 10%)'

    """
    threshold = stats.normal_upper_quantile(alpha)
    if reference.n < min_events or window.n < min_events:
        return TestResult(
            detector=f"{metric}_rise", drift=False, statistic=0.0, threshold=threshold,
            p_value=None, effect_size=0.0, severity=WARNING, window_events=window.n,
            explanation=f"{metric} not tested: {reference.n:,} reference and {window.n:,} "
            f"window events with a usable value (at least {min_events:,} needed)",
            reference={"events": int(reference.n)})
    bound = (1.0 + relative_tolerance) * reference.mean
    se_ref = math.sqrt(reference.variance / reference.n)
    se = math.sqrt(window.variance / window.n + ((1.0 + relative_tolerance) * se_ref) ** 2)
    difference = window.mean - bound
    # Constant losses on both sides (a perfect model, say): any rise past the bound is certain.
    z = difference / se if se > 0 else math.copysign(1e9, difference) if difference else 0.0
    rise = (window.mean - reference.mean) / reference.mean if reference.mean > 0 else (
        1.0 if window.mean > 0 else 0.0)
    critical = rise >= max(_CRITICAL_MULTIPLE * relative_tolerance, 0.5)
    return TestResult(
        detector=f"{metric}_rise", drift=z > threshold, statistic=z, threshold=threshold,
        p_value=_upper_p(z), effect_size=rise, severity=CRITICAL if critical else WARNING,
        window_events=window.n,
        explanation=f"{metric} {reference.mean:.3g} → {window.mean:.3g} ({rise:+.0%}) over the "
        f"last {window.n:,} {unit} (reference {reference.mean:.3g} ± {1.96 * se_ref:.2g} over "
        f"{reference.n:,} events; tolerated rise {relative_tolerance:.0%})",
        reference={"events": int(reference.n), metric: reference.mean})
