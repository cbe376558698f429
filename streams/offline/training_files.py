"""Training files read as raw records: CSV, JSON lines, Parquet.

The records go on to :func:`streams.offline.reference.build_reference`, which
turns them into prediction events. Here only what the file holds is decided:
a CSV cell becomes the JSON value it spells (:func:`streams.ingest.values.cell_value`:
``True`` is ``true``, ``1.0`` is 1, as live events carry them), the unnamed
row-index column pandas writes is skipped, and a JSON line that is not JSON
becomes an :class:`Unreadable` record to count, not an error that stops the build.
"""

from __future__ import annotations

import csv
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson

from streams.errors import DriftlineError
from streams.ingest.values import cell_value

FORMATS = {".csv": "csv", ".jsonl": "jsonl", ".ndjson": "jsonl", ".parquet": "parquet",
           ".pq": "parquet"}
_CHUNK = 5000
_UNNAMED = re.compile(r"Unnamed: [0-9]+")


class ReferenceFileError(DriftlineError):
    """A reference could not be built from a training file, or a reference file is invalid."""


def file_format_of(path: Path) -> str:
    """``csv``, ``jsonl`` or ``parquet``, from the file name's extension.

    >>> file_format_of(Path("train.ndjson"))
    'jsonl'
    """
    file_format = FORMATS.get(path.suffix.lower())
    if file_format is None:
        raise ReferenceFileError(f"{path}: expected a .csv, .jsonl, .ndjson or .parquet file, "
                                 f"got {path.suffix or 'no extension'!r}")
    return file_format


def read_records(path: Path, file_format: str, skipped_columns: list[str]) -> Iterator[Any]:
    """Raw records of the file, in order: dicts, or whatever a JSON line held.

    A line that is not JSON comes as an :class:`Unreadable`. The names of CSV
    columns skipped as a row index are appended to ``skipped_columns``.
    """
    try:
        if file_format == "csv":
            yield from _csv_records(path, skipped_columns)
        elif file_format == "jsonl":
            yield from _jsonl_records(path)
        else:
            yield from _parquet_records(path)
    except OSError as exc:
        raise ReferenceFileError(f"{path}: cannot read it ({exc})") from exc


def _csv_records(path: Path, skipped: list[str]) -> Iterator[dict[str, Any]]:
    with path.open(newline="", encoding="utf-8-sig") as file:
        reader = csv.DictReader(file)
        if not reader.fieldnames:
            raise ReferenceFileError(f"{path}: expected a header row naming the columns")
        skipped += [name for name in reader.fieldnames if _is_row_index(name)]
        for row in reader:
            record: dict[str, Any] = {}
            for name, cell in row.items():
                if name is None or name in skipped:  # None: cells beyond the header
                    continue
                if name in ("model_id", "model_version", "event_id"):
                    record[name] = cell
                else:
                    # The same value a JSON event would carry: True is true, 1.0 is 1.
                    record[name] = None if cell is None else cell_value(cell)
            yield record


def _is_row_index(name: str) -> bool:
    """Whether a column is the row index that pandas' ``to_csv`` writes, not a feature.

    It has no name, or ``Unnamed: 0`` once read by pandas and written again.
    """
    return name.strip() == "" or _UNNAMED.fullmatch(name) is not None


def _jsonl_records(path: Path) -> Iterator[Any]:
    with path.open("rb") as file:
        for number, line in enumerate(file, start=1):
            if not line.strip():
                continue
            try:
                document = orjson.loads(line)
            except orjson.JSONDecodeError as exc:
                yield Unreadable(f"line {number}: not valid JSON ({exc})")
                continue
            if isinstance(document, list):
                yield from document
            else:
                yield document


def _parquet_records(path: Path) -> Iterator[dict[str, Any]]:
    try:
        # pyarrow is optional (not found without the extra) and ships no type information.
        import pyarrow.parquet as parquet  # type: ignore[import-untyped,import-not-found,unused-ignore]
    except ImportError as exc:
        raise ReferenceFileError(
            f"{path}: reading Parquet needs the pyarrow package, which is not installed "
            "(pip install 'driftline[parquet]'), or convert the file to CSV or JSON lines"
        ) from exc
    try:
        table = parquet.ParquetFile(path)
        for batch in table.iter_batches(batch_size=_CHUNK):
            yield from batch.to_pylist()
    except (OSError, ValueError) as exc:  # pyarrow's ArrowInvalid is a ValueError
        raise ReferenceFileError(f"{path}: cannot read it as Parquet ({exc})") from exc


class Unreadable:
    """A line that was not JSON: counted as rejected, never fed."""

    def __init__(self, reason: str) -> None:
        self.reason = reason
