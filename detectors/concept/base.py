"""The one interface of every sequential detector over a model's error stream.

An error stream is what the prediction⋈label join produces per labelled event:
``1`` when the model was wrong and ``0`` when it was right, or a real-valued
loss. A detector watches it event by event and signals when the model has got
worse (concept drift). After a signal it forgets what it learned and starts
again on the following events ("detect-and-reset"), so the owner can replace
or retrain the model without telling the detector.

Non-finite values never reach the underlying statistic (one NaN silently
disables river's ADWIN for good): they are dropped and counted.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from typing import Any, ClassVar, Self

import numpy as np
from numpy.typing import ArrayLike, NDArray

from detectors.errors import StateError


class ErrorStreamDetector(ABC):
    """Per-event sequential change detector over an error (or loss) stream.

    Subclasses set ``name`` and ``config_keys`` (the constructor's parameters,
    stored as public attributes of the same name), validate them in
    ``__init__`` before calling ``super().__init__()``, and implement
    :meth:`_reset`, :meth:`_update` (one finite value) and the learned-state
    pair :meth:`_learned_state` / :meth:`_load_learned_state`.

    Examples
    --------
    >>> class EveryTenthError(ErrorStreamDetector):
    ...     name = "every_tenth_error"
    ...     config_keys = ()
    ...     def _reset(self) -> None:
    ...         self._errors = 0
    ...     def _update(self, x: float) -> bool:
    ...         self._errors += x >= 0.5
    ...         return self._errors == 10
    ...     def _learned_state(self) -> dict[str, Any]:
    ...         return {"errors": self._errors}
    ...     def _load_learned_state(self, state: dict[str, Any]) -> None:
    ...         self._errors = int(state["errors"])
    >>> detector = EveryTenthError()
    >>> detector.update_many(np.array([1.0, float("nan"), *[1.0] * 20]))
    array([10, 20])
    >>> detector.non_finite_dropped
    1

    """

    name: ClassVar[str]
    STATE_VERSION: ClassVar[int] = 1
    config_keys: ClassVar[tuple[str, ...]]

    def __init__(self) -> None:
        self._drift = False
        self._non_finite_dropped = 0
        self._reset()

    @abstractmethod
    def _reset(self) -> None:
        """Forget everything learned from the stream (configuration is kept)."""

    @abstractmethod
    def _update(self, x: float) -> bool:
        """Take one finite value; return whether it completes a detection."""

    @abstractmethod
    def _learned_state(self) -> dict[str, Any]:
        """The learned state as a plain dict (orjson-serialisable, exact)."""

    @abstractmethod
    def _load_learned_state(self, state: dict[str, Any]) -> None:
        """Restore what :meth:`_learned_state` returned."""

    @property
    def drift_detected(self) -> bool:
        """Whether the last value given to :meth:`update` / :meth:`update_many` signalled."""
        return self._drift

    @property
    def non_finite_dropped(self) -> int:
        """How many NaN/inf values were dropped since construction."""
        return self._non_finite_dropped

    def update(self, x: float) -> bool:
        """Take one value (``1``/``0`` error flag or a loss); return whether drift was signalled.

        After a signal the detector has already reset itself: the next value
        starts a fresh run.
        """
        value = float(x)
        if not math.isfinite(value):
            self._non_finite_dropped += 1
            self._drift = False
            return False
        self._drift = self._update(value)
        if self._drift:
            self._reset()
        return self._drift

    def update_many(self, x: ArrayLike) -> NDArray[np.int64]:
        """Take a batch of values in order; return the indices (within ``x``) that signalled.

        Exactly equivalent to calling :meth:`update` on each value in turn.
        """
        values = np.asarray(x, dtype=np.float64).reshape(-1)
        finite = np.isfinite(values)
        positions = np.flatnonzero(finite)
        dropped = values.size - positions.size
        if dropped:
            self._non_finite_dropped += int(dropped)
        if positions.size == 0:
            if values.size:
                self._drift = False
            return np.empty(0, dtype=np.int64)
        signalled = self._update_finite(values[positions])
        hits = positions[signalled].astype(np.int64)
        self._drift = bool(finite[-1]) and bool(hits.size) and int(hits[-1]) == values.size - 1
        return hits

    def _update_finite(self, values: NDArray[np.float64]) -> NDArray[np.int64]:
        """Indices (into ``values``, all finite) that signalled; override to vectorise."""
        hits: list[int] = []
        update, reset = self._update, self._reset
        for i, value in enumerate(values.tolist()):
            if update(value):
                reset()
                hits.append(i)
        return np.asarray(hits, dtype=np.int64)

    def config(self) -> dict[str, Any]:
        """The constructor arguments that rebuild this detector's configuration."""
        return {key: getattr(self, key) for key in self.config_keys}

    def to_state(self) -> dict[str, Any]:
        """Versioned plain-dict state: configuration plus everything learned."""
        return {
            "type": self.name,
            "version": self.STATE_VERSION,
            "config": self.config(),
            "state": {
                "drift_detected": self._drift,
                "non_finite_dropped": self._non_finite_dropped,
                "learned": self._learned_state(),
            },
        }

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> Self:
        """Rebuild a detector from :meth:`to_state` output."""
        if not isinstance(state, dict) or state.get("type") != cls.name or (
                state.get("version") != cls.STATE_VERSION):
            found = state if not isinstance(state, dict) else (state.get("type"),
                                                                 state.get("version"))
            raise StateError(
                f"state: expected type {cls.name!r} version {cls.STATE_VERSION}, got {found!r}")
        try:
            detector = cls(**state["config"])
            saved = state["state"]
            detector._drift = bool(saved["drift_detected"])
            detector._non_finite_dropped = int(saved["non_finite_dropped"])
            detector._load_learned_state(saved["learned"])
        except (KeyError, TypeError, ValueError, IndexError, AttributeError) as exc:
            raise StateError(f"state: cannot restore {cls.name}: {exc}") from exc
        return detector

    def __repr__(self) -> str:
        arguments = ", ".join(f"{key}={getattr(self, key)!r}" for key in self.config_keys)
        return f"{type(self).__name__}({arguments})"
