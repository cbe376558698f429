"""The one interface every windowed test in :mod:`detectors` implements.

A windowed test learns a reference from the first events it is given, then
compares each following window with it. The owner (usually
:class:`detectors.monitor.ModelMonitor`) decides where the reference and each
window end and calls :meth:`WindowedTest.end_reference` /
:meth:`WindowedTest.end_window` there, so every test of a model sees the same
window boundaries and the result does not depend on how events were batched.
"""

from __future__ import annotations

import copy
from abc import ABC, abstractmethod
from dataclasses import asdict, dataclass
from typing import Any, ClassVar, Generic, Self, TypeVar

from detectors.batch import CategoricalColumn, NumericColumn
from detectors.errors import StateError, require

ColumnT = TypeVar("ColumnT", bound=NumericColumn | CategoricalColumn)

WARNING = "warning"
CRITICAL = "critical"


@dataclass(frozen=True)
class TestResult:
    """The verdict of one test on one closed window."""

    __test__ = False  # not a pytest class

    detector: str
    drift: bool
    statistic: float
    threshold: float
    p_value: float | None
    effect_size: float
    severity: str
    window_events: int
    explanation: str
    reference: dict[str, float]

    def to_dict(self) -> dict[str, Any]:
        """Plain-dict form, ready for orjson."""
        return asdict(self)


class WindowedTest(ABC, Generic[ColumnT]):
    """Reference-then-windows two-sample test over one column.

    Subclasses list their learned state in ``state_keys`` and keep it in
    private attributes of the same name with a leading underscore; the
    constructor only validates and stores configuration.
    """

    name: ClassVar[str]
    STATE_VERSION: ClassVar[int] = 1
    config_keys: ClassVar[tuple[str, ...]]
    state_keys: ClassVar[tuple[str, ...]]

    _drift: bool
    _reference_ready: bool

    def __init__(self, alpha: float) -> None:
        require(0.0 < alpha < 1.0, "alpha", "a probability in (0, 1)", alpha)
        self.alpha = alpha
        self._reset()

    @abstractmethod
    def _reset(self) -> None:
        """Forget everything learned: back to collecting a reference."""

    @abstractmethod
    def update_many(self, column: ColumnT) -> None:
        """Add a segment of events to the reference or to the current window."""

    @abstractmethod
    def end_reference(self) -> None:
        """Freeze the reference collected so far."""

    @abstractmethod
    def end_window(self) -> TestResult:
        """Test the current window against the reference, then start a new window."""

    @property
    def drift_detected(self) -> bool:
        """Whether the last closed window differed from the reference."""
        return bool(self._drift)

    @property
    def reference_ready(self) -> bool:
        """Whether :meth:`end_reference` has been called since the last reset."""
        return bool(self._reference_ready)

    def to_state(self) -> dict[str, Any]:
        """Versioned plain-dict state (configuration plus learned state)."""
        return {
            "type": self.name,
            "version": self.STATE_VERSION,
            "config": {key: getattr(self, key) for key in self.config_keys},
            "state": {key: _plain(getattr(self, "_" + key)) for key in self.state_keys},
        }

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> Self:
        """Rebuild a test from :meth:`to_state` output."""
        if state.get("type") != cls.name or state.get("version") != cls.STATE_VERSION:
            raise StateError(
                f"state: expected type {cls.name!r} version {cls.STATE_VERSION}, "
                f"got type {state.get('type')!r} version {state.get('version')!r}"
            )
        try:
            test = cls(**state["config"])
            # Copied so that the restored test never shares mutable state with the caller's dict.
            learned = copy.deepcopy(state["state"])
            for key in cls.state_keys:
                setattr(test, "_" + key, test._restore(key, learned[key]))
        except (KeyError, TypeError, ValueError) as exc:
            raise StateError(f"state: cannot restore {cls.name}: {exc}") from exc
        return test

    def _restore(self, key: str, value: Any) -> Any:
        """Turn one plain state value back into its working form (override for arrays)."""
        return value


def _plain(value: Any) -> Any:
    tolist = getattr(value, "tolist", None)
    if tolist is not None:
        return tolist()
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    return value
