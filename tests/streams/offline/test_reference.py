"""Reference files: build from CSV / JSON lines / Parquet, load, restore a monitor that alerts."""

from __future__ import annotations

import argparse
import csv
import hashlib
import sys
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import pytest

from detectors.monitor import ModelMonitor, MonitorConfig
from streams.ingest.columnar import build_batch
from streams.offline.reference import (
    ReferenceFileError,
    add_reference_commands,
    build_reference,
    load_reference,
    write_reference,
)
from streams.settings import ModelSettings, Settings

REFERENCE_SIZE = 1000
WINDOW_SIZE = 500
SETTINGS = Settings(monitor=MonitorConfig(reference_size=REFERENCE_SIZE, window_size=WINDOW_SIZE))


def training_rows(rng: np.random.Generator, n: int, income_shift: float = 0.0,
                  ) -> list[dict[str, Any]]:
    income = rng.normal(50.0 + income_shift, 10.0, n)
    balance = rng.normal(5.0, 2.0, n)
    region = rng.choice(["north", "south", "east"], n, p=[0.5, 0.3, 0.2])
    score = 1.0 / (1.0 + np.exp(-(income - 50.0) / 10.0))
    return [{"income": round(float(income[i]), 3),
             "balance": None if i % 50 == 7 else round(float(balance[i]), 3),
             "region": str(region[i]),
             "prediction": "approve" if score[i] > 0.5 else "decline",
             "score": round(float(score[i]), 4)} for i in range(n)]


def write_csv(path: Path, rows: list[dict[str, Any]]) -> Path:
    with path.open("w", newline="") as file:
        writer = csv.DictWriter(file, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows([{k: "" if v is None else v for k, v in row.items()} for row in rows])
    return path


def as_events(rows: list[dict[str, Any]], model_id: str = "credit",
              version: str = "v1") -> list[dict[str, Any]]:
    return [{"model_id": model_id, "model_version": version, "event_id": f"e{i}", "ts": 1e9 + i,
             "features": {k: row[k] for k in ("income", "balance", "region")},
             "prediction": row["prediction"], "score": row["score"]}
            for i, row in enumerate(rows)]


def write_jsonl(path: Path, lines: list[Any]) -> Path:
    path.write_bytes(b"".join(orjson.dumps(line) + b"\n" for line in lines))
    return path


def restored_monitor(reference_path: Path) -> ModelMonitor:
    return ModelMonitor.from_state(load_reference(reference_path, SETTINGS)["monitor"])


def test_csv_build_write_load_round_trip(tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    train = write_csv(tmp_path / "train.csv", training_rows(rng, 1500))
    reference = build_reference(train, "credit", None, SETTINGS)
    write_reference(reference, tmp_path / "ref.json")
    loaded = load_reference(tmp_path / "ref.json", SETTINGS)
    assert loaded == orjson.loads(orjson.dumps(reference))
    assert loaded["version"] == 1
    assert (loaded["model_id"], loaded["model_version"]) == ("credit", None)
    source = loaded["source"]
    assert source["format"] == "csv"
    assert source["path"] == str(train.resolve())
    assert source["sha256"] == hashlib.sha256(train.read_bytes()).hexdigest()
    assert source["rows"] == REFERENCE_SIZE
    assert REFERENCE_SIZE <= source["rows_read"] < 1500  # reading stops once the reference is full
    assert source["rejected"] == 0
    assert source["features"] == {"income": "numeric", "balance": "numeric",
                                  "region": "categorical"}
    assert source["outputs"] == {"prediction": "categorical", "score": "numeric"}
    monitor = ModelMonitor.from_state(loaded["monitor"])
    assert monitor.reference_complete and monitor.events == REFERENCE_SIZE


def test_jsonl_events_arrays_flat_records_other_models_and_bad_lines(tmp_path: Path) -> None:
    rng = np.random.default_rng(2)
    events = as_events(training_rows(rng, 1200))
    lines: list[Any] = events[:400]
    lines.append(events[400:600])  # one line holding an array of events, as a Kafka message may
    lines += [{"model_id": "credit", "ts": 1e9, **{k: v for k, v in row.items()}}
              for row in training_rows(rng, 300)]  # flat records
    lines += as_events(training_rows(rng, 100), model_id="fraud")
    lines += [{**event, "features": {**event["features"], "income": "lots"}}
              for event in events[600:610]]  # wrong type: dropped like on the live path
    lines += events[610:]
    path = write_jsonl(tmp_path / "train.jsonl", lines)
    with path.open("ab") as file:
        file.write(b"{not json\n")
    reference = build_reference(path, "credit", "v1", SETTINGS)
    source = reference["source"]
    assert source["format"] == "jsonl"
    assert source["other_models"] == 100
    assert source["rejected"] == 10
    assert reference["model_version"] == "v1"
    monitor = ModelMonitor.from_state(reference["monitor"])
    assert monitor.reference_complete
    assert monitor.schema == {"income": "numeric", "balance": "numeric", "region": "categorical"}


def test_a_file_without_predictions_gives_a_features_only_reference(tmp_path: Path) -> None:
    rows = [{k: v for k, v in row.items() if k not in ("prediction", "score")}
            for row in training_rows(np.random.default_rng(3), 1100)]
    reference = build_reference(write_csv(tmp_path / "train.csv", rows), "credit", None,
                                SETTINGS)
    assert reference["source"]["outputs"] == {}
    assert ModelMonitor.from_state(reference["monitor"]).outputs == {}


def test_declared_categorical_features_keep_their_text(tmp_path: Path) -> None:
    rows = training_rows(np.random.default_rng(4), 1100)
    for i, row in enumerate(rows):
        row["zip"] = f"{10000 + i % 7}"
    settings = Settings(monitor=SETTINGS.monitor, models={"credit": ModelSettings(
        features={"income": "numeric", "zip": "categorical"})})
    reference = build_reference(write_csv(tmp_path / "train.csv", rows), "credit", None,
                                settings)
    assert reference["source"]["features"] == {"income": "numeric", "zip": "categorical"}
    vocabulary = reference["monitor"]["tests"]["drift"]["zip"]["state"]["reference_tally"]
    assert "10003" in vocabulary


@pytest.mark.parametrize("suffix", ["csv", "jsonl"])
def test_a_too_short_file_says_how_many_rows_it_has(tmp_path: Path, suffix: str) -> None:
    rows = training_rows(np.random.default_rng(5), 700)
    rows[3]["income"] = "n/a"  # CSV: text in a numeric column, rejected like on the live path
    path = (write_csv(tmp_path / "short.csv", rows) if suffix == "csv"
            else write_jsonl(tmp_path / "short.jsonl", as_events(rows)))
    with pytest.raises(ReferenceFileError) as error:
        build_reference(path, "credit", None, SETTINGS)
    message = str(error.value)
    assert message.startswith(f"{path}: 699 usable rows for model 'credit', but the reference "
                              f"needs 1,000 (monitor.reference_size); 700 rows read")
    assert "1 rejected (1 wrong_type; e.g. " in message
    if suffix == "jsonl":  # events name their model; CSV rows without model_id belong to any
        with pytest.raises(ReferenceFileError, match="0 usable rows for model 'other'.*700 of "
                                                     "other models or versions skipped"):
            build_reference(path, "other", None, SETTINGS)


def test_restored_monitor_reports_drift_on_the_shifted_feature_only(tmp_path: Path) -> None:
    rng = np.random.default_rng(6)
    train = write_csv(tmp_path / "train.csv", training_rows(rng, 2000))
    write_reference(build_reference(train, "credit", None, SETTINGS), tmp_path / "ref.json")
    monitor = restored_monitor(tmp_path / "ref.json")
    live = as_events(training_rows(rng, WINDOW_SIZE) + training_rows(rng, WINDOW_SIZE, 15.0))
    batch, problems = build_batch(live, monitor.schema, monitor.outputs)
    assert problems == []
    # Windows as they close (a sequential detector may also report early, inside a window).
    calm, shifted = [r for r in monitor.update_many(batch) if not getattr(r, "partial", False)]
    assert (calm.index, shifted.index) == (0, 1)
    assert calm.drifted == []
    drifted = {(finding.kind, finding.feature) for finding in shifted.drifted}
    assert ("data_drift", "income") in drifted
    # A marginal shift moves the joint (PCA) statistic too; no other feature may drift.
    assert not {feature for kind, feature in drifted if kind == "data_drift"} - {"income",
                                                                                 "(joint)"}
    assert shifted.reference["events"] == REFERENCE_SIZE


def test_load_reference_refuses_what_it_cannot_use(tmp_path: Path) -> None:
    rng = np.random.default_rng(7)
    good = build_reference(write_csv(tmp_path / "train.csv", training_rows(rng, 1100)),
                           "credit", None, SETTINGS)
    bad = tmp_path / "bad.json"
    cases: list[tuple[bytes, str]] = [
        (b"{not json", "invalid JSON"),
        (b"[]", "expected a driftline reference of version 1, got 'list'"),
        (orjson.dumps({**good, "version": 2}), "version 1, got 2"),
        (orjson.dumps({**good, "model_id": ""}), "model_id: expected a non-empty str"),
        (orjson.dumps({**good, "model_version": 3}), "model_version: expected a string or null"),
        (orjson.dumps({**good, "monitor": {"type": "model_monitor"}}), "monitor state is invalid"),
    ]
    for content, message in cases:
        bad.write_bytes(content)
        with pytest.raises(ReferenceFileError, match=message):
            load_reference(bad)
    with pytest.raises(ReferenceFileError, match="cannot read the reference"):
        load_reference(tmp_path / "absent.json")
    write_reference(good, bad)
    other = Settings(monitor=MonitorConfig(reference_size=REFERENCE_SIZE, window_size=1000))
    with pytest.raises(ReferenceFileError, match=r"window_size=500 but the current settings have "
                                                 r"window_size=1000; rebuild it"):
        load_reference(bad, other)


def test_unknown_extension_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "train.xlsx"
    path.write_bytes(b"")
    with pytest.raises(ReferenceFileError, match=r"expected a \.csv, \.jsonl, \.ndjson or "
                                                 r"\.parquet file, got '\.xlsx'"):
        build_reference(path, "credit", None, SETTINGS)


def test_parquet_without_pyarrow_names_the_missing_package(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # Simulate an install without the `parquet` extra: the import must fail cleanly.
    for name in [m for m in sys.modules if m == "pyarrow" or m.startswith("pyarrow.")]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, "pyarrow", None)
    monkeypatch.setitem(sys.modules, "pyarrow.parquet", None)
    path = tmp_path / "train.parquet"
    path.write_bytes(b"PAR1")
    with pytest.raises(ReferenceFileError, match="reading Parquet needs the pyarrow package"):
        build_reference(path, "credit", None, SETTINGS)


def test_parquet_round_trip(tmp_path: Path) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    rows = training_rows(np.random.default_rng(8), 1100)
    rows[5]["income"] = float("nan")  # NaN in Parquet is a missing value
    path = tmp_path / "train.parquet"
    pq.write_table(pa.Table.from_pylist(rows), path)
    reference = build_reference(path, "credit", None, SETTINGS)
    assert reference["source"]["format"] == "parquet"
    assert reference["source"]["rejected"] == 0
    assert ModelMonitor.from_state(reference["monitor"]).reference_complete


def test_cli_reference_build(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = tmp_path / "driftline.yaml"
    config.write_text(f"monitor:\n  reference_size: {REFERENCE_SIZE}\n  window_size: "
                      f"{WINDOW_SIZE}\n")
    train = write_csv(tmp_path / "train.csv", training_rows(np.random.default_rng(9), 1200))
    parser = argparse.ArgumentParser(prog="driftline")
    parser.add_argument("--config", type=Path)
    add_reference_commands(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(["--config", str(config), "reference", "build", str(train),
                              "--model", "credit", "--version", "v7", "--out",
                              str(tmp_path / "ref.json")])
    assert args.run(args) == 0
    printed = capsys.readouterr().out
    assert printed.startswith("reference for model 'credit' version 'v7': 1,000 rows of ")
    assert "3 features (2 numeric, 1 categorical); outputs: prediction, score" in printed
    assert load_reference(tmp_path / "ref.json", SETTINGS)["model_version"] == "v7"
    with pytest.raises(SystemExit):
        parser.parse_args(["reference", "build", str(train), "--out", "x.json"])  # no --model


def test_a_configured_reference_file_replaces_the_learned_reference(tmp_path: Path) -> None:
    from streams.ui.cli import main

    for scenario in ("stationary", "mean_shift"):
        assert main(["simulate", "--scenario", scenario, "--events", "20000", "--out",
                     str(tmp_path / scenario)]) == 0
    reference = tmp_path / "ref.json"
    assert main(["reference", "build", str(tmp_path / "stationary" / "predictions.jsonl"),
                 "--model", "credit-risk", "--out", str(reference)]) == 0
    config = tmp_path / "driftline.yaml"
    config.write_text(f"models:\n  credit-risk:\n    reference: {reference}\n")
    alerts = tmp_path / "alerts.jsonl"
    assert main(["--config", str(config), "replay", "--predictions",
                 str(tmp_path / "mean_shift" / "predictions.jsonl"), "--out", str(alerts),
                 "--quiet"]) == 0
    drift = [orjson.loads(line) for line in alerts.read_bytes().splitlines()
             if b'"credit_score"' in line and b'"data_drift"' in line]
    # No reference phase: windows start at event 0, so the drift at event 10,000 lands
    # in window 5 (events 10,000-11,999), not window 2 as with a learned reference.
    assert drift and drift[0]["window"]["index"] == 5
