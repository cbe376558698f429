"""NumericCusum: golden alarms, calibrated false alarms, delays, exact batching and state."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import orjson
import pytest

from detectors.batch import NumericBlock, NumericColumn
from detectors.drift.cusum import NumericCusum
from detectors.errors import ConfigurationError
from tests.detectors.helpers import REFERENCE, numeric

Draw = Callable[[np.random.Generator, int], np.ndarray]
# About what the monitor gives one feature of a 20-feature model (1e-7 per event, shared).
ALPHA = 5e-9

SHAPES: dict[str, Draw] = {
    "normal": lambda rng, n: rng.normal(size=n),
    "lognormal": lambda rng, n: rng.lognormal(0.0, 1.5, n),
    "poisson": lambda rng, n: rng.poisson(2.0, n).astype(np.float64),
    "student_t2": lambda rng, n: rng.standard_t(2.0, n),
}


def trained(rng: np.random.Generator, draw: Draw = SHAPES["normal"],
            alpha: float = ALPHA, **kwargs: float) -> NumericCusum:
    detector = NumericCusum(alpha, **kwargs)  # type: ignore[arg-type]
    detector.update_many(numeric(draw(rng, REFERENCE)))
    detector.end_reference()
    return detector


def alarm_rows(detector: NumericCusum, column: NumericColumn, size: int) -> list[tuple]:
    """Feed ``column`` in segments of ``size``; every alarm as (row, detector, statistic)."""
    rows = []
    for start in range(0, len(column.values), size):
        detector.update_many(column.slice(start, start + size))
        rows += [(start + alarm.row, alarm.result.detector, alarm.result.statistic)
                 for alarm in detector.last_alarms]
    return rows


def first_alarm(detector: NumericCusum, values: np.ndarray) -> int | None:
    detector.update_many(numeric(values))
    return detector.last_alarms[0].row if detector.last_alarms else None


def test_golden_mean_shift() -> None:
    rng = np.random.default_rng(20261123)
    detector = trained(rng)
    stream = rng.normal(size=12_000)
    stream[7_000:] += 0.5
    (alarm,) = alarm_rows(detector, numeric(stream), 12_000)
    assert alarm[:2] == (7_199, "cusum_location")
    result = detector.end_window()
    assert result.drift and result.detector == "cusum_location"
    assert result.statistic > result.threshold
    assert 0.3 < result.effect_size < 1.0  # the estimated shift in reference sd


def test_golden_variance_change() -> None:
    rng = np.random.default_rng(20261124)
    detector = trained(rng)
    stream = rng.normal(size=12_000)
    stream[5_000:] *= np.sqrt(2.0)
    assert first_alarm(detector, stream) == 5_199  # the first block wholly after the change
    result = detector.end_window()
    assert result.detector == "cusum_spread"
    assert "more spread out" in result.explanation
    assert "variance is ≈" in result.explanation


@pytest.mark.parametrize("shape", SHAPES)
def test_no_false_alarm_on_long_stationary_streams(shape: str) -> None:
    # 2 references × 600k events at 5e-9 per event: 0.006 alarms expected.
    draw = SHAPES[shape]
    rng = np.random.default_rng(sorted(SHAPES).index(shape))
    for _ in range(2):
        detector = trained(rng, draw)
        assert detector.active
        for _ in range(6):
            detector.update_many(numeric(draw(rng, 100_000)))
            assert detector.last_alarms == []
            assert not detector.end_window().drift


@pytest.mark.parametrize("shape", ["normal", "poisson"])
def test_false_alarm_rate_is_calibrated_from_the_reference(shape: str) -> None:
    # At a testable rate (1e-5 per event), 8 references × 250k events expect 20 alarms;
    # the calibration is deliberately conservative, and must not be overshot.
    draw = SHAPES[shape]
    rng = np.random.default_rng(7)
    alarms = events = 0
    for _ in range(8):
        detector = trained(rng, draw, alpha=1e-5)
        for _ in range(25):
            detector.update_many(numeric(draw(rng, 10_000)))
            detector._window_alarm = [None]  # count every alarm, not only a window's first
            alarms += len(detector.last_alarms)
            events += 10_000
    assert alarms <= 1e-5 * events


@pytest.mark.parametrize(("shift", "mean_bound", "max_bound"), [
    (0.25, 1000, 2000), (0.5, 400, 600), (1.0, 250, 400)])
def test_mean_shift_delay(shift: float, mean_bound: int, max_bound: int) -> None:
    delays = []
    for seed in range(12):
        rng = np.random.default_rng(100 + seed)
        detector = trained(rng)
        offset = int(rng.integers(0, 200))  # the change lands anywhere in a block
        assert first_alarm(detector, rng.normal(size=3_000 + offset)) is None
        alarm = first_alarm(detector, rng.normal(shift, 1.0, 5_000))
        assert alarm is not None
        delays.append(alarm + 1)
    assert np.mean(delays) <= mean_bound
    assert max(delays) <= max_bound


@pytest.mark.parametrize(("ratio", "side"), [(2.0, "more"), (1.5, "more"), (0.4, "less")])
def test_variance_change_delay(ratio: float, side: str) -> None:
    delays = []
    for seed in range(8):
        rng = np.random.default_rng(200 + seed)
        detector = trained(rng)
        alarm = first_alarm(detector, rng.normal(0.0, np.sqrt(ratio), 8_000))
        assert alarm is not None
        delays.append(alarm + 1)
        result = detector.end_window()
        assert result.detector == "cusum_spread"
        assert f"{side} spread out" in result.explanation
    assert np.mean(delays) <= 1_000


def test_a_location_shift_is_not_reported_as_spread() -> None:
    rng = np.random.default_rng(3)
    detector = trained(rng)
    for _ in range(10):
        detector.update_many(numeric(rng.normal(1.0, 1.0, 2_000)))
        result = detector.end_window()
        assert result.drift and result.detector == "cusum_location"
        assert "higher than in the reference" in result.explanation


def test_a_shift_below_min_shift_does_not_accumulate() -> None:
    rng = np.random.default_rng(4)
    detector = trained(rng)
    for _ in range(5):
        detector.update_many(numeric(rng.normal(0.05, 1.0, 100_000)))
        assert detector.last_alarms == []


@pytest.mark.parametrize("sizes", [(1,), (7, 193), (200,), (999, 1), (4_321,)])
def test_alarms_do_not_depend_on_batch_sizes(sizes: tuple[int, ...]) -> None:
    rng = np.random.default_rng(5)
    stream = rng.normal(size=6_000)
    stream[2_000:3_000] += 1.5
    stream[4_000:] *= 2.5
    missing = rng.random(stream.size) < 0.1
    column = numeric(stream, missing)
    reference = numeric(np.random.default_rng(6).normal(size=REFERENCE))

    def play(sizes: tuple[int, ...]) -> tuple[list[tuple], dict]:
        detector = NumericCusum(ALPHA)
        detector.update_many(reference)
        detector.end_reference()
        alarms, start, turn = [], 0, 0
        while start < stream.size:
            # Windows of 1,000 events close wherever they fall in a block, as in the monitor.
            window_end = (start // 1_000 + 1) * 1_000
            stop = min(start + sizes[turn % len(sizes)], window_end)
            detector.update_many(column.slice(start, stop))
            alarms += [(start + alarm.row, alarm.result) for alarm in detector.last_alarms]
            if stop == window_end:
                detector.end_window()
            start, turn = stop, turn + 1
        return alarms, detector.to_state()

    whole = play((stream.size,))
    assert len(whole[0]) >= 2
    assert all(not missing[row] for row, _ in whole[0])
    assert play(sizes) == whole


@pytest.mark.parametrize("cut", [1, 150, 199, 200, 3_333])
def test_restored_mid_block_continues_identically(cut: int) -> None:
    rng = np.random.default_rng(8)
    detector = trained(rng)
    stream = rng.normal(size=8_000)
    stream[4_000:] += 0.6
    detector.update_many(numeric(stream[:cut]))
    restored = NumericCusum.from_state(orjson.loads(orjson.dumps(detector.to_state())))
    assert restored.to_state() == detector.to_state()
    rest = numeric(stream[cut:])
    assert alarm_rows(restored, rest, 1000) == alarm_rows(detector, rest, 1000)
    assert restored.to_state() == detector.to_state()
    assert restored.end_window() == detector.end_window()


def test_a_constant_reference_is_not_tested() -> None:
    detector = NumericCusum(ALPHA)
    detector.update_many(numeric(np.full(REFERENCE, 3.0)))
    detector.end_reference()
    assert not detector.active
    detector.update_many(numeric(np.full(1_000, 9.0)))
    result = detector.end_window()
    assert not result.drift
    assert result.explanation.startswith("not tested")


def test_window_summary_without_alarm_names_the_closest_side() -> None:
    rng = np.random.default_rng(9)
    detector = trained(rng)
    detector.update_many(numeric(rng.normal(size=2_000)))
    result = detector.end_window()
    assert not result.drift
    assert 0.0 <= result.statistic < result.threshold
    assert result.explanation.startswith("no alarm")
    assert result.window_events == 2_000


def test_last_scores_are_each_events_score_in_event_order() -> None:
    rng = np.random.default_rng(9)
    detector = NumericCusum(ALPHA, columns=["x", "y"])
    reference = rng.lognormal(size=(2, REFERENCE))
    detector.update_many(NumericBlock(("x", "y"), reference, np.zeros(reference.shape, bool)))
    assert detector.last_scores is None  # none while collecting the reference
    detector.end_reference()
    values = rng.lognormal(size=(2, 700))
    missing = rng.random(values.shape) < 0.2
    expected = np.where(missing, 0, detector.scores_of(values))
    assert np.count_nonzero(expected) > 1000
    pieces = []
    for start, stop in [(0, 1), (1, 350), (350, 700)]:
        detector.update_many(NumericBlock(("x", "y"), values[:, start:stop],
                                          missing[:, start:stop]))
        assert detector.last_scores is not None
        pieces.append(detector.last_scores)
    assert np.array_equal(np.hstack(pieces), expected)


def test_scores_of_needs_a_closed_reference() -> None:
    with pytest.raises(ConfigurationError, match="reference is not closed"):
        NumericCusum(ALPHA).scores_of(np.zeros((1, 3)))


def test_end_alarmed_windows_is_the_drifted_part_of_end_windows() -> None:
    rng = np.random.default_rng(10)
    reference = rng.normal(size=(3, REFERENCE))
    full = NumericCusum(ALPHA, columns=["a", "b", "c"])
    full.update_many(NumericBlock(("a", "b", "c"), reference, np.zeros(reference.shape, bool)))
    full.end_reference()
    alarmed_only = NumericCusum.from_state(full.to_state())
    for shift in (0.0, 1.5):
        values = rng.normal(size=(3, 2000))
        values[1] += shift  # b moves in the second window
        values[2, 1000:] *= 1.0 + 2 * shift  # c spreads in its second half
        block = NumericBlock(("a", "b", "c"), values, np.zeros(values.shape, bool))
        full.update_many(block)
        alarmed_only.update_many(block)
        every = full.end_windows()
        alarmed = alarmed_only.end_alarmed_windows()
        assert alarmed == {row: result for row, result in enumerate(every) if result.drift}
        assert alarmed_only.drift_detected == full.drift_detected == bool(shift)
        assert orjson.dumps(alarmed_only.to_state()) == orjson.dumps(full.to_state())
    assert sorted(alarmed) == [1, 2]
    assert "alarms in this window" in alarmed[1].explanation


@pytest.mark.parametrize("shape", sorted(SHAPES))
def test_small_references_calibrate_without_floating_point_warnings(shape: str) -> None:
    # A few hundred values (reference_size 300) made run lengths overflow float64 in the
    # threshold search: "RuntimeWarning: overflow encountered in multiply" on the console.
    import warnings

    for seed in range(6):
        rng = np.random.default_rng(seed)
        for size, block_size in ((100, 200), (150, 2), (300, 200), (300, 10_000)):
            detector = NumericCusum(ALPHA, reference_size=size, block_size=block_size)
            detector.update_many(numeric(SHAPES[shape](rng, size)))
            with warnings.catch_warnings(), np.errstate(over="raise", divide="raise",
                                                        invalid="raise"):
                warnings.simplefilter("error")
                detector.end_reference()
            assert detector.active
