"""Two-sample drift tests of one feature against its reference."""

from detectors.drift.categorical import CategoricalDrift
from detectors.drift.numeric import NumericDrift

__all__ = ["CategoricalDrift", "NumericDrift"]
