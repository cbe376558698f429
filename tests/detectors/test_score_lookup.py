"""ScoreLookup: the same scores as np.interp, to the last bit, for values in any order."""

from __future__ import annotations

import numpy as np
import pytest

from detectors.drift.score_lookup import ScoreLookup
from tests.detectors.helpers import reference_knots

SCALE = float(1 << 20)


def _transform(reference: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Knots at 129 reference quantiles and a normal-score-like table, as the CUSUM builds."""
    knots = reference_knots(reference)
    table = np.linspace(-2.9, 3.1, knots.size) ** 3 / 9.0 * SCALE
    return knots, table


def _expected(values: np.ndarray, knots: list[np.ndarray], tables: list[np.ndarray]) -> np.ndarray:
    out = np.zeros(values.shape, dtype=np.int64)
    for row, (x, y) in enumerate(zip(knots, tables, strict=True)):
        if x.size:
            out[row] = np.interp(values[row], x, y)
    return out


def test_scores_equal_np_interp_exactly() -> None:
    rng = np.random.default_rng(1)
    draws = [
        lambda n: rng.normal(size=n),
        lambda n: rng.lognormal(0.0, 1.5, n),
        lambda n: rng.poisson(2.0, n).astype(np.float64),  # ties: few knots
        lambda n: rng.standard_t(1.0, n),                     # Cauchy: knots crowd the centre
        lambda n: rng.integers(0, 2, n).astype(np.float64),   # a flag: two knots
        lambda n: 1e9 + rng.normal(size=n) * 1e-3,            # a large offset, a tiny spread
    ]
    transforms = [_transform(draw(5000)) for draw in draws]
    knots = [x for x, _ in transforms] + [np.empty(0)]
    tables = [y for _, y in transforms] + [np.empty(0)]
    lookup = ScoreLookup(knots, tables)
    values = np.array([draw(20_000) for draw in draws] + [rng.normal(size=20_000)])
    # Every knot, its neighbours on either side, and values far outside the range.
    for row, x in enumerate(knots[:-1]):
        exact = np.concatenate([x, np.nextafter(x, -np.inf), np.nextafter(x, np.inf),
                                [x[0] - 1e6, x[-1] + 1e6, -1e300, 1e300]])
        values[row, :exact.size] = exact
    scores = lookup.scores(values)
    assert np.array_equal(scores, _expected(values, knots, tables))
    assert not scores[-1].any()  # no knots: 0


def test_a_feature_too_crowded_for_the_cells_falls_back_to_np_interp() -> None:
    # Two knots 1e-12 apart next to one far away: no 2**14 cells separate them.
    knots = [np.array([0.0, 1e-12, 1.0, 1e12]), np.array([0.0, 1.0])]
    tables = [np.array([-3.0, -1.0, 1.0, 3.0]) * SCALE, np.array([0.0, SCALE])]
    lookup = ScoreLookup(knots, tables)
    assert lookup._fallback == [0]
    values = np.array([[-1.0, 0.0, 5e-13, 1e-12, 0.5, 1e11, 2e12],
                       [-1.0, 0.0, 0.25, 0.5, 1.0, 2.0, 0.75]])
    assert np.array_equal(lookup.scores(values), _expected(values, knots, tables))


@pytest.mark.parametrize("shape", [(0, 5), (3, 0)])
def test_empty_inputs(shape: tuple[int, int]) -> None:
    x = np.array([0.0, 1.0])
    lookup = ScoreLookup([x] * shape[0], [x * SCALE] * shape[0])
    assert lookup.scores(np.zeros(shape)).shape == shape
