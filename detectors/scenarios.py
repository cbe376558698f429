"""The names of the synthetic scenarios that :mod:`detectors.synthetic` generates.

Kept apart from the generator so that the command line can offer them as
choices without building the generator's classes and tables at start-up.

>>> SCENARIOS[0]
'stationary'
"""

from __future__ import annotations

SCENARIOS: tuple[str, ...] = (
    "stationary",
    "mean_shift",
    "variance_change",
    "new_category",
    "gradual",
    "concept_change",
    "missing_surge",
)

__all__ = ["SCENARIOS"]
