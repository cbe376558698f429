"""Reference-then-tumbling-windows bookkeeping, counted in events.

The first ``reference_size`` events form the reference, every following
``window_size`` events a window. Boundaries count events, never batches, so a
replay and a live run cut the same windows whatever the batch sizes.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
from numpy.typing import NDArray


@dataclass(frozen=True)
class Span:
    """A stretch of events that just closed (the reference, or window ``index``)."""

    index: int
    start_ts: float
    end_ts: float
    events: int
    is_reference: bool


class WindowClock:
    """Where the reference and each window start and end.

    Examples
    --------
    >>> clock = WindowClock(reference_size=3, window_size=2)
    >>> ts = np.arange(8.0)
    >>> position, spans = 0, []
    >>> while position < len(ts):
    ...     position, closed = clock.take(ts, position)
    ...     if closed:
    ...         spans.append(clock.close())
    >>> [(s.index, s.start_ts, s.end_ts, s.is_reference) for s in spans]
    [(0, 0.0, 2.0, True), (0, 3.0, 4.0, False), (1, 5.0, 6.0, False)]
    >>> clock.window_events
    1

    """

    state_keys: ClassVar[tuple[str, ...]] = (
        "events", "window_index", "window_events", "window_start_ts", "window_end_ts",
        "reference_start_ts", "reference_end_ts")

    def __init__(self, reference_size: int, window_size: int) -> None:
        self.reference_size = reference_size
        self.window_size = window_size
        self.events = 0
        self.window_index = 0
        self.window_events = 0
        self.window_start_ts = 0.0
        self.window_end_ts = 0.0
        self.reference_start_ts = 0.0
        self.reference_end_ts = 0.0

    @property
    def reference_complete(self) -> bool:
        """Whether the reference has closed."""
        return self.events >= self.reference_size

    @property
    def limit(self) -> int:
        """Events in the stretch being collected (reference or window)."""
        return self.window_size if self.reference_complete else self.reference_size

    def take(self, ts: NDArray[np.float64], start: int) -> tuple[int, bool]:
        """Count events from ``start`` up to the next boundary; return ``(stop, closed)``."""
        limit = self.limit
        stop = min(len(ts), start + limit - self.window_events)
        if stop > start:
            if self.window_events == 0:
                self.window_start_ts = float(ts[start])
            self.window_end_ts = float(ts[stop - 1])
            self.window_events += stop - start
            self.events += stop - start
        return stop, self.window_events == limit

    def close(self) -> Span:
        """End the full reference or window; the next event starts a new window."""
        is_reference = self.events == self.reference_size
        span = Span(self.window_index, self.window_start_ts, self.window_end_ts,
                    self.window_events, is_reference)
        if is_reference:
            self.reference_start_ts = self.window_start_ts
            self.reference_end_ts = self.window_end_ts
        else:
            self.window_index += 1
        self.window_events = 0
        return span

    def reference_info(self) -> dict[str, float]:
        """The reference's size and time range, as :class:`WindowReport` carries it."""
        return {"events": self.reference_size, "start_ts": self.reference_start_ts,
                "end_ts": self.reference_end_ts}

    def to_state(self) -> dict[str, Any]:
        """Plain-dict state."""
        return {key: getattr(self, key) for key in self.state_keys}

    @classmethod
    def from_state(cls, reference_size: int, window_size: int,
                   state: dict[str, Any]) -> WindowClock:
        """Rebuild from :meth:`to_state` output."""
        clock = cls(reference_size, window_size)
        for key in cls.state_keys:
            value = state[key]
            setattr(clock, key, float(value) if key.endswith("_ts") else int(value))
        return clock
