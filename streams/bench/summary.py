"""What every bench table shares: its reference rate per round, and its closing lines.

The reference of a round (the raw consumer, the bare read of a file) is
measured just before *and* just after what it is compared with. This machine
is shared: its speed moves within seconds, and a reference measured once, in
half a second, moved by up to 2× between back-to-back runs. Bracketing the
subject keeps a drift of the machine's speed out of the round's ratio.
"""

from __future__ import annotations

import statistics
from typing import IO

Row = tuple[str, list[float], str]
"""A figure's name, its per-round values and their format spec (``",.0f"``, ``".2f"``)."""


def bracketed(before: float, after: float) -> float:
    """The reference rate of a round, from its runs just before and just after the subject.

    The rate of their mean time over the same work (the harmonic mean of the
    two rates): a machine that slows down or speeds up while the subject runs
    moves the reference alike.

    >>> bracketed(400_000.0, 600_000.0)
    480000.0
    """
    return 2.0 / (1.0 / before + 1.0 / after)


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
