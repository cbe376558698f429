"""A reference from a pandas-written CSV sees the values live JSON events carry (#18 item 1)."""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import pytest

from streams.ingest.columnar import build_batch
from streams.ingest.values import category_text, cell_value
from streams.ui.cli import main

N_TRAIN = 3000
N_LIVE = 12_000


def applicants(rng: np.random.Generator, n: int) -> list[dict[str, Any]]:
    """Typed rows, as a service would put them in its JSON events."""
    tier = rng.choice([1, 2, 3], n)
    return [{"income": round(float(rng.normal(50.0, 10.0)), 3),
             "age": int(rng.integers(18, 80)),
             "is_promo": bool(rng.random() < 0.3),
             "region": str(rng.choice(["north", "south", "east"])),
             "tier": None if i % 97 == 5 else int(tier[i]),
             "prediction": int(rng.random() < 0.4)} for i in range(n)]


def write_pandas_csv(path: Path, rows: list[dict[str, Any]]) -> None:
    """What ``DataFrame.to_csv(path)`` writes for these rows: an unnamed index column,
    True/False, and integer columns holding a missing value written as floats (3.0)."""
    with path.open("w", newline="") as file:
        writer = csv.writer(file)
        writer.writerow(["", *rows[0]])
        for index, row in enumerate(rows):
            writer.writerow([index, row["income"], row["age"], row["is_promo"], row["region"],
                             "" if row["tier"] is None else float(row["tier"]),
                             row["prediction"]])


def write_events(path: Path, rows: list[dict[str, Any]]) -> None:
    path.write_bytes(b"".join(orjson.dumps({
        "model_id": "credit-risk", "model_version": "1", "event_id": str(i),
        "ts": 1_767_225_600 + i, "prediction": row["prediction"],
        "features": {k: v for k, v in row.items() if k != "prediction"}}) + b"\n"
        for i, row in enumerate(rows)))


@pytest.mark.parametrize("declared", [False, True])
def test_a_pandas_csv_reference_raises_no_alert_on_json_events_of_the_same_data(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], declared: bool) -> None:
    rng = np.random.default_rng(118)
    write_pandas_csv(tmp_path / "train.csv", applicants(rng, N_TRAIN))
    write_events(tmp_path / "events.jsonl", applicants(rng, N_LIVE))
    config = tmp_path / "driftline.yaml"
    features = ("    features: {income: numeric, age: numeric, is_promo: categorical, "
                "region: categorical, tier: categorical}\n") if declared else ""
    config.write_text("monitor:\n  reference_size: 2000\n  window_size: 1000\n"
                      f"models:\n  credit-risk:\n    reference: {tmp_path / 'ref.json'}\n"
                      + features)
    assert main(["--config", str(config), "reference", "build", str(tmp_path / "train.csv"),
                 "--model", "credit-risk", "--out", str(tmp_path / "ref.json")]) == 0
    printed = capsys.readouterr().out
    assert "0 rejected" in printed
    assert "skipped column '': a row index (pandas to_csv), not a feature" in printed
    reference = orjson.loads((tmp_path / "ref.json").read_bytes())
    assert "" not in reference["source"]["features"]
    tally = reference["monitor"]["tests"]["drift"]["is_promo"]["state"]["reference_tally"]
    assert set(tally) == {"true", "false"}
    if declared:
        tiers = reference["monitor"]["tests"]["drift"]["tier"]["state"]["reference_tally"]
        assert set(tiers) == {"1", "2", "3"}
    alerts = tmp_path / "alerts.jsonl"
    assert main(["--config", str(config), "replay", "--predictions",
                 str(tmp_path / "events.jsonl"), "--out", str(alerts), "--quiet"]) == 0
    fired = [orjson.loads(line) for line in alerts.read_bytes().splitlines()]
    assert [(a["kind"], a["feature"], a["explanation"]) for a in fired] == []


@pytest.mark.parametrize(("cell", "value"), [
    ("True", True), ("true", True), ("TRUE", True), ("False", False), ("false", False),
    ("1", 1), ("1.0", 1), ("1.0", 1.0), ("1.", 1), ("1e0", 1), ("-3", -3), ("2.50", 2.5),
    ("0.1", 0.1), ("north", "north"), ("02134", "02134"), (" north", " north"),
])
def test_a_csv_cell_names_the_category_its_json_value_names(cell: str, value: object) -> None:
    assert category_text(cell_value(cell)) == category_text(value)


def test_live_categorical_columns_follow_the_same_rule() -> None:
    events = [{"ts": 1.0, "features": {"c": value}} for value in (True, 1, 1.0, 2.5, "x", None)]
    batch, problems = build_batch(events, {"c": "categorical"}, {})
    assert problems == []
    assert batch.columns["c"].values == ["true", "1", "1", "2.5", "x", None]


def test_cells_that_are_not_json_values_stay_text_or_go_missing() -> None:
    assert [cell_value(c) for c in ("", " ", "nan", "NaN", "1,5", "0x10", "1_000", "Yes")] == [
        None, None, None, None, "1,5", "0x10", "1_000", "Yes"]
    assert cell_value("-inf") == float("-inf")      # refused later as non_finite, as live


def test_a_small_reference_size_from_the_environment_builds_without_warnings(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    import warnings

    write_pandas_csv(tmp_path / "train.csv", applicants(np.random.default_rng(5), 1000))
    monkeypatch.setenv("DRIFTLINE_REFERENCE_SIZE", "300")   # the name of the issue: an alias
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert main(["reference", "build", str(tmp_path / "train.csv"), "--model", "credit-risk",
                     "--out", str(tmp_path / "ref.json")]) == 0
    assert "300 rows of" in capsys.readouterr().out


def test_a_short_file_says_which_setting_and_variable_to_lower(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    write_pandas_csv(tmp_path / "train.csv", applicants(np.random.default_rng(6), 800))
    assert main(["reference", "build", str(tmp_path / "train.csv"), "--model", "credit-risk",
                 "--out", str(tmp_path / "ref.json")]) != 0
    error = capsys.readouterr().err
    assert "800 usable rows for model 'credit-risk', but the reference needs 5,000 " \
           "(monitor.reference_size)" in error
    assert "lower monitor.reference_size to at most 800 (DRIFTLINE_MONITOR_REFERENCE_SIZE=800 " \
           "or the --config file), and give the workers the same value" in error
    write_pandas_csv(tmp_path / "tiny.csv", applicants(np.random.default_rng(6), 60))
    assert main(["reference", "build", str(tmp_path / "tiny.csv"), "--model", "credit-risk",
                 "--out", str(tmp_path / "ref.json")]) != 0
    assert "the file needs more usable rows: monitor.reference_size: expected an integer >= " \
           "100, got 60" in capsys.readouterr().err
