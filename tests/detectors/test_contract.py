"""One contract, every windowed test: river's ``checks/`` idea applied to driftline.

Each :class:`Case` names a :class:`WindowedTest` class, valid and invalid
constructor arguments, and a factory of columns it accepts; every check below
runs over every case.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import detectors.monitor  # noqa: F401  (imports every windowed test, for the coverage check)
from detectors.base import TestResult, WindowedTest
from detectors.batch import CategoricalColumn, Column, NumericBlock, NumericColumn
from detectors.drift.categorical import CategoricalDrift
from detectors.drift.cusum import NumericCusum
from detectors.drift.numeric import NumericDrift
from detectors.errors import ConfigurationError, StateError
from detectors.multivariate.pca import PCADrift
from detectors.quality.missing import MissingRate
from detectors.quality.range import OutOfRangeRate
from tests.detectors.helpers import categorical, numeric

# One column, or a multi-column segment for the tests that watch several features at once.
Segment = Column | dict[str, NumericColumn] | NumericBlock
Factory = Callable[[np.random.Generator, int, bool], Segment]


def numeric_values(rng: np.random.Generator, n: int, drifted: bool) -> Column:
    values = rng.normal(1.0 if drifted else 0.0, 1.0, n)
    return numeric(values, rng.random(n) < (0.3 if drifted else 0.05))


def out_of_range_values(rng: np.random.Generator, n: int, drifted: bool) -> Column:
    values = rng.normal(0.0, 1.0, n)
    if drifted:
        values[rng.random(n) < 0.1] += 10.0
    return numeric(values, rng.random(n) < 0.05)


JOINT = ("income", "balance", "age")


def joint_values(rng: np.random.Generator, n: int, drifted: bool) -> dict[str, NumericColumn]:
    # The correlation of income and balance flips sign; every marginal stays N(0, 1).
    income, noise, age = rng.normal(size=(3, n))
    balance = (-0.8 if drifted else 0.8) * income + 0.6 * noise
    missing = rng.random((3, n)) < (0.3 if drifted else 0.05)
    return {name: numeric(values, gaps)
            for name, values, gaps in zip(JOINT, (income, balance, age), missing, strict=True)}


def block_of(make: Factory) -> Factory:
    """Three features as one block; only the middle one changes in drifted windows."""

    def build(rng: np.random.Generator, n: int, drifted: bool) -> NumericBlock:
        columns = [make(rng, n, drifted and name == "balance") for name in JOINT]
        assert all(isinstance(column, NumericColumn) for column in columns)
        return NumericBlock(JOINT, np.stack([column.values for column in columns]),
                            np.stack([column.missing for column in columns]))

    return build


def categories(rng: np.random.Generator, n: int, drifted: bool) -> Column:
    # A long tail of rare labels keeps the unseen-category bookkeeping busy.
    common = rng.choice(["a", "b", "c", "d"], n, p=[0.5, 0.3, 0.15, 0.05]).astype(object)
    rare = rng.random(n) < 0.05
    common[rare] = [f"rare{k}" for k in rng.zipf(1.5, int(rare.sum()))]
    if drifted:
        common[rng.random(n) < 0.1] = "new"
    common[rng.random(n) < (0.3 if drifted else 0.05)] = None
    return categorical(common.tolist())


@dataclass(frozen=True)
class Case:
    cls: type[WindowedTest[Any]]
    kwargs: dict[str, Any]
    make: Factory
    invalid: tuple[tuple[str, Any], ...]
    empty: Segment

    def build(self) -> WindowedTest[Any]:
        return self.cls(**self.kwargs)


NO_NUMBERS = NumericColumn(np.empty(0), np.empty(0, dtype=np.bool_))
NO_BLOCK = NumericBlock(JOINT, np.empty((3, 0)), np.empty((3, 0), dtype=np.bool_))
BAD_COLUMNS = (("columns", []), ("columns", ["age", "age"]), ("columns", "ab"),
               ("columns", [1, 2]))
NO_CATEGORIES = CategoricalColumn([])
BAD_ALPHAS = (("alpha", 0.0), ("alpha", 1.0), ("alpha", -0.5), ("alpha", math.nan))

CASES = {
    "numeric_drift": Case(
        NumericDrift, {"alpha": 1e-3, "reference_size": 1000}, numeric_values,
        BAD_ALPHAS + (("reference_size", 49), ("reference_size", 0), ("min_psi", -0.1),
                      ("critical_psi", 0.01), ("min_psi", math.nan)),
        NO_NUMBERS),
    "categorical_drift": Case(
        CategoricalDrift, {"alpha": 1e-3, "max_categories": 8, "max_known": 100}, categories,
        BAD_ALPHAS + (("max_categories", 0), ("max_known", 7), ("min_psi", -1.0),
                      ("min_new_rate", 1.5), ("min_new_rate", -0.01), ("critical_psi", 0.01)),
        NO_CATEGORIES),
    "numeric_cusum": Case(
        NumericCusum, {"alpha": 1e-7, "reference_size": 1000, "block_size": 50},
        numeric_values,
        BAD_ALPHAS + (("reference_size", 99), ("block_size", 1), ("block_size", 10_001),
                      ("min_shift", 0.0), ("min_shift", math.nan),
                      ("min_variance_ratio", 1.0), ("min_variance_ratio", math.nan)),
        NO_NUMBERS),
    "missing_rate_numeric": Case(
        MissingRate, {"alpha": 1e-3}, numeric_values,
        BAD_ALPHAS + (("min_increase", 0.0), ("min_increase", 1.5)), NO_NUMBERS),
    "missing_rate_categorical": Case(
        MissingRate, {"alpha": 1e-3, "min_increase": 0.1}, categories,
        (("min_increase", -0.2),), NO_CATEGORIES),
    "out_of_range_rate": Case(
        OutOfRangeRate, {"alpha": 1e-3, "reference_size": 1000}, out_of_range_values,
        BAD_ALPHAS + (("reference_size", 49), ("tail", -0.01), ("tail", 0.1), ("tail", math.nan),
                      ("min_increase", 0.0), ("min_increase", 1.5), ("critical_increase", 0.001)),
        NO_NUMBERS),
    "numeric_drift_block": Case(
        NumericDrift, {"alpha": 1e-3, "reference_size": 1000, "columns": list(JOINT)},
        block_of(numeric_values), BAD_COLUMNS, NO_BLOCK),
    "numeric_cusum_block": Case(
        NumericCusum, {"alpha": 1e-7, "reference_size": 1000, "block_size": 50,
                       "columns": list(JOINT)},
        block_of(numeric_values), BAD_COLUMNS, NO_BLOCK),
    "missing_rate_block": Case(
        MissingRate, {"alpha": 1e-3, "columns": list(JOINT)}, block_of(numeric_values),
        BAD_COLUMNS, NO_BLOCK),
    "out_of_range_rate_block": Case(
        OutOfRangeRate, {"alpha": 1e-3, "reference_size": 1000, "columns": list(JOINT)},
        block_of(out_of_range_values), BAD_COLUMNS, NO_BLOCK),
    "pca_drift_block": Case(
        PCADrift, {"alpha": 1e-3, "columns": list(JOINT), "reference_size": 1000},
        lambda rng, n, drifted: NumericBlock.from_columns(joint_values(rng, n, drifted),
                                                          JOINT, n),
        (), NO_BLOCK),
    "pca_drift": Case(
        PCADrift, {"alpha": 1e-3, "columns": list(JOINT), "reference_size": 1000}, joint_values,
        BAD_ALPHAS + (("columns", ["income"]), ("columns", ["age", "age"]), ("columns", "ab"),
                      ("columns", [f"x{i}" for i in range(101)]), ("reference_size", 49),
                      ("variance_kept", 0.0), ("variance_kept", 1.0), ("min_increase", -0.1),
                      ("min_increase", math.nan), ("critical_increase", 0.1)),
        {name: NO_NUMBERS for name in JOINT}),
}

INVALID = [pytest.param(case, name, value, id=f"{key}-{name}={value}")
           for key, case in CASES.items() for name, value in case.invalid]

every_case = pytest.mark.parametrize("case", CASES.values(), ids=CASES.keys())

# A stream as a script of steps: feed a column, close the reference, close a window.
Step = tuple[str, Segment | None]


def rows(segment: Segment) -> int:
    if isinstance(segment, NumericBlock):
        return segment.events
    if isinstance(segment, dict):
        return len(next(iter(segment.values())).values)
    return len(segment.values)


def cut(segment: Segment, start: int, stop: int) -> Segment:
    if isinstance(segment, NumericBlock):
        return segment.slice(start, stop)
    if isinstance(segment, dict):
        return {name: column.slice(start, stop) for name, column in segment.items()}
    return segment.slice(start, stop)


def script(case: Case, seed: int) -> list[Step]:
    rng = np.random.default_rng(seed)
    steps: list[Step] = [("feed", case.make(rng, 400, False)) for _ in range(3)]
    steps.append(("end_reference", None))
    for window in range(6):
        drifted = window >= 4
        steps += [("feed", case.make(rng, 250, drifted)), ("feed", case.make(rng, 250, drifted)),
                  ("end_window", None)]
    return steps


def play(test: WindowedTest[Any], steps: list[Step]) -> list[TestResult]:
    results = []
    for action, column in steps:
        if action == "feed":
            test.update_many(column)
        elif action == "end_reference":
            test.end_reference()
        else:
            results.append(test.end_window())
    return results


def through_json(test: WindowedTest[Any]) -> WindowedTest[Any]:
    return type(test).from_state(orjson.loads(orjson.dumps(test.to_state())))


def assert_plain(value: Any, where: str = "state") -> None:
    """Only JSON's own types: no numpy scalars or arrays hiding behind duck typing."""
    if type(value) is dict:
        for key, item in value.items():
            assert type(key) is str, f"{where}: key {key!r} is not a str"
            assert_plain(item, f"{where}[{key!r}]")
    elif type(value) is list:
        for i, item in enumerate(value):
            assert_plain(item, f"{where}[{i}]")
    else:
        assert value is None or type(value) in (str, int, float, bool), (
            f"{where}: {type(value).__name__} is not a plain JSON type")


def test_every_windowed_test_has_a_case() -> None:
    def concrete(cls: type) -> set[type]:
        found = {sub for sub in cls.__subclasses__() if not getattr(sub, "__abstractmethods__", ())}
        for sub in cls.__subclasses__():
            found |= concrete(sub)
        return found

    assert concrete(WindowedTest) <= {case.cls for case in CASES.values()}


@pytest.mark.parametrize(("case", "name", "value"), INVALID)
def test_constructor_names_the_invalid_parameter_and_value(case: Case, name: str,
                                                           value: Any) -> None:
    message = rf"^{name}: expected .*, got {re.escape(repr(value))}$"
    with pytest.raises(ConfigurationError, match=message):
        case.cls(**{**case.kwargs, name: value})


@every_case
def test_configuration_is_public_and_learned_state_starts_empty(case: Case) -> None:
    test = case.build()
    for key, value in case.kwargs.items():
        assert getattr(test, key) == value
    assert set(test.config_keys) >= set(case.kwargs)
    assert not test.drift_detected
    assert not test.reference_ready


@every_case
def test_drift_detected_is_read_only(case: Case) -> None:
    test = case.build()
    with pytest.raises(AttributeError):
        test.drift_detected = True  # type: ignore[misc]
    assert test.drift_detected is False


@every_case
def test_drift_detected_follows_the_last_window(case: Case) -> None:
    test = case.build()
    results = play(test, script(case, seed=1))
    assert [r.drift for r in results] == [False] * 4 + [True] * 2
    assert test.drift_detected is True
    rng = np.random.default_rng(2)
    # A sequential test may carry a drift's evidence into the next window (a CUSUM just
    # below its threshold), so the verdict must clear within a few stationary windows.
    for _ in range(3):
        test.update_many(case.make(rng, 500, False))
        result = test.end_window()
        assert test.drift_detected is result.drift
    assert result.drift is False
    assert test.drift_detected is False


@every_case
@pytest.mark.parametrize("stop", [0, 2, 3, 4, 9, 22])
def test_state_is_plain_json_and_round_trips_exactly(case: Case, stop: int) -> None:
    test = case.build()
    play(test, script(case, seed=3)[:stop])
    state = test.to_state()
    assert_plain(state)
    decoded = orjson.loads(orjson.dumps(state))
    assert decoded == state
    assert type(test).from_state(decoded).to_state() == state


@every_case
@pytest.mark.parametrize("stop", [1, 3, 4, 8, 11], ids=[
    "mid-reference", "reference-full", "reference-closed", "mid-window", "between-windows"])
def test_restored_test_continues_exactly_like_the_original(case: Case, stop: int) -> None:
    steps = script(case, seed=4)
    original = case.build()
    play(original, steps[:stop])
    restored = through_json(original)
    assert play(restored, steps[stop:]) == play(original, steps[stop:])
    assert restored.to_state() == original.to_state()


@every_case
@pytest.mark.parametrize("stop", [1, 8], ids=["mid-reference", "mid-window"])
def test_to_state_is_a_snapshot_and_from_state_copies(case: Case, stop: int) -> None:
    steps = script(case, seed=5)
    original = case.build()
    play(original, steps[:stop])
    state = original.to_state()
    frozen = orjson.loads(orjson.dumps(state))
    first, second = type(original).from_state(state), type(original).from_state(state)
    results = [play(test, steps[stop:]) for test in (original, first, second)]
    assert state == frozen, "later updates leaked into a state already handed out"
    assert results[1] == results[0]
    assert results[2] == results[0], "two tests restored from one dict share learned state"


@every_case
def test_from_state_rejects_another_type_or_version(case: Case) -> None:
    state = case.build().to_state()
    other = next(c for c in CASES.values() if c.cls is not case.cls).build().to_state()
    for bad in (other, {**state, "version": state["version"] + 1}, {**state, "type": None}, {}):
        with pytest.raises(StateError, match="expected type"):
            case.cls.from_state(bad)
    with pytest.raises(StateError):
        case.cls.from_state({**state, "state": {}})
    with pytest.raises(StateError):
        case.cls.from_state({**state, "config": {**state["config"], "alpha": 2.0}})


@every_case
def test_state_size_does_not_grow_with_the_stream(case: Case) -> None:
    rng = np.random.default_rng(6)
    test = case.build()
    test.update_many(case.make(rng, 1200, False))
    test.end_reference()

    def sizes_after(windows: int) -> tuple[int, int]:
        for _ in range(windows):
            test.update_many(case.make(rng, 500, False))
            test.end_window()
        closed = len(orjson.dumps(test.to_state()))
        test.update_many(case.make(rng, 250, False))
        return closed, len(orjson.dumps(test.to_state()))

    closed_10, open_10 = sizes_after(10)
    closed_100, open_100 = sizes_after(89)
    assert abs(closed_100 - closed_10) <= 0.02 * closed_10 + 32, (closed_10, closed_100)
    # Mid-window the size depends on what the window holds (e.g. which unseen labels), not on
    # how long the stream has run.
    assert abs(open_100 - open_10) <= 0.25 * open_10, (open_10, open_100)


@every_case
def test_an_empty_segment_changes_nothing(case: Case) -> None:
    rng = np.random.default_rng(7)
    test = case.build()
    for column in (case.empty, case.make(rng, 1200, False), case.empty):
        before = test.to_state()
        test.update_many(case.empty)
        assert test.to_state() == before
        test.update_many(column)
    test.end_reference()
    before = test.to_state()
    test.update_many(case.empty)
    assert test.to_state() == before
    test.update_many(case.make(rng, 500, False))
    test.update_many(case.empty)
    assert test.end_window().window_events > 0


@every_case
def test_a_window_without_events_is_not_an_alert(case: Case) -> None:
    test = case.build()
    test.update_many(case.make(np.random.default_rng(8), 1200, False))
    test.end_reference()
    result = test.end_window()
    assert result.drift is False
    assert result.window_events == 0
    assert orjson.loads(orjson.dumps(result.to_dict()))["detector"] == result.detector


@every_case
@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(cuts=st.lists(st.integers(0, 2700), max_size=12))
def test_results_do_not_depend_on_segment_boundaries(case: Case, cuts: list[int]) -> None:
    steps = script(case, seed=9)
    whole = play(case.build(), steps)
    split: list[Step] = []
    for action, column in steps:
        if column is None:
            split.append((action, None))
            continue
        size = rows(column)
        edges = sorted({0, size, *(c % (size + 1) for c in cuts)})
        split += [("feed", cut(column, a, b)) for a, b in zip(edges, edges[1:], strict=False)]
    assert play(case.build(), split) == whole
