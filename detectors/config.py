"""Settings shared by every test of a model's :class:`~detectors.monitor.ModelMonitor`."""

from __future__ import annotations

from dataclasses import dataclass, replace

from detectors.errors import require
from detectors.multivariate.pca import MAX_COLUMNS

TESTED_CATEGORIES = 64
"""Frequent reference categories a categorical test compares one by one (the rest: one bin)."""


@dataclass(frozen=True)
class MonitorConfig:
    """Settings shared by every test of a model.

    Parameters
    ----------
    reference_size
        Events in the reference (the first events of a model version).
    window_size
        Events per tumbling window.
    alpha
        Probability that a stationary window raises any alert for the model;
        split evenly (Bonferroni) over all of the model's tests.
    min_psi
        Effect-size floor for distribution drift.
    min_missing_increase
        Smallest rise in a missing-value rate worth an alert.
    min_new_category_rate
        Smallest share of never-seen categories worth an alert.
    false_alarm_events
        Expected events between false alarms of the model, all features and
        checks together (the sequential detectors' budget is what the
        windowed tests leave of it, and at least half).
    min_shift
        Smallest mean shift, in reference standard deviations, that the
        sequential detectors accumulate evidence for.
    min_variance_ratio
        Smallest variance ratio (either way) that the sequential detectors
        accumulate evidence for.
    min_out_of_range_increase
        Smallest rise in the share of values outside the reference's range worth an alert.
    min_joint_increase
        Smallest relative rise of the joint (PCA) statistic worth an alert.
    joint_max_features
        Numeric features (in schema order) watched together by the joint test.
    max_tracked_categories
        Distinct categories a categorical feature's test remembers, in its reference
        and in each window (which hold at most ``reference_size`` and ``window_size``
        values anyway). Past it, further categories are not remembered: they count as
        never seen in the reference. Lower it only to bound the memory of ID-like
        features with a large reference.

    """

    reference_size: int = 5000
    window_size: int = 2000
    alpha: float = 1e-6
    min_psi: float = 0.05
    min_missing_increase: float = 0.05
    min_new_category_rate: float = 0.01
    false_alarm_events: float = 10_000_000.0
    min_shift: float = 0.15
    min_variance_ratio: float = 1.2
    min_out_of_range_increase: float = 0.01
    min_joint_increase: float = 0.25
    joint_max_features: int = 50
    max_tracked_categories: int = 10_000

    def __post_init__(self) -> None:
        require(self.reference_size >= 100, "reference_size", "an integer >= 100",
                self.reference_size)
        require(self.window_size >= 100, "window_size", "an integer >= 100", self.window_size)
        require(0.0 < self.alpha < 1.0, "alpha", "a probability in (0, 1)", self.alpha)
        require(self.min_psi >= 0.0, "min_psi", "a number >= 0", self.min_psi)
        require(0.0 < self.min_missing_increase <= 1.0, "min_missing_increase",
                "a share in (0, 1]", self.min_missing_increase)
        require(0.0 <= self.min_new_category_rate <= 1.0, "min_new_category_rate",
                "a share in [0, 1]", self.min_new_category_rate)
        require(self.false_alarm_events >= 1000, "false_alarm_events", "a number >= 1000",
                self.false_alarm_events)
        require(0.0 < self.min_shift <= 5.0, "min_shift", "a number in (0, 5]", self.min_shift)
        require(1.0 < self.min_variance_ratio <= 100.0, "min_variance_ratio",
                "a number in (1, 100]", self.min_variance_ratio)
        require(0.0 < self.min_out_of_range_increase <= 1.0, "min_out_of_range_increase",
                "a share in (0, 1]", self.min_out_of_range_increase)
        require(self.min_joint_increase > 0.0, "min_joint_increase", "a number > 0",
                self.min_joint_increase)
        require(2 <= self.joint_max_features <= MAX_COLUMNS, "joint_max_features",
                f"an integer in [2, {MAX_COLUMNS}]", self.joint_max_features)
        require(self.max_tracked_categories >= TESTED_CATEGORIES, "max_tracked_categories",
                f"an integer >= {TESTED_CATEGORIES}", self.max_tracked_categories)

    def split_budget(self, segments: int) -> tuple[MonitorConfig, MonitorConfig]:
        """The whole version's settings and each segment monitor's, sharing one budget.

        Half the false-alarm budget (``alpha`` per window and ``1 /
        false_alarm_events`` per event) stays with the monitor of the whole model
        version; the other half is split evenly over at most ``segments``
        segment monitors, each taking its share per event *it* sees. An event
        reaches at most ``segments`` of them, so their false alarms together stay
        within that half however the events spread over segment values, and the
        version keeps its total budget.

        Examples
        --------
        >>> whole, segment = MonitorConfig().split_budget(20)
        >>> whole.false_alarm_events, segment.false_alarm_events, segment.alpha
        (20000000.0, 400000000.0, 2.5e-08)
        """
        require(segments >= 1, "segments", "an integer >= 1", segments)
        whole = replace(self, alpha=self.alpha / 2, false_alarm_events=2 * self.false_alarm_events)
        each = replace(self, alpha=self.alpha / (2 * segments),
                       false_alarm_events=2 * segments * self.false_alarm_events)
        return whole, each

    @property
    def sequential_rate(self) -> float:
        """False-alarm rate per event left to the sequential detectors of a model."""
        budget = 1.0 / self.false_alarm_events
        return max(budget - self.alpha / self.window_size, 0.5 * budget)
