"""Model performance from labels and without them: metrics, alerts, estimates, challengers.

Pure computation over joined prediction⋈label events
(:class:`LabelledBatch`): :class:`PerformanceMonitor` (realized metrics,
``performance`` and ``concept_drift`` findings, challenger models),
:class:`LabelFreeEstimator` (``estimated_performance`` from confidences,
fed every prediction). Outputs are :class:`~detectors.monitor.WindowReport`
objects, so the alert policy handles them like the drift monitor's.
"""

from detectors.performance.batch import (
    CLASSIFICATION,
    REGRESSION,
    TASKS,
    LabelledBatch,
    confidence_of,
    normalise_class,
    normalise_classes,
)
from detectors.performance.challengers import ChallengerSet
from detectors.performance.config import (
    CHALLENGER_KINDS,
    HOEFFDING_ADAPTIVE_TREE,
    LOGISTIC_REGRESSION,
    EstimationConfig,
    PerformanceConfig,
)
from detectors.performance.estimation import ESTIMATED_PERFORMANCE, LabelFreeEstimator
from detectors.performance.metrics import ClassificationMetrics, RegressionMetrics
from detectors.performance.monitor import CONCEPT_DRIFT, PERFORMANCE, PerformanceMonitor

__all__ = [
    "CHALLENGER_KINDS", "CLASSIFICATION", "CONCEPT_DRIFT", "ESTIMATED_PERFORMANCE",
    "HOEFFDING_ADAPTIVE_TREE", "LOGISTIC_REGRESSION", "PERFORMANCE", "REGRESSION", "TASKS",
    "ChallengerSet", "ClassificationMetrics", "EstimationConfig", "LabelFreeEstimator",
    "LabelledBatch", "PerformanceConfig", "PerformanceMonitor", "RegressionMetrics",
    "confidence_of", "normalise_class", "normalise_classes",
]
