"""Settings of the performance monitor and the label-free estimator, validated once."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from detectors.errors import is_integer, is_number, require

LOGISTIC_REGRESSION = "logistic_regression"
HOEFFDING_ADAPTIVE_TREE = "hoeffding_adaptive_tree"
CHALLENGER_KINDS = (LOGISTIC_REGRESSION, HOEFFDING_ADAPTIVE_TREE)


@dataclass(frozen=True)
class PerformanceConfig:
    """Settings of a :class:`~detectors.performance.monitor.PerformanceMonitor`.

    Parameters
    ----------
    reference_size
        Labelled events in the reference (the first ones of a model version).
    window_size
        Labelled events per tumbling window.
    tolerance
        Absolute drop of accuracy that is still acceptable (classification).
    relative_tolerance
        Relative rise of a mean loss that is still acceptable: MAE
        (regression) and log loss (classification), ``0.10`` = 10%.
    alpha
        Probability that a window of a model that has not degraded beyond the
        tolerances raises a ``performance`` alert; split evenly (Bonferroni)
        over the metrics tested (classification: accuracy and log loss;
        regression: MAE). The default, with 1,000-event windows, allows 0.1
        false alarms per 10M labelled events even for a model degraded by
        exactly the tolerance (driftline's budget is 1); a stationary model
        sits well inside.
    positive_class
        Class name whose probability ``score`` is (log loss, ROC AUC, binary F1).
    min_scored_events
        Events with a usable score needed in the reference and in a window
        before log loss is tested.
    challengers
        Challenger models raced against the production model (any of
        ``"logistic_regression"``, ``"hoeffding_adaptive_tree"``); ``()`` for none.
    challenger_every
        Challengers predict and learn on every k-th labelled event only (bounds their CPU:
        river's adaptive tree costs ~150–400 µs per event with a dozen features, so the
        default 100 keeps both challengers under ~10 µs per labelled event).
    challenger_warm_up
        Events a challenger learns from before its predictions are scored.
    challenger_alpha
        Significance level at which a challenger "beats" the champion
        (Bonferroni over challengers).
    challenger_seed
        Seed of the randomized challengers (the adaptive tree's bootstrap).

    Examples
    --------
    >>> PerformanceConfig(window_size=500).window_size
    500
    >>> PerformanceConfig(challengers=("forest",))
    Traceback (most recent call last):
    ...
    detectors.errors.ConfigurationError: challengers: expected names among \
('logistic_regression', 'hoeffding_adaptive_tree'), got ('forest',)

    """

    reference_size: int = 2000
    window_size: int = 1000
    tolerance: float = 0.02
    relative_tolerance: float = 0.10
    alpha: float = 1e-5
    positive_class: str = "1"
    min_scored_events: int = 100
    challengers: tuple[str, ...] = (LOGISTIC_REGRESSION, HOEFFDING_ADAPTIVE_TREE)
    challenger_every: int = 100
    challenger_warm_up: int = 500
    challenger_alpha: float = 1e-3
    challenger_seed: int = 0

    def __post_init__(self) -> None:
        # JSON (a restored state) brings the tuple back as a list.
        if isinstance(self.challengers, list):
            object.__setattr__(self, "challengers", tuple(self.challengers))
        require(is_integer(self.reference_size, 100), "reference_size",
                "an integer >= 100", self.reference_size)
        require(is_integer(self.window_size, 100), "window_size",
                "an integer >= 100", self.window_size)
        require(is_number(self.tolerance) and 0.0 <= self.tolerance < 1.0, "tolerance",
                "a number in [0, 1)", self.tolerance)
        require(is_number(self.relative_tolerance) and 0.0 <= self.relative_tolerance <= 10.0,
                "relative_tolerance", "a number in [0, 10]", self.relative_tolerance)
        require(is_number(self.alpha) and 0.0 < self.alpha < 1.0, "alpha",
                "a probability in (0, 1)", self.alpha)
        require(isinstance(self.positive_class, str) and self.positive_class != "",
                "positive_class", "a non-empty class name", self.positive_class)
        require(is_integer(self.min_scored_events, 2),
                "min_scored_events", "an integer >= 2", self.min_scored_events)
        require(isinstance(self.challengers, tuple)
                and all(name in CHALLENGER_KINDS for name in self.challengers)
                and len(set(self.challengers)) == len(self.challengers), "challengers",
                f"names among {CHALLENGER_KINDS}", self.challengers)
        require(is_integer(self.challenger_every, 1),
                "challenger_every", "an integer >= 1", self.challenger_every)
        require(is_integer(self.challenger_warm_up, 0),
                "challenger_warm_up", "an integer >= 0", self.challenger_warm_up)
        require(is_number(self.challenger_alpha) and 0.0 < self.challenger_alpha < 1.0,
                "challenger_alpha", "a probability in (0, 1)", self.challenger_alpha)
        require(is_integer(self.challenger_seed), "challenger_seed", "an integer",
                self.challenger_seed)

    def to_dict(self) -> dict[str, Any]:
        """Plain-dict form (``challengers`` as a list), as it goes into a state."""
        plain = asdict(self)
        plain["challengers"] = list(self.challengers)
        return plain


@dataclass(frozen=True)
class EstimationConfig:
    """Settings of a :class:`~detectors.performance.estimation.LabelFreeEstimator`.

    Parameters
    ----------
    reference_size
        Predictions in the reference (the first ones of a model version).
    window_size
        Predictions per tumbling window.
    tolerance
        Absolute drop of estimated accuracy that is still acceptable.
    alpha
        Probability that a window whose estimate has not fallen beyond the
        tolerance raises an ``estimated_performance`` alert. The default, with
        5,000-prediction windows, allows ``0.02 / coverage`` false alarms per 10M
        labelled events at the tolerance (0.07 at 30 % label coverage; the budget is 1).

    Examples
    --------
    >>> EstimationConfig(tolerance=-0.1)
    Traceback (most recent call last):
    ...
    detectors.errors.ConfigurationError: tolerance: expected a number in [0, 1), got -0.1

    """

    reference_size: int = 5000
    window_size: int = 5000
    tolerance: float = 0.02
    alpha: float = 1e-5

    def __post_init__(self) -> None:
        require(is_integer(self.reference_size, 100), "reference_size",
                "an integer >= 100", self.reference_size)
        require(is_integer(self.window_size, 100), "window_size",
                "an integer >= 100", self.window_size)
        require(is_number(self.tolerance) and 0.0 <= self.tolerance < 1.0, "tolerance",
                "a number in [0, 1)", self.tolerance)
        require(is_number(self.alpha) and 0.0 < self.alpha < 1.0, "alpha",
                "a probability in (0, 1)", self.alpha)

    def to_dict(self) -> dict[str, Any]:
        """Plain-dict form, as it goes into a state."""
        return asdict(self)
