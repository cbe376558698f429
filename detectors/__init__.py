"""driftline's pure computation: drift tests, data-quality checks, the per-model monitor.

No Kafka, Redis, asyncio or file I/O here: everything takes columnar numpy
batches and has versioned, plain-dict state.
"""

from detectors.base import TestResult, WindowedTest
from detectors.batch import CategoricalColumn, ColumnBatch, NumericColumn
from detectors.drift import CategoricalDrift, NumericDrift
from detectors.errors import ConfigurationError, DetectorError, StateError
from detectors.monitor import Finding, ModelMonitor, MonitorConfig, WindowReport
from detectors.multivariate import PCADrift
from detectors.performance import (
    EstimationConfig,
    LabelFreeEstimator,
    LabelledBatch,
    PerformanceConfig,
    PerformanceMonitor,
)
from detectors.quality import MissingRate, OutOfRangeRate

__all__ = [
    "CategoricalColumn", "CategoricalDrift", "ColumnBatch", "ConfigurationError",
    "DetectorError", "EstimationConfig", "Finding", "LabelFreeEstimator", "LabelledBatch",
    "MissingRate", "ModelMonitor", "MonitorConfig", "NumericColumn", "NumericDrift",
    "OutOfRangeRate", "PCADrift", "PerformanceConfig", "PerformanceMonitor", "StateError",
    "TestResult", "WindowReport", "WindowedTest",
]
