"""Sequential detectors over a model's error stream (concept drift), behind one interface.

``DEFAULT_ERROR_DETECTOR`` builds driftline's default: a one-sided Bernoulli
CUSUM that only signals when the error rate rises. river's detectors are
wrapped behind the same interface for comparison (``driftline bench quality``);
they load river (and scipy, ~1.4 s) on first access, so a worker that only
uses the default never imports them.
"""

from collections.abc import Callable
from importlib import import_module
from typing import TYPE_CHECKING, Any

from detectors.concept.base import ErrorStreamDetector
from detectors.concept.bernoulli_cusum import BernoulliCusum

if TYPE_CHECKING:
    from detectors.concept.river_real_valued import RiverADWIN, RiverKSWIN, RiverPageHinkley
    from detectors.concept.river_wrappers import RiverDDM, RiverEDDM, RiverHDDMA, RiverHDDMW

DEFAULT_ERROR_DETECTOR: Callable[[], ErrorStreamDetector] = BernoulliCusum
"""Factory of the default error-stream detector (call it with no arguments)."""

# Public name -> the module that defines it (imported on first access: it imports river).
_RIVER_WRAPPERS = {
    "RiverADWIN": "detectors.concept.river_real_valued",
    "RiverKSWIN": "detectors.concept.river_real_valued",
    "RiverPageHinkley": "detectors.concept.river_real_valued",
    "RiverDDM": "detectors.concept.river_wrappers",
    "RiverEDDM": "detectors.concept.river_wrappers",
    "RiverHDDMA": "detectors.concept.river_wrappers",
    "RiverHDDMW": "detectors.concept.river_wrappers",
}


def __getattr__(name: str) -> Any:
    """Import a river wrapper the first time it is asked for (PEP 562)."""
    module = _RIVER_WRAPPERS.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(import_module(module), name)
    globals()[name] = value
    return value


__all__ = [
    "DEFAULT_ERROR_DETECTOR", "BernoulliCusum", "ErrorStreamDetector", "RiverADWIN", "RiverDDM",
    "RiverEDDM", "RiverHDDMA", "RiverHDDMW", "RiverKSWIN", "RiverPageHinkley",
]
