"""The closing lines of every bench table: min and median of each figure over the rounds."""

from __future__ import annotations

import statistics
from typing import IO

Row = tuple[str, list[float], str]
"""A figure's name, its per-round values and their format spec (``",.0f"``, ``".2f"``)."""


def print_summary(rows: list[Row], out: IO[str]) -> None:
    """Print min and median of each row's per-round values, names right-aligned.

    Examples
    --------
    >>> import sys
    >>> print_summary([("raw", [3.0, 1.0, 2.0], ",.0f"), ("ratio", [0.5, 0.25, 1.0], ".2f")],
    ...               sys.stdout)
      raw: min 1  median 2
    ratio: min 0.25  median 0.50
    """
    width = max(len(name) for name, _, _ in rows)
    for name, values, fmt in rows:
        print(f"{name:>{width}}: min {min(values):{fmt}}  median "
              f"{statistics.median(values):{fmt}}", file=out)
