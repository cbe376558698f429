"""The label join's counters of one model in one partition (checkpointed with the label state)."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

# Upper bounds (seconds) of the label-delay histogram's buckets; the last is +inf.
DELAY_BUCKETS = (1.0, 10.0, 60.0, 300.0, 1800.0, 3600.0, 6 * 3600.0, 86400.0, 7 * 86400.0)


@dataclass
class ModelCounts:
    """Join counters of one model in one partition."""

    predictions: int = 0
    labels: int = 0
    joined: int = 0
    duplicates: int = 0
    unmatched: int = 0
    segment_overflow: int = 0
    """Labelled events of segment values beyond ``labels.max_segments`` (not monitored)."""
    delays: list[int] = field(default_factory=lambda: [0] * (len(DELAY_BUCKETS) + 1))
    last_prediction_ts: float = -math.inf
    version: str | None = None

    @property
    def coverage(self) -> float | None:
        """Share of predictions that have been joined with a label."""
        return self.joined / self.predictions if self.predictions else None

    def delay_quantile(self, q: float) -> float | None:
        """Upper bound of the delay bucket holding quantile ``q`` (``inf`` past the last)."""
        total = sum(self.delays)
        if not total:
            return None
        running = 0
        for bound, count in zip((*DELAY_BUCKETS, math.inf), self.delays, strict=True):
            running += count
            if running >= q * total:
                return bound
        return math.inf


__all__ = ["DELAY_BUCKETS", "ModelCounts"]
