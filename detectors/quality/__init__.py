"""Data-quality checks of one feature."""

from detectors.quality.missing import MissingRate

__all__ = ["MissingRate"]
