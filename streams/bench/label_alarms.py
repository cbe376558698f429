"""``driftline bench quality`` — false alarms of the label-side alarms on stationary streams.

The label side's budget is the feature side's: at most one false alarm per
10M labelled events per model, whatever the model's error rate and whatever
share of its predictions get a label. This bench measures it. For each base
error rate ``r`` and label coverage a calibrated binary classifier makes
predictions: the error probability of each is ``0.5 · U**k`` with ``U`` uniform
and ``k = 0.5 / r − 1`` (mean ``r``), its confidence is one minus that, and it
is wrong with exactly that probability, so nothing ever changes. Each prediction is labelled with
probability ``coverage``. Every prediction goes to a
:class:`~detectors.performance.estimation.LabelFreeEstimator`, every labelled
one to a :class:`~detectors.performance.monitor.PerformanceMonitor` (default
settings, no challengers); the bench counts the findings that would alert:

* ``performance``: a window's accuracy or log-loss test,
* ``concept_drift``: a signal of the error-stream detector,
* ``estimated_performance``: a window's label-free estimate test,

each window or signal once (the alert policy would merge many into fewer
alerts, so these counts are an upper bound on alerts). Figures are per 10M
*labelled* events: at 30 % coverage that is 33M predictions for the estimator.
"""

from __future__ import annotations

import os
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from typing import IO, Any

import numpy as np

from detectors.performance import (
    EstimationConfig,
    LabelFreeEstimator,
    LabelledBatch,
    PerformanceConfig,
    PerformanceMonitor,
)

RATES = (0.01, 0.05, 0.1, 0.2, 0.4)
COVERAGES = (0.3, 0.6, 1.0)
LABELLED_EVENTS = 10_000_000
KINDS = ("performance", "concept_drift", "estimated_performance")
PER = 10_000_000
# Predictions generated per step (bounds the bench's memory).
_CHUNK = 500_000
_CLASSES = np.array(["0", "1"], dtype=object)


def predictions(rng: np.random.Generator, rate: float,
                n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """``n`` predictions of a calibrated classifier with error rate ``rate``.

    Returns the true classes, the predicted classes (object arrays of ``"0"``/``"1"``),
    the positive-class scores and the confidences.

    Examples
    --------
    >>> truth, predicted, score, confidence = predictions(np.random.default_rng(1), 0.2, 100_000)
    >>> round(float(np.mean(truth != predicted)), 2), round(float(np.mean(1 - confidence)), 2)
    (0.2, 0.2)

    """
    wrong_probability = 0.5 * rng.random(n) ** (0.5 / rate - 1.0)
    confidence = 1.0 - wrong_probability
    predicted = rng.random(n) < 0.5
    wrong = rng.random(n) < wrong_probability
    truth = predicted ^ wrong
    score = np.where(predicted, confidence, wrong_probability)
    return _CLASSES[truth.astype(np.int64)], _CLASSES[predicted.astype(np.int64)], score, confidence


def run_cell(rate: float, coverage: float, labelled_events: int, seed: int) -> dict[str, Any]:
    """Feed one stationary stream until ``labelled_events`` are labelled; count the alarms."""
    rng = np.random.default_rng(seed)
    monitor = PerformanceMonitor("classification", PerformanceConfig(challengers=()))
    estimator = LabelFreeEstimator(EstimationConfig())
    counts = dict.fromkeys(KINDS, 0)
    labelled = produced = 0
    started = time.perf_counter()
    while labelled < labelled_events:
        # Enough predictions for the labels still wanted, most of the time, and no more.
        n = min(_CHUNK, int((labelled_events - labelled) / coverage * 1.05) + 100)
        truth, predicted, score, confidence = predictions(rng, rate, n)
        ts = produced + np.arange(n, dtype=np.float64)
        produced += n
        rows = np.flatnonzero(rng.random(n) < coverage)[:labelled_events - labelled]
        labelled += rows.size
        for report in estimator.update_many(ts, confidence):
            counts["estimated_performance"] += sum(f.result.drift for f in report.findings)
        batch = LabelledBatch(ts=ts[rows], y_true=truth[rows], y_pred=predicted[rows],
                              score=score[rows], confidence=confidence[rows])
        for report in monitor.update_many(batch):
            for finding in report.findings:
                # A window's report repeats the concept signals already counted as partial.
                if finding.result.drift and (report.partial or finding.kind != "concept_drift"):
                    counts[finding.kind] += 1
    return {"rate": rate, "coverage": coverage, "seed": seed, "labelled": labelled,
            "predictions": produced, "seconds": time.perf_counter() - started,
            "error_rate": 1.0 - monitor.metrics()["since_reference"]["accuracy"], **counts}


def _aggregate(runs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    rows = []
    for rate, coverage in dict.fromkeys((r["rate"], r["coverage"]) for r in runs):
        mine = [r for r in runs if r["rate"] == rate and r["coverage"] == coverage]
        labelled = sum(r["labelled"] for r in mine)
        counts = {kind: sum(r[kind] for r in mine) for kind in KINDS}
        alarms = sum(counts.values())
        rows.append({"rate": rate, "coverage": coverage, "seeds": len(mine),
                     "labelled": labelled, "predictions": sum(r["predictions"] for r in mine),
                     "error_rate": float(np.mean([r["error_rate"] for r in mine])),
                     **counts, "alarms": alarms, "per_10m": alarms / labelled * PER,
                     "us_per_labelled": 1e6 * sum(r["seconds"] for r in mine) / labelled})
    return rows


def format_table(rows: list[dict[str, Any]]) -> str:
    """The table of false alarms per 10M labelled events, one row per rate × coverage."""
    lines = [f"{'error':>6} {'coverage':>8} {'labelled':>12} {'predictions':>12} "
             f"{'measured':>8} {'perf':>5} {'concept':>7} {'estimate':>8} {'per 10M':>8} "
             f"{'µs/label':>8}"]
    for r in rows:
        lines.append(
            f"{r['rate']:>6.0%} {r['coverage']:>8.0%} {r['labelled']:>12,} "
            f"{r['predictions']:>12,} {r['error_rate']:>8.3f} {r['performance']:>5} "
            f"{r['concept_drift']:>7} {r['estimated_performance']:>8} {r['per_10m']:>8.2f} "
            f"{r['us_per_labelled']:>8.2f}")
    return "\n".join(lines)


def run_label_alarm_bench(labelled_events: int = LABELLED_EVENTS, seeds: int = 1,
                          out: IO[str] | None = sys.stdout, *,
                          rates: tuple[float, ...] = RATES,
                          coverages: tuple[float, ...] = COVERAGES,
                          workers: int | None = None) -> list[dict[str, Any]]:
    """Measure false alarms per 10M labelled events on stationary streams; print the table.

    ``labelled_events`` per (rate, coverage, seed) cell; ``workers`` processes share the
    cells (default: one per CPU; ``1`` runs in this process). Returns one row per cell
    with the counts per alarm kind, ``alarms`` and ``per_10m``.
    """
    for name, values in (("rates", rates), ("coverages", coverages)):
        if not values or not all(0.0 < v <= (0.5 if name == "rates" else 1.0) for v in values):
            limit = "(0, 0.5)" if name == "rates" else "(0, 1]"
            raise ValueError(f"{name}: expected values in {limit}, got {values!r}")
    if labelled_events < 1 or seeds < 1:
        raise ValueError(f"labelled_events and seeds: expected >= 1, got "
                         f"{labelled_events!r}, {seeds!r}")
    cells = [(rate, coverage, labelled_events, 1000 * i + seed)
             for i, (rate, coverage) in enumerate((r, c) for r in rates for c in coverages)
             for seed in range(seeds)]
    workers = workers or os.cpu_count() or 1
    started = time.perf_counter()
    if workers == 1:
        runs = [run_cell(*cell) for cell in cells]
    else:
        with ProcessPoolExecutor(max_workers=workers) as pool:
            runs = list(pool.map(run_cell, *zip(*cells, strict=True)))
    rows = _aggregate(runs)
    if out is not None:
        worst = max(r["per_10m"] for r in rows)
        print(f"== stationary error streams: false alarms per 10M labelled events per model "
              f"({seeds} seed(s) × {labelled_events:,} labelled events per cell; calibrated "
              f"classifier, labels at random)", file=out)
        print(format_table(rows), file=out)
        print(f"worst cell {worst:.2f} per 10M labelled events (budget 1): "
              f"{'MET' if worst <= 1.0 else 'NOT MET'}; "
              f"{time.perf_counter() - started:.0f} s with {workers} worker(s)", file=out)
        print(file=out)
    return rows
