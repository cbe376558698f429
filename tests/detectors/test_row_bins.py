"""RowBins: the histogram and range counts of the tests' own searches, from located rows."""

from __future__ import annotations

import json

import numpy as np
import pytest

from detectors.batch import ColumnBatch, NumericBlock, NumericColumn
from detectors.config import MonitorConfig
from detectors.drift.numeric import NumericDrift
from detectors.drift.row_bins import RowBins
from detectors.drift.score_lookup import ScoreLookup
from detectors.errors import ConfigurationError
from detectors.monitor import ModelMonitor
from detectors.quality.range import OutOfRangeRate
from tests.detectors.helpers import reference_knots


def _edges(reference: np.ndarray) -> np.ndarray:
    """The histogram test's edges."""
    levels = np.array([0.01, 0.05] + [i / 20 for i in range(2, 19)] + [0.95, 0.99])
    return np.unique(np.quantile(reference, levels))


def _bounds(reference: np.ndarray) -> np.ndarray:
    """The range check's low bound and the next float above its high bound."""
    low, high = np.quantile(reference, [0.001, 0.999])
    return np.array([low, np.nextafter(high, np.inf)])


def _expected(block: NumericBlock, edges: list[np.ndarray], bounds: np.ndarray,
              width: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    histograms = np.zeros((len(edges), width))
    below = np.zeros(len(edges), dtype=np.int64)
    above = np.zeros(len(edges), dtype=np.int64)
    for feature, feature_edges in enumerate(edges):
        values = block.values[feature][~block.missing[feature]]
        bins = np.searchsorted(feature_edges, values, side="right")
        histograms[feature] = np.bincount(bins, minlength=width)
        if bounds[feature, 0] == bounds[feature, 0]:
            below[feature] = np.count_nonzero(values < bounds[feature, 0])
            above[feature] = np.count_nonzero(values >= bounds[feature, 1])
    return histograms, below, above


def test_counts_equal_searching_the_edges_exactly() -> None:
    rng = np.random.default_rng(5)
    draws = [
        lambda n: rng.normal(size=n),
        lambda n: rng.lognormal(0.0, 1.5, n),
        lambda n: rng.poisson(2.0, n).astype(np.float64),     # ties: edges between integers
        lambda n: rng.standard_t(1.0, n),                     # Cauchy: knots crowd the centre
        lambda n: rng.integers(0, 2, n).astype(np.float64),   # a flag: two knots
        lambda n: 1e9 + rng.normal(size=n) * 1e-3,            # a large offset, a tiny spread
        lambda n: np.full(n, 4.0),                            # one knot: counted by sorting
    ]
    references = [draw(5000) for draw in draws]
    knots = [reference_knots(reference) for reference in references]
    lookup = ScoreLookup(knots, [np.arange(x.size, dtype=np.float64) for x in knots])
    edges = [_edges(reference) for reference in references]
    bounds = np.array([_bounds(reference) for reference in references])
    bounds[2] = np.nan  # a feature without a range
    bins = RowBins(lookup, edges, bounds)
    # Knots too crowded for the lookup's cells (it falls back to np.interp) and the lone
    # knot of the constant leave rows unknown: those features are counted by sorting.
    assert bins.sorted_features == [f for f in range(len(draws)) if not lookup.located[f]]
    assert {0, 2, 4, 5} <= {f for f in range(len(draws)) if lookup.located[f]}
    assert 6 in bins.sorted_features
    values = np.array([draw(20_000) for draw in draws])
    # Every knot, edge and bound, their neighbours on either side, and values far outside.
    for row in range(len(draws)):
        points = np.concatenate([knots[row], edges[row], bounds[row][bounds[row] == bounds[row]]])
        exact = np.concatenate([points, np.nextafter(points, -np.inf),
                                np.nextafter(points, np.inf), [-1e300, 1e300]])
        values[row, :exact.size] = exact
    missing = rng.random(values.shape) < 0.02
    block = NumericBlock(tuple(f"x{i}" for i in range(len(draws))),
                         np.where(missing, 0.0, values), missing)
    counts = bins.count(block, lookup.rows(block.values))
    histograms, below, above = _expected(block, edges, bounds, bins.width)
    assert np.array_equal(counts.histograms, histograms)
    assert np.array_equal(counts.below, below)
    assert np.array_equal(counts.above, above)
    assert below[0] > 0 and above[0] > 0  # the check is not vacuous


def test_rows_count_the_knots_at_or_below_each_value() -> None:
    rng = np.random.default_rng(6)
    references = [rng.normal(size=5000), rng.poisson(3.0, 5000).astype(np.float64)]
    knots = [reference_knots(reference) for reference in references]
    lookup = ScoreLookup(knots, [np.zeros(x.size) for x in knots])
    values = np.array([np.r_[x, np.nextafter(x, -np.inf), rng.normal(size=300) * 4][:300]
                       for x in knots])
    rows = lookup.rows(values)
    for feature, x in enumerate(knots):
        assert lookup.located[feature]
        assert np.array_equal(rows[feature] - lookup.row_offsets[feature],
                              np.searchsorted(x, values[feature], side="right"))


def test_two_edges_between_the_same_knots_are_counted_by_sorting() -> None:
    knots = np.array([0.0, 1.0, 2.0])
    lookup = ScoreLookup([knots, knots], [knots, knots])
    edges = [np.array([0.25, 0.5, 1.5]), np.array([0.5, 1.5])]
    bins = RowBins(lookup, edges, None)
    assert bins.sorted_features == [0]
    block = NumericBlock(("a", "b"), np.array([[0.1, 0.3, 0.5, 0.7, 1.6, 9.0]] * 2),
                         np.zeros((2, 6), dtype=bool))
    counts = bins.count(block, lookup.rows(block.values))
    assert counts.histograms.tolist() == [[1.0, 1.0, 2.0, 2.0], [2.0, 2.0, 2.0, 0.0]]
    assert not counts.below.any() and not counts.above.any()


def _events(rng: np.random.Generator, n: int, shift: float) -> ColumnBatch:
    columns = {
        "normal": rng.normal(shift, 1.0, n),
        "lognormal": rng.lognormal(0.0, 1.0, n),
        "count": rng.poisson(3.0, n).astype(np.float64),
        "flag": (rng.random(n) < 0.3).astype(np.float64),
        "constant": np.full(n, 2.0),
    }
    batch = {}
    for name, values in columns.items():
        missing = rng.random(n) < 0.03
        batch[name] = NumericColumn(np.where(missing, 0.0, values), missing)
    score = NumericColumn(rng.beta(2.0, 5.0 + shift, n), np.zeros(n, dtype=bool))
    return ColumnBatch(ts=np.arange(n, dtype=np.float64), columns=batch,
                       outputs={"score": score})


@pytest.mark.parametrize("batch_size", [700, 1000])
def test_the_monitor_counts_as_the_tests_would_by_sorting(batch_size: int) -> None:
    schema = dict.fromkeys(("normal", "lognormal", "count", "flag", "constant"), "numeric")
    config = MonitorConfig(reference_size=3000, window_size=1000)
    located = ModelMonitor(schema, {"score": "numeric"}, config)
    sorting = ModelMonitor(schema, {"score": "numeric"}, config)
    rng = np.random.default_rng(7)
    batches = [_events(rng, batch_size, shift=0.0 if i < 8 else 0.7) for i in range(14)]
    reports = ([], [])
    for batch in batches:
        for monitor, out in zip((located, sorting), reports, strict=True):
            out.extend(monitor.update_many(batch))
        # The tests' own sorting path from the next batch on.
        assert sorting._tests is not None and located._tests is not None
        sorting._tests.features._bins = sorting._tests.outputs._bins = None
        assert (located._tests.features._bins is not None) == located.reference_complete
        assert (located._tests.outputs._bins is not None) == located.reference_complete
    assert located._tests is not None and located._tests.features._bins is not None
    assert located._tests.features._bins.sorted_features == [4]  # the constant has no knots
    assert json.dumps(located.to_state(), sort_keys=True) == json.dumps(
        sorting.to_state(), sort_keys=True)
    assert [(r.index, r.partial, [(f.feature, f.check, f.result.statistic) for f in r.findings])
            for r in reports[0]] == [
        (r.index, r.partial, [(f.feature, f.check, f.result.statistic) for f in r.findings])
        for r in reports[1]]
    assert any(f.feature == "normal" for r in reports[0] for f in r.drifted)


def test_counts_found_elsewhere_need_a_closed_reference() -> None:
    block = NumericBlock(("x",), np.zeros((1, 3)), np.zeros((1, 3), dtype=bool))
    with pytest.raises(ConfigurationError, match="reference is not closed"):
        NumericDrift(1e-6).add_counts(block, np.zeros((1, 1)))
    with pytest.raises(ConfigurationError, match="reference is not closed"):
        OutOfRangeRate(1e-6).add_counts(block, np.zeros(1, dtype=np.int64),
                                        np.zeros(1, dtype=np.int64))
