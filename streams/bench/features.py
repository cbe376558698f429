"""Feature-drift quality of :class:`~detectors.monitor.ModelMonitor` at its default settings.

Every run is a model with 20 features (8 normal, 4 lognormal, 3 Poisson counts,
5 categorical) fed to one monitor in 1,000-event batches, exactly as the worker
would. A scenario plants one change at event ``DRIFT_AT`` (after the 5,000-event
reference and 15,000 stationary events) in one feature, and a run ends once the
change is detected or ``AFTER`` events later. Mean shifts and variance changes
rotate over a normal, a lognormal and a Poisson feature with the seed, so
three seeds cover the three shapes.

* **detected**: a report (partial or full) flags the changed feature at or
  after the change; **delay** counts events from the change to the event at
  which that report was raised.
* **false alarms**: flagged findings on any feature before the change, or on an
  unchanged feature after it. A sequential alarm repeated by its window's full
  report counts once; a windowed test agreeing in the same window counts again.
* **µs/event**: time of ``ModelMonitor.update_many`` per event over the
  stationary stream's post-reference batches (all 20 features, all detectors),
  wall and CPU, as the min and median over the seeds' runs. The machine may be
  shared, so each run also times a plain ``np.sort`` of every tenth batch's 15
  numeric columns (15 × 1,000 float64, stacked beforehand): the update's cost in
  sorts is comparable across machines and loads. The total is also split into
  *feeding* (batches that close no window) and *window evaluation* (what a
  batch that closes a window costs beyond feeding, spread over the window's
  events): every event pays both.

The joint-distribution scenario flips the correlation of two normal features
(+0.8 → −0.8) and leaves every marginal alone: univariate detectors are not
expected to see it, and the table says so rather than hiding the row; the
monitor's joint (PCA) finding counts as detecting it.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import IO, Any

import numpy as np
from numpy.typing import NDArray

from detectors.batch import CategoricalColumn, Column, ColumnBatch, NumericColumn
from detectors.monitor import JOINT, ModelMonitor, MonitorConfig, WindowReport

BATCH = 1000
DRIFT_AT = 20_000
AFTER = 20_000
GRADUAL_WIDTH = 10_000
NORMAL = [f"normal_{i}" for i in range(8)]
LOGNORMAL = [f"lognormal_{i}" for i in range(4)]
POISSON = [f"count_{i}" for i in range(3)]
CATEGORICAL = [f"category_{i}" for i in range(5)]
SCHEMA = {**{n: "numeric" for n in NORMAL + LOGNORMAL + POISSON},
          **{n: "categorical" for n in CATEGORICAL}}
LEVELS = np.array(["a", "b", "c", "d", "e", "f"], dtype=object)
SHARES = np.array([0.40, 0.25, 0.15, 0.10, 0.06, 0.04])
LAMBDA = 3.0
RHO = 0.8
# The feature a seed's shift or variance change hits: a normal, a lognormal, a count.
ROTATION = (NORMAL[0], LOGNORMAL[0], POISSON[0])


@dataclass(frozen=True)
class Scenario:
    """A planted change: its name, what it does, and whether the bars require it."""

    name: str
    kind: str
    size: float = 0.0
    required: bool = True


SCENARIOS = (
    Scenario("mean shift 0.25σ", "mean", 0.25),
    Scenario("mean shift 0.5σ", "mean", 0.5),
    Scenario("mean shift 1σ", "mean", 1.0),
    Scenario("variance ×1.5", "variance", 1.5),
    Scenario("variance ×2", "variance", 2.0),
    Scenario("category share shift", "share", 0.10),
    Scenario("new category", "new_category", 0.05),
    Scenario("gradual 1σ over 10k", "gradual", 1.0),
    Scenario("joint (correlation flip)", "joint", required=False),
)


def drifted_features(scenario: Scenario, seed: int) -> list[str]:
    """Features a scenario changes in the run of ``seed``."""
    if scenario.kind in ("mean", "variance"):
        return [ROTATION[seed % len(ROTATION)]]
    if scenario.kind in ("share", "new_category"):
        return [CATEGORICAL[0]]
    if scenario.kind == "gradual":
        return [NORMAL[1]]
    if scenario.kind == "joint":
        return [NORMAL[2], NORMAL[3]]
    return []


def batches(seed: int, events: int, scenario: Scenario | None) -> Iterator[ColumnBatch]:
    """The stream of one run, ``BATCH`` events at a time (bounded memory)."""
    rng = np.random.default_rng(seed)
    target = drifted_features(scenario, seed) if scenario else []
    for start in range(0, events, BATCH):
        n = min(BATCH, events - start)
        index = np.arange(start, start + n)
        # 0 before the change, 1 after it (a ramp for the gradual scenario).
        weight = (index >= DRIFT_AT).astype(np.float64)
        if scenario is not None and scenario.kind == "gradual":
            weight = np.clip((index - DRIFT_AT) / GRADUAL_WIDTH, 0.0, 1.0)
        if scenario is None:
            weight[:] = 0.0
        normal = [rng.normal(10.0 * i, 1.0 + i, n) for i in range(len(NORMAL))]
        if scenario is not None and scenario.kind == "joint":
            # normal_3 = 30 + 4 (ρ z2 + √(1 - ρ²) e): both marginals stay N(·, ·) as before.
            base = (normal[2] - 20.0) / 3.0
            rho = np.where(weight > 0, -RHO, RHO)
            normal[3] = 30.0 + 4.0 * (rho * base + np.sqrt(1 - RHO**2) * rng.normal(size=n))
        columns: dict[str, Column] = {
            name: _numeric(values) for name, values in zip(NORMAL, normal, strict=True)}
        for name in LOGNORMAL:
            columns[name] = _numeric(rng.lognormal(0.0, 1.0, n))
        for name in POISSON:
            columns[name] = _numeric(rng.poisson(LAMBDA, n).astype(np.float64))
        for name in CATEGORICAL:
            columns[name] = CategoricalColumn(LEVELS[_draw(rng, SHARES, n)].tolist())
        if scenario is not None and scenario.kind != "joint" and weight.any():
            _plant(rng, scenario, target[0], columns, weight)
        yield ColumnBatch(ts=index.astype(np.float64), columns=columns)


def _numeric(values: NDArray[np.float64]) -> NumericColumn:
    return NumericColumn(values, np.zeros(values.size, dtype=np.bool_))


def _draw(rng: np.random.Generator, shares: NDArray[np.float64], n: int) -> NDArray[np.intp]:
    return np.searchsorted(np.cumsum(shares)[:-1], rng.random(n), side="right")


def _plant(rng: np.random.Generator, scenario: Scenario, name: str,
           columns: dict[str, Column], weight: NDArray[np.float64]) -> None:
    on = weight > 0
    column = columns[name]
    if scenario.kind in ("share", "new_category"):
        values = np.array(column.values, dtype=object)
        if scenario.kind == "share":
            # Ten points of the top category's share move to the third.
            moved = on & (values == "a") & (rng.random(on.size) < scenario.size / SHARES[0])
            values[moved] = "c"
        else:
            values[on & (rng.random(on.size) < scenario.size)] = "NEW"
        columns[name] = CategoricalColumn(values.tolist())
        return
    assert isinstance(column, NumericColumn)
    x = column.values.copy()
    kind = name.split("_")[0]
    if kind == "count":
        x[on] = _counts(rng, scenario, int(on.sum()))
    else:
        mean, sd = _moments(name)
        if scenario.kind in ("mean", "gradual"):
            x += weight * scenario.size * sd
        else:
            x[on] = mean + (x[on] - mean) * np.sqrt(scenario.size)
    columns[name] = _numeric(x)


def _counts(rng: np.random.Generator, scenario: Scenario, n: int) -> NDArray[np.float64]:
    if scenario.kind == "mean":
        # Counts shift by changing their rate, not by adding a fraction.
        return rng.poisson(LAMBDA + scenario.size * np.sqrt(LAMBDA), n).astype(np.float64)
    # Same mean, variance × size: a negative binomial.
    p = 1.0 / scenario.size
    return rng.negative_binomial(LAMBDA * p / (1.0 - p), p, n).astype(np.float64)


def _moments(name: str) -> tuple[float, float]:
    if name.startswith("lognormal"):
        return float(np.exp(0.5)), float(np.sqrt((np.e - 1.0) * np.e))
    i = int(name.split("_")[1])
    return 10.0 * i, 1.0 + i


def _event_of(report: WindowReport, config: MonitorConfig) -> int:
    return config.reference_size + report.index * config.window_size + report.events - 1


@dataclass
class RunResult:
    """What one run of one scenario produced."""

    detected_at: int | None
    false_alarms: int
    events: int
    update_seconds: float = 0.0
    update_events: int = 0
    update_cpu_seconds: float = 0.0
    sort_seconds: float = 0.0
    sort_events: int = 0
    closing_seconds: float = 0.0
    """Part of ``update_seconds`` spent on batches that closed a window."""
    closing_batches: int = 0
    closing_events: int = 0


def run_one(seed: int, scenario: Scenario | None, events: int,
            config: MonitorConfig | None = None) -> RunResult:
    """Feed one run to a fresh default monitor; stop once the change is detected."""
    config = config or MonitorConfig()
    monitor = ModelMonitor(SCHEMA, {}, config)
    target = set(drifted_features(scenario, seed)) if scenario else set()
    if scenario is not None and scenario.kind == "joint":
        target.add(JOINT)
    alarmed: set[tuple[int, str]] = set()
    detected_at: int | None = None
    false_alarms = fed = update_events = sort_events = closing_batches = closing_events = 0
    seconds = cpu_seconds = sort_seconds = closing_seconds = 0.0
    for number, batch in enumerate(batches(seed, events, scenario)):
        timed = monitor.reference_complete
        started, cpu_started = time.perf_counter(), time.process_time()
        reports = monitor.update_many(batch)
        if timed:
            elapsed = time.perf_counter() - started
            seconds += elapsed
            cpu_seconds += time.process_time() - cpu_started
            update_events += len(batch)
            if any(not report.partial for report in reports):
                closing_seconds += elapsed
                closing_batches += 1
                closing_events += len(batch)
            if number % 10 == 0:
                sort_seconds += _sort_seconds(batch)
                sort_events += len(batch)
        fed += len(batch)
        for report in reports:
            event = _event_of(report, config)
            for finding in report.drifted:
                key = (report.index, finding.feature)
                if not report.partial and finding.result.detector.startswith("cusum") \
                        and key in alarmed:
                    continue  # the window's summary of an alarm already counted
                if report.partial:
                    alarmed.add(key)
                if finding.feature in target and event >= DRIFT_AT:
                    detected_at = event if detected_at is None else min(detected_at, event)
                else:
                    false_alarms += 1
        if detected_at is not None:
            break
    return RunResult(detected_at, false_alarms, fed - config.reference_size, seconds,
                     update_events, cpu_seconds, sort_seconds, sort_events, closing_seconds,
                     closing_batches, closing_events)


def _sort_seconds(batch: ColumnBatch) -> float:
    """Wall time of a plain np.sort of the batch's numeric columns (the reference cost)."""
    numeric = np.array([column.values for column in batch.columns.values()
                        if isinstance(column, NumericColumn)])
    started = time.perf_counter()
    np.sort(numeric, axis=1)
    return time.perf_counter() - started


def run_feature_bench(out: IO[str] = sys.stdout, stationary_events: int = 10_000_000,
                      seeds: int = 3, after: int = AFTER) -> list[dict[str, Any]]:
    """Run every scenario over ``seeds`` seeds plus a stationary stream per seed; print a table.

    Returns one row per scenario (and one for the stationary stream and the
    update cost) as plain dicts.
    """
    rows: list[dict[str, Any]] = []
    _print_header(out)
    for scenario in SCENARIOS:
        length = DRIFT_AT + after + (GRADUAL_WIDTH if scenario.kind == "gradual" else 0)
        results = [run_one(seed, scenario, length) for seed in range(seeds)]
        delays = [r.detected_at - DRIFT_AT for r in results if r.detected_at is not None]
        rows.append(_row(scenario.name, scenario.required, results, delays,
                         sorted({f for s in range(seeds) for f in drifted_features(scenario, s)})))
        _print_row(out, rows[-1])
    stationary = [run_one(seed, None, stationary_events) for seed in range(seeds)]
    rows.append(_row("stationary", True, stationary, [], []))
    _print_row(out, rows[-1])
    rows.append(_cost_row(stationary, MonitorConfig().window_size))
    _print_cost(out, rows[-1])
    return rows


def _cost_row(runs: list[RunResult], window_size: int) -> dict[str, Any]:
    """Update cost per event over the runs: min and median of wall and CPU time, and the sort.

    Also split, per run, into batches that only fed the detectors and batches that
    also closed a window: the window's evaluation (every test's verdict and its
    explanation) costs the difference between the two kinds of batch.
    """
    timed = [run for run in runs if run.update_events]

    def per_event(seconds: list[float], events: list[int]) -> list[float]:
        return [1e6 * s / e for s, e in zip(seconds, events, strict=True) if e]

    wall = per_event([r.update_seconds for r in timed], [r.update_events for r in timed])
    cpu = per_event([r.update_cpu_seconds for r in timed], [r.update_events for r in timed])
    sort = per_event([r.sort_seconds for r in timed], [r.sort_events for r in timed])
    ratios = [w / s for w, s in zip(wall, sort, strict=True) if s > 0]
    split = [r for r in timed if r.closing_batches and r.update_events > r.closing_events]
    feeding = per_event([r.update_seconds - r.closing_seconds for r in split],
                        [r.update_events - r.closing_events for r in split])
    # Extra µs of a closing batch over a feeding one, per event of the batch, spread over
    # the window's events.
    closing = [1e6 * r.closing_seconds / r.closing_events - feed
               for r, feed in zip(split, feeding, strict=True)]
    evaluation = [extra * (r.closing_events / r.closing_batches) / window_size
                  for r, extra in zip(split, closing, strict=True)]
    return {
        "scenario": "update cost", "events": sum(r.update_events for r in timed),
        "runs": len(timed), "batch": BATCH, "features": len(SCHEMA),
        "us_per_event": statistics.median(wall) if wall else 0.0,
        "us_per_event_min": min(wall, default=0.0),
        "cpu_us_per_event": statistics.median(cpu) if cpu else 0.0,
        "cpu_us_per_event_min": min(cpu, default=0.0),
        "sort_us_per_event": statistics.median(sort) if sort else 0.0,
        "sorts_per_update": statistics.median(ratios) if ratios else 0.0,
        "window_size": window_size,
        "feeding_us_per_event": statistics.median(feeding) if feeding else 0.0,
        "feeding_us_per_event_min": min(feeding, default=0.0),
        "evaluation_us_per_event": statistics.median(evaluation) if evaluation else 0.0,
    }


def _print_cost(out: IO[str], row: dict[str, Any]) -> None:
    print(f"\nModelMonitor.update_many, {row['batch']}-event batches × {row['features']} "
          f"features (all detectors), {row['events']:,} post-reference events in "
          f"{row['runs']} runs:\n"
          f"  wall {row['us_per_event_min']:.2f} µs/event (min of runs; median "
          f"{row['us_per_event']:.2f}), CPU {row['cpu_us_per_event_min']:.2f} µs/event "
          f"(median {row['cpu_us_per_event']:.2f})\n"
          f"  of which feeding the detectors {row['feeding_us_per_event_min']:.2f} µs/event "
          f"(min; median {row['feeding_us_per_event']:.2f}) and evaluating each closed "
          f"{row['window_size']:,}-event window {row['evaluation_us_per_event']:.2f} µs/event "
          f"(median)\n"
          f"  same runs, np.sort of a batch's 15 numeric columns: "
          f"{row['sort_us_per_event']:.3f} µs/event (median); the update costs "
          f"{row['sorts_per_update']:.0f} such sorts (median)", file=out)


def _row(name: str, required: bool, results: list[RunResult], delays: list[int],
         features: list[str]) -> dict[str, Any]:
    events = sum(r.events for r in results)
    alarms = sum(r.false_alarms for r in results)
    return {
        "scenario": name, "required": required, "features": features, "runs": len(results),
        "detected": len(delays), "mean_delay": float(np.mean(delays)) if delays else None,
        "max_delay": max(delays) if delays else None, "false_alarms": alarms,
        "events": events, "false_alarms_per_million": 1e6 * alarms / max(events, 1),
    }


_COLUMNS = ("scenario", "changed feature(s)", "detected", "mean delay", "max delay",
            "false alarms", "per 1M events")


def _print_header(out: IO[str]) -> None:
    print(f"{_COLUMNS[0]:<26} {_COLUMNS[1]:<28} {_COLUMNS[2]:>9} {_COLUMNS[3]:>10} "
          f"{_COLUMNS[4]:>9} {_COLUMNS[5]:>12} {_COLUMNS[6]:>13}", file=out)


def _print_row(out: IO[str], row: dict[str, Any]) -> None:
    if row["scenario"] == "stationary":
        detected = "-"
    else:
        verdict = "y" if row["detected"] == row["runs"] else "n"
        detected = f"{verdict} {row['detected']}/{row['runs']}"
        if not row["required"]:
            detected += "*"
    mean = "-" if row["mean_delay"] is None else f"{row['mean_delay']:.0f}"
    top = "-" if row["max_delay"] is None else f"{row['max_delay']}"
    features = ", ".join(row["features"]) or f"none ({row['events']:,} events)"
    print(f"{row['scenario']:<26} {features:<28} {detected:>9} {mean:>10} {top:>9} "
          f"{row['false_alarms']:>12} {row['false_alarms_per_million']:>13.3f}", file=out)
    if not row["required"] and row["scenario"].startswith("joint"):
        print(f"{'':<26} * not required of univariate detectors: marginals are unchanged",
              file=out)


def main(argv: list[str] | None = None) -> int:
    """Command line: ``python -m streams.bench.features [--seeds N] [--stationary-events N]``."""
    parser = argparse.ArgumentParser(
        prog="python -m streams.bench.features",
        description="Feature-drift detection delays, false alarms and update cost of the monitor.")
    parser.add_argument("--seeds", type=int, default=3, help="runs per scenario (default 3)")
    parser.add_argument("--stationary-events", type=int, default=10_000_000,
                        help="events of each stationary run (default 10,000,000)")
    parser.add_argument("--after", type=int, default=AFTER,
                        help=f"events watched after each planted change (default {AFTER:,})")
    args = parser.parse_args(argv)
    run_feature_bench(stationary_events=args.stationary_events, seeds=args.seeds,
                      after=args.after)
    return 0


__all__ = ["SCENARIOS", "Scenario", "batches", "main", "run_feature_bench", "run_one"]

if __name__ == "__main__":
    sys.exit(main())
