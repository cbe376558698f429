"""Data-quality checks of one feature."""

from detectors.quality.missing import MissingRate
from detectors.quality.range import OutOfRangeRate

__all__ = ["MissingRate", "OutOfRangeRate"]
