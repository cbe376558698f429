"""Sequential detectors over a model's error stream (concept drift), behind one interface.

``DEFAULT_ERROR_DETECTOR`` builds driftline's default: a one-sided Bernoulli
CUSUM that only signals when the error rate rises. river's detectors are
wrapped behind the same interface for comparison (``driftline bench quality``).
"""

from collections.abc import Callable

from detectors.concept.base import ErrorStreamDetector
from detectors.concept.bernoulli_cusum import BernoulliCusum
from detectors.concept.river_real_valued import RiverADWIN, RiverKSWIN, RiverPageHinkley
from detectors.concept.river_wrappers import RiverDDM, RiverEDDM, RiverHDDMA, RiverHDDMW

DEFAULT_ERROR_DETECTOR: Callable[[], ErrorStreamDetector] = BernoulliCusum
"""Factory of the default error-stream detector (call it with no arguments)."""

__all__ = [
    "DEFAULT_ERROR_DETECTOR", "BernoulliCusum", "ErrorStreamDetector", "RiverADWIN", "RiverDDM",
    "RiverEDDM", "RiverHDDMA", "RiverHDDMW", "RiverKSWIN", "RiverPageHinkley",
]
