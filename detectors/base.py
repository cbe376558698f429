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
import math
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from typing import Any, ClassVar, Generic, Self, TypeVar, cast, overload

from detectors.batch import CategoricalColumn, NumericBlock, NumericColumn
from detectors.errors import ConfigurationError, StateError, require

ColumnT = TypeVar("ColumnT", bound=NumericColumn | CategoricalColumn | NumericBlock)
T = TypeVar("T")

WARNING = "warning"
CRITICAL = "critical"


class _Lazy(Generic[T]):
    """A field that also takes a function making its value, called on first read.

    Every window yields a verdict per feature and check, but only drifting ones
    (and the lead of a resolved alert) are ever explained to a person or sent
    with their p-value: the text and the p-value of the others are never
    computed. The function must use only values fixed when the verdict was
    made, never a test's state (which the next window changes).
    """

    def __set_name__(self, owner: type, name: str) -> None:
        self._key = "_" + name

    @overload
    def __get__(self, instance: None, owner: type) -> Self: ...
    @overload
    def __get__(self, instance: object, owner: type) -> T: ...
    def __get__(self, instance: object | None, owner: type) -> T | Self:
        if instance is None:
            # On the class, no value: the dataclass field then has no default.
            raise AttributeError(self._key)
        value = instance.__dict__[self._key]
        if callable(value):
            value = value()
            instance.__dict__[self._key] = value
        return cast(T, value)

    def __set__(self, instance: object, value: T | Callable[[], T]) -> None:
        instance.__dict__[self._key] = value


@dataclass(frozen=True, kw_only=True, init=False)
class TestResult:
    """The verdict of one test on one closed window.

    ``p_value``, ``explanation`` and ``distribution`` may be given as functions
    returning the value; each is called the first time its value is read.
    ``distribution`` is what a chart of the verdict needs: the column's reference
    and window histograms as a plain dict (``None`` when the test has none).
    """

    __test__ = False  # not a pytest class

    detector: str
    drift: bool
    statistic: float
    threshold: float
    p_value: _Lazy[float | None] = _Lazy()
    effect_size: float
    severity: str
    window_events: int
    explanation: _Lazy[str] = _Lazy()
    reference: dict[str, float] = field(default_factory=dict)
    distribution: _Lazy[dict[str, Any] | None] = _Lazy()

    def __init__(self, *, detector: str, drift: bool, statistic: float, threshold: float,
                 p_value: float | None | Callable[[], float | None], effect_size: float,
                 severity: str, window_events: int, explanation: str | Callable[[], str],
                 reference: dict[str, float] | None = None,
                 distribution: dict[str, Any] | None
                 | Callable[[], dict[str, Any] | None] = None) -> None:
        # A window yields ~70 verdicts: filling the instance's dict at once is several
        # times faster than the generated frozen __init__ (a setattr call per field).
        # The lazy fields go straight to their descriptors' slots.
        self.__dict__.update(
            detector=detector, drift=drift, statistic=statistic, threshold=threshold,
            _p_value=p_value, effect_size=effect_size, severity=severity,
            window_events=window_events, _explanation=explanation,
            reference={} if reference is None else reference, _distribution=distribution)

    def to_dict(self) -> dict[str, Any]:
        """Plain-dict form, ready for orjson."""
        return asdict(self)

    def prefixed(self, prefix: str) -> TestResult:
        """A copy whose explanation starts with ``prefix`` (both still made on first read).

        >>> result = TestResult(detector="ks", drift=True, statistic=0.2, threshold=0.1,
        ...                     p_value=None, effect_size=0.2, severity="warning",
        ...                     window_events=500, explanation=lambda: "mean 0 -> 1")
        >>> result.prefixed("segment channel=web: ").explanation
        'segment channel=web: mean 0 -> 1'
        """
        copy = object.__new__(TestResult)
        copy.__dict__.update(self.__dict__)
        copy.__dict__["_explanation"] = lambda: prefix + self.explanation
        return copy


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
            test._derive()
        except (KeyError, TypeError, ValueError) as exc:
            raise StateError(f"state: cannot restore {cls.name}: {exc}") from exc
        return test

    def _restore(self, key: str, value: Any) -> Any:
        """Turn one plain state value back into its working form (override for arrays)."""
        return value

    def _derive(self) -> None:
        """Rebuild what is derived from learned state, not kept in it (lookup tables, …).

        Called when the reference closes and after a restore, once every state key
        is back.
        """


class FeatureTest(WindowedTest[ColumnT]):
    """The same windowed test on each of several features, run on all of them at once.

    ``columns`` names the features, in the order their rows take in the
    :class:`~detectors.batch.NumericBlock` segments fed to :meth:`update_many`
    (a block with more features is narrowed to these). Left at ``None``, the
    test watches one feature, fed as a column or a one-row block. Learned
    state is kept in arrays with one row per feature, so an update costs a
    few numpy calls whatever the number of features.

    :meth:`end_window` closes the window of every feature; it returns the
    verdict of the feature furthest past (or nearest to) its threshold, its
    name leading the explanation, and leaves every feature's verdict, in
    ``columns`` order, in :attr:`window_results` (:meth:`end_windows` closes
    the window too and returns them). :attr:`drift_detected` is true when any
    feature drifted.
    """

    columns: list[str] | None
    window_results: list[TestResult]

    def __init__(self, alpha: float, columns: list[str] | None) -> None:
        require(columns is None or (
            isinstance(columns, list) and len(columns) > 0
            and all(isinstance(name, str) for name in columns)
            and len(set(columns)) == len(columns)),
            "columns", "None or a non-empty list of distinct feature names", columns)
        self.columns = None if columns is None else list(columns)
        self.window_results = []
        super().__init__(alpha)

    @property
    def width(self) -> int:
        """Number of features watched."""
        return 1 if self.columns is None else len(self.columns)

    def end_window(self) -> TestResult:
        """Test every feature's window against its reference; start new windows.

        Returns the lead verdict (see the class docstring); :meth:`end_windows`
        returns every feature's.
        """
        results = self.end_windows()
        if self.columns is None:
            return results[0]
        lead = max(range(len(results)), key=lambda row: _urgency(results[row]))
        result, name = results[lead], self.columns[lead]
        return replace(result, explanation=lambda: f"{name}: {result.explanation}")

    def end_windows(self) -> list[TestResult]:
        """Close the window like :meth:`end_window`; return every feature's verdict."""
        results = self._close_windows()
        self.window_results = results
        self._drift = any(result.drift for result in results)
        return results

    @abstractmethod
    def _close_windows(self) -> list[TestResult]:
        """Every feature's verdict on its window, in ``columns`` order; reset the windows."""

    def _block(self, segment: NumericColumn | NumericBlock) -> NumericBlock:
        """The segment as a block of exactly this test's features."""
        if isinstance(segment, NumericBlock):
            if self.columns is not None:
                return segment.select(self.columns)
            if segment.values.shape[0] != 1:
                raise ConfigurationError(f"segment: expected a block of one feature, got "
                                         f"{segment.values.shape[0]} ({list(segment.names)})")
            return segment
        self._require_one_feature(segment)
        return NumericBlock.of(segment)

    def _require_one_feature(self, segment: NumericColumn | CategoricalColumn) -> None:
        """Refuse a single column when this test watches several features."""
        if self.width != 1:
            raise ConfigurationError(f"segment: expected a NumericBlock of {self.columns}, "
                                     f"got one {type(segment).__name__}")


def _urgency(result: TestResult) -> tuple[bool, float]:
    finite = 0.0 < result.threshold < math.inf
    return result.drift, result.statistic / result.threshold if finite else -math.inf


def _plain(value: Any) -> Any:
    tolist = getattr(value, "tolist", None)
    if tolist is not None:
        return tolist()
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(item) for item in value]
    return value
