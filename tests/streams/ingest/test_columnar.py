from __future__ import annotations

from typing import Any

import numpy as np
from hypothesis import given
from hypothesis import strategies as st

from detectors.batch import CategoricalColumn, NumericColumn
from streams.ingest.columnar import build_batch, infer_schema, output_schema


def event(i: int, **features: object) -> dict[str, object]:
    return {"model_id": "m", "model_version": "v", "event_id": str(i), "ts": float(i),
            "features": features, "prediction": "yes", "score": 0.5}


def test_clean_events_become_typed_columns() -> None:
    events = [event(0, x=1, c="a"), event(1, x=2.5, c=None), event(2, c="b")]
    schema = infer_schema(events)
    assert schema == {"x": "numeric", "c": "categorical"}
    batch, problems = build_batch(events, schema, output_schema(events))
    assert not problems
    x = batch.columns["x"]
    assert isinstance(x, NumericColumn)
    assert x.values.tolist() == [1.0, 2.5, 0.0] and x.missing.tolist() == [False, False, True]
    assert isinstance(batch.columns["c"], CategoricalColumn)
    assert batch.columns["c"].values == ["a", None, "b"]
    assert set(batch.outputs) == {"prediction", "score"}


def test_wrong_types_and_non_finite_values_drop_the_row_and_are_counted() -> None:
    events = [event(0, x=1.0, c="a"), event(1, x="high", c="a"), event(2, x=float("inf"), c="b"),
              event(3, x=2.0, c=["list"]), event(4, x=3.0, c=7)]
    batch, problems = build_batch(events, {"x": "numeric", "c": "categorical"},
                                  {"prediction": "categorical"})
    assert sorted((p.row, p.error, p.path) for p in problems) == [
        (1, "wrong_type", "features.x"), (2, "non_finite", "features.x"),
        (3, "wrong_type", "features.c")]
    assert len(batch) == 2
    assert batch.ts.tolist() == [0.0, 4.0]
    assert batch.columns["c"].values == ["a", "7"]       # numbers in a categorical are labels
    assert batch.rejected == {"x": 2, "c": 1}
    assert np.isfinite(batch.columns["x"].values).all()


@given(st.lists(st.dictionaries(st.sampled_from("abcdef"), st.one_of(
    st.none(), st.booleans(), st.integers(-2, 2), st.floats(-1, 1), st.sampled_from("xy"),
    st.sampled_from([np.float64(0.5), np.int64(3), np.bool_(True)]))),
    max_size=12), st.integers(1, 6))
def test_schema_of_dense_events_is_the_value_by_value_vote(
        features: list[dict[str, Any]], max_features: int) -> None:
    """The column-at-a-time path gives the same types, order and cap as the vote."""
    events = [{"features": f} for f in features]
    votes: dict[str, list[int]] = {}
    for f in features:
        for name, value in f.items():
            if value is None or (name not in votes and len(votes) >= max_features):
                continue
            number = isinstance(value, int | float) and not isinstance(value, bool)
            votes.setdefault(name, [0, 0])[0 if number else 1] += 1
    expected = {n: "numeric" if a >= b else "categorical" for n, (a, b) in votes.items()}
    schema = infer_schema(events, max_features)
    assert schema == expected and list(schema) == list(expected)
