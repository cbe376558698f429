"""Validated event dicts → one :class:`detectors.batch.ColumnBatch` per model version.

Feature values are type-checked here, one column at a time: a column whose
values are all of the expected types takes a single numpy conversion; only a
column with a stray value falls back to a per-value pass. A row with a wrong
type or a non-finite number is dropped from the batch and reported, so it can
go to the dead-letter topic, and counted for the data-quality checks.

A categorical column reads booleans and numbers as text by one rule,
:func:`streams.ingest.values.category_text` (``true``, ``1`` for 1 and 1.0),
which CSV training files follow too.
"""

from __future__ import annotations

import operator
import struct
from collections import Counter
from collections.abc import Hashable, Sequence
from dataclasses import dataclass
from itertools import chain, repeat
from typing import Any

import numpy as np
from msgspec import UNSET
from msgspec.structs import astuple
from numpy.typing import NDArray

from detectors.batch import (
    CATEGORICAL,
    NUMERIC,
    CategoricalColumn,
    Column,
    ColumnBatch,
    NumericColumn,
)
from streams.ingest.decode import NON_FINITE, WRONG_TYPE
from streams.ingest.values import category_text

_NUMERIC_TYPES = {int, float, type(None)}
_TS = operator.itemgetter("ts")
_FEATURES = operator.itemgetter("features")
_CATEGORY_TYPES = {str, type(None)}
_FLAG_TYPES = {bool, type(None)}


@dataclass(frozen=True)
class RowProblem:
    """Why one row of a batch was dropped."""

    row: int
    error: str
    path: str
    reason: str


def infer_schema(events: list[dict[str, Any]], max_features: int = 2000) -> dict[str, str]:
    """Guess each feature's type from the values seen: numbers → numeric, else categorical.

    Features that are null in every event are left out until they carry a value.

    >>> infer_schema([{"features": {"a": 1.5, "b": "x", "c": None}},
    ...               {"features": {"a": 2, "b": True}}])
    {'a': 'numeric', 'b': 'categorical'}
    """
    feature_maps = list(map(_FEATURES, events))
    names = dict.fromkeys(chain.from_iterable(feature_maps))
    if len(names) * len(feature_maps) <= 4 * sum(map(len, feature_maps)):
        # Dense events (the usual): count each column's value types in C.
        return _infer_dense(feature_maps, list(names), max_features)
    votes: dict[str, list[int]] = {}
    for event in events:
        for name, value in event["features"].items():
            if value is None:
                continue
            if name not in votes:
                if len(votes) >= max_features:
                    continue
                votes[name] = [0, 0]
            votes[name][0 if _is_number(value) else 1] += 1
    return {name: NUMERIC if n >= c else CATEGORICAL for name, (n, c) in votes.items()}


def _infer_dense(feature_maps: list[dict[str, Any]], names: list[str],
                 max_features: int) -> dict[str, str]:
    """:func:`infer_schema` a column at a time: the same types, names and order."""
    kinds: dict[str, str] = {}
    first: dict[str, tuple[int, int]] = {}
    positions: dict[int, dict[str, int]] = {}
    for name in names:
        values = list(map(dict.get, feature_maps, repeat(name)))
        types = Counter(map(type, values))
        present = len(values) - types.pop(type(None), 0)
        if not present:
            continue
        # As _is_number decides, by type: subclasses (numpy's float64) count too.
        numbers = sum(count for kind, count in types.items()
                      if issubclass(kind, int | float) and not issubclass(kind, bool))
        kinds[name] = NUMERIC if numbers >= present - numbers else CATEGORICAL
        # Where the name first carries a value orders it (and decides the cap).
        row = next(row for row, value in enumerate(values) if value is not None)
        if row not in positions:
            positions[row] = {key: at for at, key in enumerate(feature_maps[row])}
        first[name] = (row, positions[row][name])
    order = sorted(kinds, key=first.__getitem__)[:max_features]
    return {name: kinds[name] for name in order}


def output_schema(events: list[dict[str, Any]]) -> dict[str, str]:
    """Types of the model outputs present: ``prediction`` and optional ``score``."""
    outputs = {"prediction": NUMERIC if _is_number(events[0]["prediction"]) else CATEGORICAL}
    if any("score" in event for event in events):
        outputs["score"] = NUMERIC
    return outputs


def build_batch(events: list[Any], schema: dict[str, str], outputs: dict[str, str],
                fields: dict[str, tuple[Any, ...]] | None = None,
                ) -> tuple[ColumnBatch, list[RowProblem]]:
    """Columnarise ``events``; return the batch and the rows dropped from it.

    ``events`` are all dicts, or all typed structs of one schema
    (:mod:`streams.ingest.typed`), whose feature values msgspec has already
    type-checked: their numbers become columns in one conversion. For structs,
    ``fields`` may give their :func:`struct_columns`, transposed already.
    """
    problems: list[RowProblem] = []
    if events and type(events[0]) is not dict:
        if fields is None:
            fields = struct_columns(events)
        columns = _typed_features(fields["features"], schema, problems)
        output_columns = {name: _typed_output(fields[name], kind, name, problems)
                          for name, kind in outputs.items()}
        ts = float_column(fields["ts"])
    else:
        raw = _transpose(list(map(_FEATURES, events)), list(schema))
        columns = {name: _column(values, kind, "features." + name, problems)
                   for (name, kind), values in zip(schema.items(), raw, strict=True)}
        output_columns = {name: _column(list(map(dict.get, events, repeat(name))), kind, name,
                                        problems)
                          for name, kind in outputs.items()}
        ts = np.array(list(map(_TS, events)), dtype=np.float64)
    if not problems:
        return ColumnBatch(ts, columns, output_columns), problems
    keep = np.ones(len(events), dtype=np.bool_)
    keep[sorted({p.row for p in problems})] = False
    rejected: dict[str, int] = {}
    for problem in {(p.row, p.path): p for p in problems}.values():
        feature = problem.path.removeprefix("features.")
        rejected[feature] = rejected.get(feature, 0) + 1
    batch = ColumnBatch(ts[keep], {n: _keep(c, keep) for n, c in columns.items()},
                        {n: _keep(c, keep) for n, c in output_columns.items()}, rejected)
    return batch, problems


def _transpose(feature_maps: Sequence[dict[str, Any]],
               names: list[str]) -> Sequence[Sequence[Any]]:
    """Columns of ``names`` across ``feature_maps``; absent keys read as ``None``."""
    if not names:
        return []
    getter = operator.itemgetter(*names)
    try:
        # One C call per event and one C transpose: the common case, every key present.
        rows = list(map(getter, feature_maps))
    except KeyError:
        rows = [tuple(features.get(name) for name in names) for features in feature_maps]
    if len(names) == 1:
        return [[row[0] if isinstance(row, tuple) else row for row in rows]]
    return list(zip(*rows, strict=True)) if rows else [() for _ in names]


def _typed_features(features: Sequence[Any], schema: dict[str, str],
                    problems: list[RowProblem]) -> dict[str, Column]:
    # One C call per event (its fields as a tuple) and one C transpose, instead of a
    # getattr per feature per event.
    transposed = struct_columns(features) if features else {}
    columns: dict[str, Column] = {}
    for name, kind in schema.items():
        path = "features." + name
        values = transposed.get(name)
        if values is None:
            values = (None,) * len(features)
        if kind != NUMERIC:
            columns[name] = _column(values, CATEGORICAL, path, problems)
            continue
        # msgspec made every value a float or None: one conversion per column, None → NaN
        # (decoded JSON holds no NaN, so NaN marks missing).
        array = float_column(values)
        missing = np.isnan(array)
        if missing.any():
            array[missing] = 0.0
        columns[name] = _numeric_column(array, missing, path, problems)
    return columns


def _typed_output(values: Sequence[Any], kind: str, name: str,
                  problems: list[RowProblem]) -> Column:
    if name == "score" and kind == NUMERIC:
        # The structs declare the score a float (UNSET when absent): if the column packs,
        # it holds floats only, and no per-value type check is needed.
        packed = packed_floats(values)
        if packed is not None:
            return _numeric_column(packed, np.zeros(len(values), dtype=np.bool_), name,
                                   problems)
    return _column(unset_as_none(values), kind, name, problems)


def struct_columns(events: Sequence[Any]) -> dict[str, tuple[Any, ...]]:
    """Every field of structs of one type (typed events, or their features) as a column.

    One C call per struct (its fields as a tuple) and one C transpose, instead of
    a getattr per field per struct. A step transposes each model version's events
    once: the monitors' columns (:func:`build_batch`) and the label join's pending
    rows read the same columns. ``events`` must not be empty.

    >>> import msgspec
    >>> Point = msgspec.defstruct("Point", [("x", int), ("y", int)])
    >>> struct_columns([Point(1, 2), Point(3, 4)])
    {'x': (1, 3), 'y': (2, 4)}
    """
    return dict(zip(type(events[0]).__struct_fields__, zip(*map(astuple, events), strict=True),
                    strict=True))


def unset_as_none(values: Sequence[Any]) -> Sequence[Any]:
    """A struct field's column with ``UNSET`` (an absent optional field) as ``None``.

    >>> unset_as_none((1.0, UNSET)), unset_as_none((1.0, 2.0))
    ([1.0, None], (1.0, 2.0))
    """
    unset = values.count(UNSET)
    if not unset:
        return values
    if unset == len(values):            # a field no event has (scores, segments, often)
        return [None] * unset
    return [None if value is UNSET else value for value in values]


def _column(values: Sequence[Any], kind: str, path: str, problems: list[RowProblem]) -> Column:
    types = set(map(type, values))
    if kind == NUMERIC:
        if types <= _NUMERIC_TYPES:
            if type(None) in types:
                # None converts to NaN, and decoded JSON holds no NaN: NaN marks missing.
                array = float_column(values)
                missing = np.isnan(array)
                array[missing] = 0.0
            else:
                missing = np.zeros(len(values), dtype=np.bool_)
                array = float_column(values)
        else:
            array, missing = _numeric_slow(values, path, problems)
        return _numeric_column(array, missing, path, problems)
    if types <= _CATEGORY_TYPES:
        return CategoricalColumn(list(values))
    if types <= _FLAG_TYPES:
        # category_text's words for booleans, without a call per value.
        return CategoricalColumn([None if v is None else ("true" if v else "false")
                                  for v in values])
    return CategoricalColumn(_categorical_slow(values, path, problems))


def _numeric_column(array: np.ndarray[Any, Any], missing: np.ndarray[Any, Any], path: str,
                    problems: list[RowProblem]) -> NumericColumn:
    finite = np.isfinite(array)
    if not bool(finite.all()):
        for row in np.flatnonzero(~finite).tolist():
            problems.append(RowProblem(row, NON_FINITE, path,
                                       f"{path}: expected a finite number, got {array[row]}"))
        array = np.where(finite, array, 0.0)
    return NumericColumn(array, missing)


def _numeric_slow(values: Sequence[Any], path: str,
                  problems: list[RowProblem]) -> tuple[np.ndarray[Any, Any], np.ndarray[Any, Any]]:
    array = np.zeros(len(values), dtype=np.float64)
    missing = np.zeros(len(values), dtype=np.bool_)
    for row, value in enumerate(values):
        if value is None:
            missing[row] = True
        elif _is_number(value):
            array[row] = value
        else:
            problems.append(RowProblem(row, WRONG_TYPE, path, f"{path}: expected a number or "
                                       f"null, got {type(value).__name__} {str(value)[:40]!r}"))
    return array, missing


def _categorical_slow(values: Sequence[Any], path: str,
                      problems: list[RowProblem]) -> list[str | None]:
    out: list[str | None] = []
    for row, value in enumerate(values):
        if value is None or isinstance(value, str):
            out.append(value)
        elif isinstance(value, (bool, int, float)):
            out.append(category_text(value))
        else:
            problems.append(RowProblem(row, WRONG_TYPE, path, f"{path}: expected a string, "
                                       f"number, boolean or null, got {type(value).__name__}"))
            out.append(None)
    return out


def _keep(column: Column, keep: np.ndarray[Any, Any]) -> Column:
    if isinstance(column, NumericColumn):
        return NumericColumn(column.values[keep], column.missing[keep])
    return CategoricalColumn([v for v, k in zip(column.values, keep.tolist(), strict=True) if k])


def rows_by_key(keys: Sequence[Hashable]) -> dict[Any, NDArray[np.intp]]:
    """The rows of each distinct key, ascending, keys in order of first appearance.

    Each key is numbered once, then one stable sort: no Python step per row.

    >>> {key: rows.tolist() for key, rows in rows_by_key(["b", "a", "b", "c", "a"]).items()}
    {'b': [0, 2], 'a': [1, 4], 'c': [3]}
    """
    number = {key: n for n, key in enumerate(dict.fromkeys(keys))}
    numbers = np.fromiter(map(number.__getitem__, keys), dtype=np.intp, count=len(keys))
    order = np.argsort(numbers, kind="stable")
    ends = np.cumsum(np.bincount(numbers, minlength=len(number))).tolist()
    return {key: order[start:end]
            for key, start, end in zip(number, [0, *ends[:-1]], ends, strict=True)}


def float_column(values: Sequence[Any]) -> np.ndarray[Any, np.dtype[np.float64]]:
    """Numbers (and None, as NaN) as a float column.

    Packed by a ``struct.Struct`` of the column's length when every value is a
    number: about 4.5 ns a value against 15 for ``np.fromiter`` (which is itself
    a quarter cheaper than ``np.array``, which first discovers shape and type).
    A ``None`` (or anything ``struct`` refuses) sends the column to ``np.fromiter``,
    which turns ``None`` into NaN and raises ``ValueError`` on a string, as before.

    >>> float_column((1, None, 2.5)).tolist(), float_column((1, True, 2.5)).tolist()
    ([1.0, nan, 2.5], [1.0, 1.0, 2.5])
    """
    packed = packed_floats(values)
    if packed is None:
        return np.fromiter(values, dtype=np.float64, count=len(values))
    return packed


def packed_floats(values: Sequence[Any]) -> np.ndarray[Any, np.dtype[np.float64]] | None:
    """Numbers as a float column, packed (see :func:`float_column`); ``None`` if one is not.

    A column of a field that typed structs declare ``float`` (or leave absent, ``UNSET``)
    is then known to hold floats only. Booleans pack as numbers: other columns still need
    their types checked.

    >>> packed_floats((1.5, 2.0)).tolist(), packed_floats((1.5, None))
    ([1.5, 2.0], None)
    """
    count = len(values)
    packer = _PACKERS.get(count)
    if packer is None:
        if len(_PACKERS) >= _MAX_PACKERS:
            _PACKERS.clear()
        packer = _PACKERS[count] = struct.Struct(f"{count}d")
    try:
        packed = packer.pack(*values)
    except struct.error:
        return None
    # A bytearray, so that the column is writable like any other.
    return np.frombuffer(bytearray(packed), dtype=np.float64)


_PACKERS: dict[int, struct.Struct] = {}
"""A packer per column length seen (steps repeat their group sizes)."""
_MAX_PACKERS = 256


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)
