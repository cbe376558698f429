"""``driftline bench quality`` — concept drift: error-stream detectors on river's synthetic streams.

The setup of Barros & Santos (2018), "A large-scale comparison of concept drift
detectors": river's SEA (10 % label noise), Agrawal, Hyperplane and STAGGER
generators, each with three drifts at a quarter, half and three quarters of the
stream, abrupt or gradual (sigmoid mixing over ``gradual_width`` events). A
river ``GaussianNB`` learns prequentially (predict, then learn) and its 0/1
errors feed the detector; when the detector signals, the learner is replaced by
a fresh one (detect-and-reset). The error stream therefore depends on the
detector, so every detector runs its own learner over the same events.

Scoring, per Barros & Santos: the first detection within ``tolerance`` events
after a drift's start (plus its width if gradual) is a true positive, every
other detection a false positive, every undetected drift a false negative;
MCC treats each event as a sample (``TN = events − TP − FP − FN``), summed over
seeds. Delays are from the drift's start. µs/event times the detector's
``update`` alone, replaying the first ``timing_events`` values of its error
stream.

river's KSWIN is wrapped and can be run (``detectors=``, or
``--concept-detectors`` on the command line) but is not in the default run:
it runs a scipy KS test on every update (~600 µs/event, 300× the others), which
would add ~25 minutes per core to the default 3 seeds × 100,000 events.

river's ``ConceptDriftStream`` overflows when a drift's position exceeds ~177×
its width, so the mixing is done here (:func:`drifting_stream`). The learner
predicts by the arg-max of ``joint_log_likelihood``: the same class as
``predict_one`` without its scipy ``logsumexp`` normalisation (~6× faster).
"""

from __future__ import annotations

import math
import os
import random
import sys
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from typing import IO, Any, Protocol

import numpy as np
from river import naive_bayes
from river.datasets import synth

from detectors.concept import (
    DEFAULT_ERROR_DETECTOR,
    ErrorStreamDetector,
    RiverADWIN,
    RiverDDM,
    RiverEDDM,
    RiverHDDMA,
    RiverHDDMW,
    RiverKSWIN,
    RiverPageHinkley,
)

Sample = tuple[dict[Any, Any], Any]
OURS = "driftline"
TOLERANCE = 2_000
GRADUAL_WIDTH = 1_000
TIMING_EVENTS = 10_000


@dataclass(frozen=True)
class Drift:
    """A concept change starting at ``start`` and spread over ``width`` events (0: abrupt)."""

    start: int
    width: int

    def share(self, t: int) -> float:
        """Probability that event ``t`` comes from the new concept.

        A sigmoid centred on the middle of the drift, 1.8 % at its start and
        98.2 % at its end (river's sigmoid with river's ``width`` = ``width / 2``,
        so that the change happens inside the scored window, not before it).
        """
        if self.width == 0:
            return 1.0 if t >= self.start else 0.0
        z = -8.0 * (t - (self.start + self.width / 2)) / self.width
        return 1.0 / (1.0 + math.exp(min(z, 700.0)))


def _concepts(stream: str, seed: int) -> list[Iterator[Sample]]:
    """The four successive concepts of a stream, each an endless river generator."""
    if stream == "sea":
        generators: list[Any] = [synth.SEA(variant=v, noise=0.1, seed=seed * 10 + v)
                                 for v in (0, 1, 2, 3)]
    elif stream == "agrawal":
        generators = [synth.Agrawal(classification_function=f, seed=seed * 10 + i)
                      for i, f in enumerate((0, 2, 4, 6))]
    elif stream == "hyperplane":
        # Each concept is a different random hyperplane (river's drift within a concept is off).
        generators = [synth.Hyperplane(seed=seed * 10 + i, n_features=10) for i in range(4)]
    elif stream == "stagger":
        generators = [synth.STAGGER(classification_function=f, seed=seed * 10 + i)
                      for i, f in enumerate((0, 1, 2, 0))]
    else:
        raise ValueError(f"stream: expected one of {STREAMS}, got {stream!r}")
    return [iter(generator) for generator in generators]


STREAMS = ("sea", "agrawal", "hyperplane", "stagger")
KINDS = ("abrupt", "gradual")


def drift_schedule(events: int, kind: str, gradual_width: int = GRADUAL_WIDTH) -> list[Drift]:
    """Three drifts at 1/4, 1/2 and 3/4 of the stream."""
    width = 0 if kind == "abrupt" else min(gradual_width, events // 20)
    return [Drift(events * k // 4 - width // 2, width) for k in (1, 2, 3)]


def drifting_stream(concepts: list[Iterator[Sample]], drifts: list[Drift], events: int,
                    seed: int) -> list[Sample]:
    """Mix successive concepts: event ``t`` passes drift ``k`` with probability ``share(t)``."""
    rng = random.Random(seed)
    samples = []
    for t in range(events):
        concept = 0
        for drift in drifts:
            if rng.random() >= drift.share(t):
                break
            concept += 1
        samples.append(next(concepts[concept]))
    return samples


def detector_factories(seed: int) -> dict[str, Callable[[], ErrorStreamDetector]]:
    """River's detectors with river's defaults, and ours (``OURS``); keys are the names."""
    return {
        "ADWIN": RiverADWIN, "DDM": RiverDDM, "EDDM": RiverEDDM, "HDDM_A": RiverHDDMA,
        "HDDM_W": RiverHDDMW, "PageHinkley": RiverPageHinkley,
        "KSWIN": lambda: RiverKSWIN(seed=seed), OURS: DEFAULT_ERROR_DETECTOR,
    }


DETECTORS = tuple(detector_factories(0))
"""Every detector the bench knows, by name."""
DEFAULT_DETECTORS = tuple(name for name in DETECTORS if name != "KSWIN")
"""The detectors of the default run (KSWIN is too slow for it, see the module docstring)."""


class _Learner(Protocol):
    """What the bench uses of river's ``GaussianNB`` (which river leaves unannotated)."""

    def joint_log_likelihood(self, x: dict[Any, Any]) -> dict[Any, float]: ...

    def learn_one(self, x: dict[Any, Any], y: Any) -> None: ...


def _gaussian_nb() -> _Learner:
    """A fresh river ``GaussianNB``, seen through :class:`_Learner`."""
    factory: Callable[[], _Learner] = naive_bayes.GaussianNB
    return factory()


def run_learner(samples: list[Sample], detector: ErrorStreamDetector) -> tuple[list[int], bytes]:
    """Prequential GaussianNB under detect-and-reset; the detections and the error stream."""
    learner = _gaussian_nb()
    detections: list[int] = []
    errors = bytearray(len(samples))
    for t, (x, y) in enumerate(samples):
        likelihood = learner.joint_log_likelihood(x)
        wrong = not likelihood or max(likelihood, key=likelihood.__getitem__) != y
        errors[t] = wrong
        if detector.update(1.0 if wrong else 0.0):
            detections.append(t)
            learner = _gaussian_nb()
        learner.learn_one(x, y)
    return detections, bytes(errors)


def time_updates(factory: Callable[[], ErrorStreamDetector], errors: bytes) -> float:
    """µs per ``update`` of a fresh detector over ``errors``."""
    detector = factory()
    values = [float(e) for e in errors]
    update = detector.update
    start = time.perf_counter()
    for value in values:
        update(value)
    return (time.perf_counter() - start) / max(len(values), 1) * 1e6


def _run_task(stream: str, kind: str, seed: int, events: int, names: tuple[str, ...],
              gradual_width: int, timing_events: int) -> list[dict[str, Any]]:
    drifts = drift_schedule(events, kind, gradual_width)
    samples = drifting_stream(_concepts(stream, seed), drifts, events, seed)
    factories = detector_factories(seed)
    results = []
    for name in names:
        detections, errors = run_learner(samples, factories[name]())
        results.append({"stream": f"{stream}/{kind}", "detector": name, "seed": seed,
                        "detections": detections, "error_rate": sum(errors) / len(errors),
                        "us_per_event": time_updates(factories[name], errors[:timing_events])})
    return results


def score(detections: list[int], drifts: list[Drift], tolerance: int = TOLERANCE) -> dict[str, Any]:
    """TP/FP/FN and delays of one run (first detection in a drift's window is the TP)."""
    delays: list[int | None] = [None] * len(drifts)
    false_positives = 0
    for t in detections:
        hit = next((i for i, d in enumerate(drifts)
                    if d.start <= t <= d.start + d.width + tolerance and delays[i] is None), None)
        if hit is None:
            false_positives += 1
        else:
            delays[hit] = t - drifts[hit].start
    found = [d for d in delays if d is not None]
    return {"tp": len(found), "fp": false_positives, "fn": len(drifts) - len(found),
            "delays": found}


def mcc(tp: int, fp: int, fn: int, tn: int) -> float:
    """Matthews correlation coefficient (0 when a margin is empty)."""
    denominator = math.sqrt(float(tp + fp) * (tp + fn) * (tn + fp) * (tn + fn))
    return (tp * tn - fp * fn) / denominator if denominator else 0.0


def _aggregate(runs: list[dict[str, Any]], events: int, gradual_width: int) -> list[dict[str, Any]]:
    rows = []
    keys = sorted({(r["stream"], r["detector"]) for r in runs})
    for stream, name in keys:
        mine = [r for r in runs if r["stream"] == stream and r["detector"] == name]
        drifts = drift_schedule(events, stream.split("/")[1], gradual_width)
        scores = [score(r["detections"], drifts) for r in mine]
        tp, fp, fn = (sum(s[key] for s in scores) for key in ("tp", "fp", "fn"))
        delays = [d for s in scores for d in s["delays"]]
        total = events * len(mine)
        rows.append({
            "stream": stream, "detector": name, "ours": name == OURS, "seeds": len(mine),
            "events": events, "drifts": len(drifts) * len(mine), "tp": tp, "fp": fp, "fn": fn,
            "tn": total - tp - fp - fn, "mcc": mcc(tp, fp, fn, total - tp - fp - fn),
            "mean_delay": float(np.mean(delays)) if delays else math.nan,
            "max_delay": max(delays) if delays else math.nan,
            "false_alarms_per_million": fp / total * 1e6,
            "error_rate": float(np.mean([r["error_rate"] for r in mine])),
            "us_per_event": float(np.median([r["us_per_event"] for r in mine])),
        })
    return rows


def verdict(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Whether ours has an MCC ≥ the best river detector's and a mean delay ≤ that detector's."""
    ours = next(r for r in rows if r["ours"])
    river = [r for r in rows if not r["ours"]]
    # Among river detectors tied on the best MCC, the fastest sets the bar.
    best = min(river, key=lambda r: (-round(r["mcc"], 12), _or_inf(r["mean_delay"])))
    met = ours["mcc"] >= best["mcc"] - 1e-12 and (
        math.isnan(best["mean_delay"]) or _or_inf(ours["mean_delay"]) <= best["mean_delay"])
    return {"stream": ours["stream"], "best_river": best["detector"], "best_river_mcc": best["mcc"],
            "best_river_delay": best["mean_delay"], "ours_mcc": ours["mcc"],
            "ours_delay": ours["mean_delay"], "met": met}


def _or_inf(value: float) -> float:
    return math.inf if math.isnan(value) else value


def format_table(rows: list[dict[str, Any]]) -> str:
    """One stream's rows as a text table, best MCC first, with the verdict line."""
    first = rows[0]
    lines = [f"== {first['stream']}: {first['seeds']} seed(s) × {first['events']:,} events, "
             f"{first['drifts']} drifts, GaussianNB, detect-and-reset",
             f"{'detector':<12} {'MCC':>6} {'TP':>3} {'FP':>4} {'FN':>3} {'mean delay':>10} "
             f"{'max delay':>9} {'FA/1M':>7} {'err rate':>8} {'µs/event':>8}"]
    for r in sorted(rows, key=lambda r: (-r["mcc"], _or_inf(r["mean_delay"]))):
        name = r["detector"] + ("*" if r["ours"] else "")
        lines.append(
            f"{name:<12} {r['mcc']:>6.3f} {r['tp']:>3} {r['fp']:>4} {r['fn']:>3} "
            f"{r['mean_delay']:>10.0f} {r['max_delay']:>9.0f} "
            f"{r['false_alarms_per_million']:>7.1f} {r['error_rate']:>8.3f} "
            f"{r['us_per_event']:>8.2f}")
    v = verdict(rows)
    lines.append(f"ours (*) MCC {v['ours_mcc']:.3f} vs best river {v['best_river']} "
                 f"{v['best_river_mcc']:.3f}; delay {v['ours_delay']:.0f} vs "
                 f"{v['best_river_delay']:.0f}: {'MET' if v['met'] else 'NOT MET'}")
    return "\n".join(lines)


def run_concept_bench(seeds: int = 3, events: int = 100_000, out: IO[str] | None = sys.stdout,
                      *, streams: tuple[str, ...] = STREAMS, kinds: tuple[str, ...] = KINDS,
                      detectors: tuple[str, ...] | None = None, workers: int | None = None,
                      gradual_width: int = GRADUAL_WIDTH,
                      timing_events: int = TIMING_EVENTS) -> list[dict[str, Any]]:
    """Run the concept-drift benchmark; print a table per stream; return stream×detector rows.

    ``detectors`` names the river detectors to run (default: ``DEFAULT_DETECTORS``); ours
    always runs. ``workers`` processes share the (stream, kind, seed) tasks (default: one
    per CPU; ``1`` runs in this process).
    """
    names = tuple(detectors) if detectors is not None else DEFAULT_DETECTORS
    unknown = sorted(set(names) - set(DETECTORS))
    if unknown:
        raise ValueError(f"detectors: expected names among {DETECTORS}, got {unknown}")
    if OURS not in names:
        names += (OURS,)
    tasks = [(stream, kind, seed, events, names, gradual_width, timing_events)
             for stream in streams for kind in kinds for seed in range(seeds)]
    workers = workers or os.cpu_count() or 1
    started = time.perf_counter()
    runs: list[dict[str, Any]] = []
    if workers == 1:
        for task in tasks:
            runs.extend(_run_task(*task))
    else:
        with ProcessPoolExecutor(max_workers=workers) as pool:
            for result in pool.map(_run_task, *zip(*tasks, strict=True)):
                runs.extend(result)
    rows = _aggregate(runs, events, gradual_width)
    if out is not None:
        for stream in dict.fromkeys(r["stream"] for r in rows):
            print(format_table([r for r in rows if r["stream"] == stream]), file=out)
            print(file=out)
        met = [verdict([r for r in rows if r["stream"] == s])["met"]
               for s in dict.fromkeys(r["stream"] for r in rows)]
        skipped = [name for name in DETECTORS if name not in names]
        print(f"ours met the bar on {sum(met)}/{len(met)} streams; "
              f"{time.perf_counter() - started:.0f} s with {workers} worker(s)"
              + (f"; not run: {', '.join(skipped)}" if skipped else ""), file=out)
    return rows


if __name__ == "__main__":
    run_concept_bench()
