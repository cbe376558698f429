"""Write a synthetic scenario to files: predictions.jsonl, labels.jsonl, truth.json."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import orjson

from detectors.synthetic import ScenarioSpec, iter_chunks, truth


@dataclass(frozen=True)
class SimulationFiles:
    """Where a simulation was written and how much it holds."""

    predictions: Path
    labels: Path
    truth: Path
    events: int
    label_count: int


def write_scenario(spec: ScenarioSpec, out_dir: Path) -> SimulationFiles:
    """Generate ``spec`` into ``out_dir`` (created if needed), one event per line."""
    out_dir.mkdir(parents=True, exist_ok=True)
    files = out_dir / "predictions.jsonl", out_dir / "labels.jsonl", out_dir / "truth.json"
    events = label_count = 0
    with files[0].open("wb") as predictions, files[1].open("wb") as labels:
        for chunk, chunk_labels in iter_chunks(spec):
            predictions.write(b"".join(orjson.dumps(e) + b"\n" for e in chunk))
            labels.write(b"".join(orjson.dumps(e) + b"\n" for e in chunk_labels))
            events += len(chunk)
            label_count += len(chunk_labels)
    files[2].write_bytes(orjson.dumps(truth(spec), option=orjson.OPT_INDENT_2))
    return SimulationFiles(*files, events, label_count)
