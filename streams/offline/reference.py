"""References from a file: ``driftline reference build TRAIN --model ID --out ref.json``.

A training set (CSV, JSON lines or Parquet) goes through the same validation
and columnar path as live events (:func:`streams.ingest.decode.validate_event`, then
:func:`streams.ingest.columnar.build_batch`) into a fresh
:class:`detectors.monitor.ModelMonitor` until its reference is complete. The
monitor's state and where it came from are written as one versioned JSON
document; a worker restores the monitor from it, so the very first live window
of the model is tested against the training data instead of waiting for
``reference_size`` live events.

Rows become prediction events like this:

* a JSON line holding an event (it has a ``features`` object) is taken as it
  is; a line may hold an array of events, as a Kafka message may;
* any other record (a CSV row, a Parquet row, a flat JSON object) is flat:
  ``model_id``, ``model_version``, ``event_id``, ``ts``, ``prediction`` and
  ``score`` are the envelope, every other key is a feature;
* records of another ``model_id`` (or of another ``model_version``, when one is
  asked for) are skipped; missing ids and times are filled in (``ts`` 0.0);
* a CSV cell is read as the JSON value it spells
  (:func:`streams.ingest.values.cell_value`): ``True``/``false`` in any case
  are booleans, numbers are numbers (``1.0`` and ``1`` are the same category),
  except those written with a leading zero (``02134``), which stay text; empty
  and ``NaN`` cells (and NaN in Parquet) are missing values. So a pandas-written
  CSV gives the categories live JSON events give (``true``, ``1``);
* a CSV column without a name (or named ``Unnamed: 0``) is the row index pandas
  writes: it is skipped, and the summary says so;
* a file without a ``prediction`` column gives a reference of the features
  only: the monitor restored from it does not watch the model's outputs.
"""

from __future__ import annotations

import argparse
import hashlib
import math
import os
from collections import Counter
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson

from detectors.batch import CATEGORICAL, NUMERIC, ColumnBatch
from detectors.errors import ConfigurationError, DetectorError
from detectors.monitor import ModelMonitor
from streams.ingest.columnar import build_batch, infer_schema, output_schema
from streams.ingest.decode import PREDICTION, validate_event
from streams.offline.training_files import (
    ReferenceFileError,
    Unreadable,
    file_format_of,
    read_records,
)
from streams.settings import Settings, load_settings
from streams.settings_sources import environment_variable

REFERENCE_VERSION = 1
ENVELOPE = ("model_id", "model_version", "event_id", "ts", "prediction", "score")
_EXAMPLES = 3


class _Tally:
    """What happened to the rows of a training file, for the summary and the errors."""

    def __init__(self) -> None:
        self.read = 0
        self.other_models = 0
        self.rejected: Counter[str] = Counter()
        self.examples: list[str] = []
        self.skipped_columns: list[str] = []

    def reject(self, error: str, reason: str) -> None:
        self.rejected[error] += 1
        if len(self.examples) < _EXAMPLES:
            self.examples.append(reason)

    def describe(self) -> str:
        parts = [f"{self.read:,} rows read"]
        if self.other_models:
            parts.append(f"{self.other_models:,} of other models or versions skipped")
        if self.rejected:
            counts = ", ".join(f"{n:,} {error}" for error, n in self.rejected.most_common())
            parts.append(f"{sum(self.rejected.values()):,} rejected ({counts}; e.g. "
                         f"{'; '.join(self.examples)})")
        return ", ".join(parts)


def build_reference(path: Path, model_id: str, model_version: str | None,
                    settings: Settings) -> dict[str, Any]:
    """Build a model's reference from a training file.

    Parameters
    ----------
    path
        A ``.csv``, ``.jsonl``/``.ndjson`` or ``.parquet`` file (Parquet needs pyarrow).
    model_id
        The model the reference is for.
    model_version
        The version it is for; ``None`` means every version without a reference of its own.
    settings
        Monitor settings (``reference_size`` rows are used) and the model's declared features.

    Returns
    -------
    dict
        ``{"version", "model_id", "model_version", "source", "monitor"}``, plain JSON types.

    Raises
    ------
    ReferenceFileError
        The file cannot be read, or holds fewer usable rows than the reference needs.

    """
    path = Path(path)
    file_format = file_format_of(path)
    declared = settings.models.get(model_id)
    features = dict(declared.features) if declared and declared.features else {}
    size = settings.monitor.reference_size
    tally = _Tally()
    monitor: ModelMonitor | None = None
    pending: list[dict[str, Any]] = []
    records = read_records(path, file_format, tally.skipped_columns)
    events = _events(records, model_id, model_version, settings, tally)
    for event in events:
        pending.append(event)
        if len(pending) < (size if monitor is None else size - monitor.events):
            continue
        monitor = monitor or _new_monitor(pending, features, settings)
        _feed(monitor, pending, tally)
        pending = []
        if monitor.reference_complete:
            break
    if pending:
        monitor = monitor or _new_monitor(pending, features, settings)
        _feed(monitor, pending, tally)
    if monitor is None or not monitor.reference_complete:
        usable = 0 if monitor is None else monitor.events
        version = f" version {model_version!r}" if model_version else ""
        raise ReferenceFileError(
            f"{path}: {usable:,} usable rows for model {model_id!r}{version}, but the reference "
            f"needs {size:,} (monitor.reference_size); {tally.describe()}; "
            f"{_smaller_reference(usable, settings)}")
    return {
        "version": REFERENCE_VERSION,
        "model_id": model_id,
        "model_version": model_version,
        "source": {
            "path": str(path.resolve()), "format": file_format, "sha256": _sha256(path),
            "rows": size, "rows_read": tally.read, "rejected": sum(tally.rejected.values()),
            "other_models": tally.other_models, "skipped_columns": tally.skipped_columns,
            "features": dict(monitor.schema), "outputs": dict(monitor.outputs),
        },
        "monitor": monitor.to_state(),
    }


def write_reference(reference: dict[str, Any], path: Path) -> None:
    """Write a reference as JSON, atomically (a reader never sees half a file)."""
    path = Path(path)
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        temporary.write_bytes(orjson.dumps(reference, option=orjson.OPT_INDENT_2))
        os.replace(temporary, path)
    except OSError as exc:
        temporary.unlink(missing_ok=True)
        raise ReferenceFileError(f"{path}: cannot write the reference ({exc})") from exc


def load_reference(path: Path, settings: Settings | None = None) -> dict[str, Any]:
    """Read and validate a reference written by :func:`write_reference`.

    With ``settings``, also check that the reference was built with the same
    monitor settings (window size, alpha, …): a monitor restored from it keeps
    the settings it was built with.
    """
    path = Path(path)
    try:
        document = orjson.loads(path.read_bytes())
    except OSError as exc:
        raise ReferenceFileError(f"{path}: cannot read the reference ({exc})") from exc
    except orjson.JSONDecodeError as exc:
        raise ReferenceFileError(f"{path}: not a reference file (invalid JSON: {exc})") from exc
    if not isinstance(document, dict) or document.get("version") != REFERENCE_VERSION:
        found = document.get("version") if isinstance(document, dict) else type(document).__name__
        raise ReferenceFileError(f"{path}: expected a driftline reference of version "
                                 f"{REFERENCE_VERSION}, got {found!r}")
    checks = (("model_id", str), ("source", dict), ("monitor", dict))
    for key, kind in checks:
        if not isinstance(document.get(key), kind) or not document[key]:
            raise ReferenceFileError(f"{path}: {key}: expected a non-empty {kind.__name__}, "
                                     f"got {document.get(key)!r}"[:200])
    if document.get("model_version") is not None and not isinstance(document["model_version"],
                                                                     str):
        raise ReferenceFileError(f"{path}: model_version: expected a string or null, got "
                                 f"{document['model_version']!r}")
    try:
        monitor = ModelMonitor.from_state(document["monitor"])
    except DetectorError as exc:
        raise ReferenceFileError(f"{path}: the monitor state is invalid ({exc})") from exc
    if not monitor.reference_complete:
        raise ReferenceFileError(f"{path}: the monitor state holds an incomplete reference "
                                 f"({monitor.events} of {monitor.config.reference_size} events)")
    if settings is not None:
        # As restored: a setting newer than the file reads as its default, which built it.
        built = monitor.config.__dict__
        current = settings.monitor.__dict__
        changed = sorted(key for key in current if built.get(key) != current[key])
        if changed:
            raise ReferenceFileError(
                f"{path}: built with monitor settings "
                f"{', '.join(f'{k}={built.get(k)!r}' for k in changed)} but the current settings "
                f"have {', '.join(f'{k}={current[k]!r}' for k in changed)}; rebuild it with "
                f"`driftline reference build`")
    return document


def load_references(settings: Settings) -> dict[str, dict[str, Any]]:
    """Reference files named in the settings, validated against the monitor settings.

    Each also gets ``audit_source``: the file's path, SHA-256 and size, and the
    training data it was built from (what the audit trail records).
    """
    references = {}
    for model_id, model in settings.models.items():
        if not model.reference:
            continue
        path = Path(model.reference)
        reference = load_reference(path, settings)
        content = path.read_bytes()
        training = reference["source"]
        reference["audit_source"] = {
            "type": "file", "path": str(path.resolve()),
            "sha256": hashlib.sha256(content).hexdigest(), "bytes": len(content),
            "events": int(reference["monitor"]["config"]["reference_size"]),
            "training": {key: training.get(key) for key in ("path", "format", "sha256",
                                                            "rows", "rows_read")}}
        references[model_id] = reference
    return references


def add_reference_commands(
    subparsers: argparse._SubParsersAction[argparse.ArgumentParser],
) -> None:
    """Register ``reference build`` on the CLI's subcommand parsers."""
    reference = subparsers.add_parser(
        "reference", help="build a model's reference from a training file",
        description="A model's reference is what its live windows are compared with. By default "
        "it is the first reference_size events of each model version; with a reference file "
        "(models.ID.reference in the settings) the first live window is already tested "
        "against the training data.")
    actions = reference.add_subparsers(dest="reference_action", required=True, metavar="ACTION")
    build = actions.add_parser(
        "build", help="read a training file into a reference file",
        description="Read TRAIN (.csv, .jsonl/.ndjson or .parquet; Parquet needs pyarrow) "
        "through the same validation as live events and write the monitor's reference, with "
        "the file's path, row counts and SHA-256, to --out. Flat rows: model_id, "
        "model_version, event_id, ts, prediction and score are the envelope, every other "
        "column is a feature (an unnamed row-index column, as pandas writes, is skipped). A "
        "CSV cell reads as the JSON value it spells (True/false: booleans; 1.0: the number 1), "
        "so categories match live JSON events; empty and NaN cells are missing values. JSON "
        "lines may also hold prediction events (or arrays of them). Uses "
        "monitor.reference_size rows and the monitor settings of --config, which the workers "
        "must share.")
    build.add_argument("train", type=Path, metavar="TRAIN", help="the training data file")
    build.add_argument("--model", required=True,
                       help="model_id; rows of other models in the file are skipped")
    build.add_argument("--version", help="model_version the reference is for (default: every "
                       "version of the model that has no reference of its own)")
    build.add_argument("--out", type=Path, required=True,
                       help="where to write the reference (JSON), e.g. ref.json")
    build.set_defaults(run=cmd_reference_build)


def cmd_reference_build(args: argparse.Namespace) -> int:
    """Build a reference file from a training file and print what went into it."""
    settings = load_settings(getattr(args, "config", None))
    if not args.train.is_file():
        raise ReferenceFileError(f"no such file: {args.train}")
    reference = build_reference(args.train, args.model, args.version, settings)
    write_reference(reference, args.out)
    source = reference["source"]
    kinds = Counter(source["features"].values())
    outputs = ", ".join(source["outputs"]) or "none (no prediction column)"
    print(f"reference for model {args.model!r} "
          f"{'version ' + repr(args.version) if args.version else '(every version)'}: "
          f"{source['rows']:,} rows of {args.train} ({source['rows_read']:,} read, "
          f"{source['rejected']:,} rejected); {len(source['features'])} features "
          f"({kinds[NUMERIC]} numeric, {kinds[CATEGORICAL]} categorical); outputs: {outputs} "
          f"→ {args.out}")
    if source["skipped_columns"]:
        names = ", ".join(repr(name) for name in source["skipped_columns"])
        print(f"skipped column {names}: a row index (pandas to_csv), not a feature")
    return 0


def _events(records: Iterator[Any], model_id: str, model_version: str | None,
            settings: Settings, tally: _Tally) -> Iterator[dict[str, Any]]:
    """Valid prediction events of the model, from raw records."""
    with_outputs: bool | None = None
    for row, record in enumerate(records):
        tally.read += 1
        if isinstance(record, Unreadable):
            tally.reject("invalid_json", record.reason)
            continue
        if not isinstance(record, dict):
            tally.reject("not_an_object", f"row {row}: expected an object, got "
                         f"{type(record).__name__}")
            continue
        if record.get("model_id", model_id) != model_id or (
                model_version is not None
                and record.get("model_version", model_version) != model_version):
            tally.other_models += 1
            continue
        event = _event(record, row, model_id, model_version)
        if with_outputs is None:
            with_outputs = "prediction" in event
        if not with_outputs:
            # Training data often has no model output: validate the envelope as a prediction
            # event would be; the outputs are then not monitored (the monitor has none).
            event["prediction"] = 0
        problem = validate_event(event, PREDICTION, settings.limits)
        if problem is not None:
            tally.reject(problem[0], f"row {row}: {problem[2]}")
            continue
        if not with_outputs:
            del event["prediction"]
            event.pop("score", None)
        yield event


def _event(record: dict[str, Any], row: int, model_id: str,
           model_version: str | None) -> dict[str, Any]:
    if isinstance(record.get("features"), dict):
        event = dict(record)
    else:
        event = {key: record[key] for key in ENVELOPE if key in record}
        event["features"] = {key: _missing_if_nan(value) for key, value in record.items()
                             if key not in ENVELOPE}
    event.setdefault("model_id", model_id)
    event.setdefault("model_version", model_version or "reference")
    event.setdefault("event_id", f"row-{row}")
    event.setdefault("ts", 0.0)
    if isinstance(event["ts"], datetime):  # Parquet timestamps
        ts = event["ts"]
        event["ts"] = (ts if ts.tzinfo else ts.replace(tzinfo=UTC)).timestamp()
    return event


def _smaller_reference(usable: int, settings: Settings) -> str:
    """How to build the reference from fewer rows, naming the setting and its variable."""
    variable = environment_variable("monitor.reference_size")
    try:
        replace(settings.monitor, reference_size=usable)
    except ConfigurationError as exc:
        return f"the file needs more usable rows: monitor.{exc}"
    return (f"to use these rows, lower monitor.reference_size to at most {usable:,} "
            f"({variable}={usable} or the --config file), and give the workers the same "
            f"value: a reference only loads with the monitor settings it was built with")


def _new_monitor(events: list[dict[str, Any]], features: dict[str, str],
                 settings: Settings) -> ModelMonitor:
    schema = features or infer_schema(events, settings.limits.max_features)
    if not schema:
        raise ReferenceFileError("no feature carries a value in the first rows of the file")
    outputs = output_schema(events) if "prediction" in events[0] else {}
    return ModelMonitor(schema, outputs, settings.monitor)


def _feed(monitor: ModelMonitor, events: list[dict[str, Any]], tally: _Tally) -> None:
    batch, problems = build_batch(events, monitor.schema, monitor.outputs)
    for problem in {p.row: p for p in problems}.values():
        tally.reject(problem.error, f"event {events[problem.row]['event_id']}: {problem.reason}")
    part = batch.slice(0, monitor.config.reference_size - monitor.events)
    # Rejected rows are reported above; carried into the monitor they would raise a
    # data-quality alert in the first live window.
    reports = monitor.update_many(ColumnBatch(part.ts, part.columns, part.outputs))
    assert not reports, "a reference build never closes a window"


def _missing_if_nan(value: Any) -> Any:
    return None if isinstance(value, float) and math.isnan(value) else value


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as file:
        for block in iter(lambda: file.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
