"""river's detectors for real-valued streams: ADWIN, Page-Hinkley and KSWIN.

Wrapped like the binary ones (see :mod:`detectors.concept.river_wrappers`):
river's parameters and defaults, non-finite values dropped and counted,
``update_many`` and a versioned plain-dict state. They take the values as
given (a ``0``/``1`` error flag or a loss).
"""

from __future__ import annotations

from typing import Any

import numpy as np
from river import drift

from detectors.concept.river_wrappers import (
    _build,
    _positive,
    _positive_int,
    _probability,
    _RiverDetector,
    _RiverModel,
)
from detectors.errors import require

__all__ = ["RiverADWIN", "RiverKSWIN", "RiverPageHinkley"]


class RiverPageHinkley(_RiverDetector):
    """river's Page-Hinkley test on the (real-valued) stream; two-sided by default.

    Parameters
    ----------
    min_instances
        Events before the test starts.
    delta
        Tolerated change of the mean.
    threshold
        Cumulative deviation that signals.
    alpha
        Forgetting factor of the cumulative deviation.
    mode
        ``"up"``, ``"down"`` or ``"both"``.

    Examples
    --------
    >>> rng = np.random.default_rng(7)
    >>> stream = np.r_[rng.random(2000) < 0.1, rng.random(2000) < 0.5].astype(float)
    >>> hits = RiverPageHinkley(mode="up").update_many(stream)
    >>> bool(((hits >= 2000) & (hits < 2500)).any())
    True

    """

    name = "river_page_hinkley"
    binary = False
    config_keys = ("min_instances", "delta", "threshold", "alpha", "mode")

    def __init__(self, min_instances: int = 30, delta: float = 0.005, threshold: float = 50.0,
                 alpha: float = 1 - 0.0001, mode: str = "both") -> None:
        _positive_int("min_instances", min_instances)
        require(isinstance(delta, int | float) and delta >= 0, "delta", "a number >= 0", delta)
        _positive("threshold", threshold)
        require(isinstance(alpha, int | float) and 0 < alpha <= 1, "alpha", "a number in (0, 1]",
                alpha)
        require(mode in ("up", "down", "both"), "mode", "one of 'up', 'down', 'both'", mode)
        self.min_instances = min_instances
        self.delta = delta
        self.threshold = threshold
        self.alpha = alpha
        self.mode = mode
        super().__init__()

    def _river_detector(self) -> _RiverModel:
        return _build(drift.PageHinkley, min_instances=self.min_instances, delta=self.delta,
                      threshold=self.threshold, alpha=self.alpha, mode=self.mode)


class RiverKSWIN(_RiverDetector):
    """river's KSWIN: a Kolmogorov-Smirnov test of the newest values against older ones.

    Costly: river runs a full KS test on every update (hundreds of µs).

    Parameters
    ----------
    alpha
        Significance level of the KS test.
    window_size
        Values kept.
    stat_size
        Newest values tested against as many values sampled from the rest.
    seed
        Seed of the sampling (``None``: a random one; the state is still exact).

    Examples
    --------
    >>> rng = np.random.default_rng(7)
    >>> stream = np.r_[rng.random(1000) < 0.1, rng.random(1000) < 0.6].astype(float)
    >>> hits = RiverKSWIN(seed=1).update_many(stream)
    >>> bool(((hits >= 1000) & (hits < 1100)).any())
    True

    """

    name = "river_kswin"
    binary = False
    config_keys = ("alpha", "window_size", "stat_size", "seed")

    def __init__(self, alpha: float = 0.005, window_size: int = 100, stat_size: int = 30,
                 seed: int | None = None) -> None:
        _probability("alpha", alpha)
        _positive_int("window_size", window_size, 2)
        _positive_int("stat_size", stat_size)
        require(stat_size * 2 <= window_size, "stat_size",
                f"an integer <= window_size / 2 ({window_size / 2:g})", stat_size)
        require(seed is None or (isinstance(seed, int) and not isinstance(seed, bool)), "seed",
                "an integer or None", seed)
        self.alpha = alpha
        self.window_size = window_size
        self.stat_size = stat_size
        self.seed = seed
        super().__init__()

    def _river_detector(self) -> _RiverModel:
        return _build(drift.KSWIN, alpha=self.alpha, window_size=self.window_size,
                      stat_size=self.stat_size, seed=self.seed)


class RiverADWIN(_RiverDetector):
    """river's ADWIN (Bifet & Gavaldà 2007): adaptive window, two-sided on the mean.

    ADWIN signals when the error rate falls as well as when it rises; on an
    error stream under detect-and-reset that means false alarms while a fresh
    model learns. Prefer a one-sided detector for "the model got worse".

    State: river 0.26 keeps ADWIN's buckets in a Rust object that exposes
    neither its buckets nor a serialisable form. The wrapper therefore keeps
    the last ``replay_capacity`` values seen since the last reset and
    :meth:`from_state` rebuilds ADWIN by replaying them. **The round trip is
    exact while at most ``replay_capacity`` values have been seen since the
    last reset**; beyond that the restored ADWIN starts from the newest
    ``replay_capacity`` values only (a shorter window: older history is
    forgotten, recent behaviour is kept).

    Parameters
    ----------
    delta
        Significance level of the cut test.
    clock
        Check for a cut every ``clock`` values.
    max_buckets
        Buckets of each size before merging.
    min_window_length
        Shortest sub-window tested.
    grace_period
        Values before the first test.
    replay_capacity
        Values kept for rebuilding the state (bounded memory: 8 bytes each).

    Examples
    --------
    >>> rng = np.random.default_rng(7)
    >>> stream = np.r_[rng.random(2000) < 0.1, rng.random(2000) < 0.5].astype(float)
    >>> hits = RiverADWIN().update_many(stream)
    >>> bool(((hits >= 2000) & (hits < 2300)).any())
    True

    """

    name = "river_adwin"
    binary = False
    config_keys = ("delta", "clock", "max_buckets", "min_window_length", "grace_period",
                   "replay_capacity")

    _replay: np.ndarray[Any, np.dtype[np.float64]]
    _seen: int

    def __init__(self, delta: float = 0.002, clock: int = 32, max_buckets: int = 5,
                 min_window_length: int = 5, grace_period: int = 10,
                 replay_capacity: int = 10_000) -> None:
        _probability("delta", delta)
        _positive_int("clock", clock)
        _positive_int("max_buckets", max_buckets)
        _positive_int("min_window_length", min_window_length)
        _positive_int("grace_period", grace_period)
        _positive_int("replay_capacity", replay_capacity)
        self.delta = delta
        self.clock = clock
        self.max_buckets = max_buckets
        self.min_window_length = min_window_length
        self.grace_period = grace_period
        self.replay_capacity = replay_capacity
        self._replay = np.zeros(replay_capacity, dtype=np.float64)
        super().__init__()

    def _river_detector(self) -> _RiverModel:
        return _build(drift.ADWIN, delta=self.delta, clock=self.clock,
                      max_buckets=self.max_buckets, min_window_length=self.min_window_length,
                      grace_period=self.grace_period)

    def _reset(self) -> None:
        super()._reset()
        self._seen = 0

    def _update(self, x: float) -> bool:
        self._replay[self._seen % self.replay_capacity] = x
        self._seen += 1
        self._river.update(x)
        return bool(self._river.drift_detected)

    def _replay_values(self) -> np.ndarray[Any, np.dtype[np.float64]]:
        """The buffered values since the last reset, oldest first."""
        if self._seen <= self.replay_capacity:
            return self._replay[:self._seen].copy()
        start = self._seen % self.replay_capacity
        return np.concatenate((self._replay[start:], self._replay[:start]))

    def _learned_state(self) -> dict[str, Any]:
        return {"seen": self._seen, "replay": self._replay_values().tolist()}

    def _load_learned_state(self, state: dict[str, Any]) -> None:
        seen = int(state["seen"])
        replay = np.asarray(state["replay"], dtype=np.float64).reshape(-1)
        if seen < 0 or replay.size != min(seen, self.replay_capacity) or not np.isfinite(
                replay).all():
            raise ValueError("replay buffer does not match the count of values seen")
        self._reset()
        # A replayed prefix followed the same path before, so it cannot signal again; a
        # truncated one (beyond replay_capacity) may cut its window, which is what we want.
        for value in replay.tolist():
            self._update(value)
        self._seen = seen
