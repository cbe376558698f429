"""One rule for how a value reads, whether it came in a JSON event or a CSV cell.

A reference built from a training file must see the same categories as the
live events it is compared with, or every window is a "new category" false
alarm. JSON events carry types; a CSV (as pandas writes it) carries only text,
and spells the same values differently: ``True`` for JSON ``true``, ``1.0``
for an integer column that had a missing value. Two functions settle it:

* :func:`cell_value` reads a CSV cell as the JSON value it spells: ``true`` /
  ``false`` in any case are booleans, a number (JSON syntax, plus ``inf``) is a
  number, an empty or ``NaN`` cell is missing, anything else is text. A number
  written with a leading zero (``02134``, a ZIP code) stays text, as it would be
  a string in JSON.
* :func:`category_text` names the category of any value in a categorical
  column or a segment: text as it is, booleans ``"true"`` / ``"false"``, whole
  numbers without a fraction (``1`` and ``1.0`` are both ``"1"``), other
  numbers as Python writes them (``0.5``).
"""

from __future__ import annotations

import re
from typing import Any

MISSING_CELLS = frozenset({"", "nan", "NaN", "NAN"})
_NUMBER = re.compile(r"[+-]?(?:(?:0|[1-9][0-9]*)(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")
_INTEGER = re.compile(r"[+-]?(?:0|[1-9][0-9]*)")
_INFINITE = frozenset({"inf", "+inf", "-inf", "infinity", "+infinity", "-infinity"})
# Whole floats up to 2**53 are exact integers; beyond, their digits would be invented.
_EXACT = 2.0**53


def cell_value(cell: str) -> None | bool | int | float | str:
    """The JSON value a CSV cell spells.

    Examples
    --------
    >>> [cell_value(c) for c in ("True", "FALSE", "1", "1.0", "-2.5e3", "", "NaN")]
    [True, False, 1, 1.0, -2500.0, None, None]
    >>> [cell_value(c) for c in ("02134", "north", "1,5", " 7 ")]
    ['02134', 'north', '1,5', 7]
    """
    text = cell.strip()
    if text in MISSING_CELLS:
        return None
    lowered = text.lower()
    if lowered in ("true", "false"):
        return lowered == "true"
    if _INTEGER.fullmatch(text):
        return int(text)
    if _NUMBER.fullmatch(text) or lowered in _INFINITE:
        # inf is not valid JSON, but reading it as a number gets it the same refusal
        # (non_finite) that a live event's 1e400 gets.
        return float(text)
    return cell


def category_text(value: Any) -> str | None:
    """The category a value of a categorical column (or a segment) counts as.

    Examples
    --------
    >>> [category_text(v) for v in ("web", True, False, 2, 2.0, 0.5, None)]
    ['web', 'true', 'false', '2', '2', '0.5', None]
    >>> category_text(cell_value("1.0")) == category_text(1)
    True
    """
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer() and abs(value) <= _EXACT:
        return str(int(value))
    return repr(value)


__all__ = ["MISSING_CELLS", "category_text", "cell_value"]
