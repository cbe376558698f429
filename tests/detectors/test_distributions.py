"""A verdict carries the histograms it compared (``TestResult.distribution``), for charts."""

from __future__ import annotations

import numpy as np

from detectors.batch import CategoricalColumn, ColumnBatch, NumericColumn
from detectors.drift.categorical import CategoricalDrift
from detectors.drift.numeric import NumericDrift
from detectors.monitor import ModelMonitor, MonitorConfig


def numeric(values: np.ndarray) -> NumericColumn:
    return NumericColumn(values, np.zeros(values.size, dtype=bool))


def test_numeric_verdict_has_both_histograms_on_the_reference_quantile_edges() -> None:
    rng = np.random.default_rng(11)
    test = NumericDrift(alpha=1e-6, reference_size=5000)
    test.update_many(numeric(rng.normal(size=5000)))
    test.end_reference()
    test.update_many(numeric(rng.normal(1.0, 1.0, 2000)))
    shifted = test.end_window()
    # The next window must not change what the first one showed.
    test.update_many(numeric(rng.normal(size=3000)))
    test.end_window()

    histograms = shifted.distribution
    assert histograms is not None and histograms["type"] == "numeric"
    edges, reference, window = histograms["edges"], histograms["reference"], histograms["window"]
    assert len(edges) == 21 and len(reference) == len(window) == 22
    assert sum(reference) == 5000 and sum(window) == 2000
    assert histograms["min"] < edges[0] and histograms["max"] > edges[-1]
    # Above the reference median: half of the reference, most of the shifted window.
    upper = slice(len(edges) // 2 + 1, None)
    assert sum(reference[upper]) / 5000 < 0.55 < 0.75 < sum(window[upper]) / 2000


def test_categorical_verdict_has_the_shares_and_names_new_categories() -> None:
    test = CategoricalDrift(alpha=1e-6)
    test.update_many(CategoricalColumn(["a", "b", "b"] * 2000))
    test.end_reference()
    test.update_many(CategoricalColumn(["a", "b", "zz", "zz"] * 500))
    result = test.end_window()
    test.update_many(CategoricalColumn(["a"] * 900))
    test.end_window()

    assert result.detector == "new_category"
    assert result.distribution == {"type": "categorical", "categories": ["b", "a", "(other)"],
                                   "reference": [4000.0, 2000.0, 0.0],
                                   "window": [500.0, 500.0, 1000.0], "new": {"zz": 1000}}


def test_a_window_that_only_the_sequential_detector_flagged_keeps_its_histograms() -> None:
    rng = np.random.default_rng(1)
    monitor = ModelMonitor({"x": "numeric"}, {}, MonitorConfig(reference_size=1000,
                                                               window_size=500))
    x = np.r_[rng.normal(size=2000), rng.normal(0.2, 1.0, 3000)]
    reports = monitor.update_many(ColumnBatch.from_numeric(ts=np.arange(5000.0), x=x))
    verdicts = [f.result for r in reports if not r.partial for f in r.findings
                if f.check == "distribution" and f.result.drift]
    sequential = [v for v in verdicts if v.detector.startswith("cusum")]
    assert sequential, [v.detector for v in verdicts]
    for verdict in sequential:
        assert verdict.distribution is not None
        assert sum(verdict.distribution["window"]) == 500
