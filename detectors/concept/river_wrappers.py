"""river's drift detectors behind :class:`~detectors.concept.base.ErrorStreamDetector`.

This module holds the shared plumbing and the detectors for binary streams
(DDM, EDDM, HDDM_A, HDDM_W); :mod:`detectors.concept.river_real_valued` holds
ADWIN, Page-Hinkley and KSWIN. Each wrapper takes the river detector's own
parameters (same names, same defaults, validated at construction) and adds
what river lacks: non-finite values are dropped before river sees them,
``update_many`` over numpy batches, and a versioned plain-dict state. The
detectors for binary streams count a value ``>= 0.5`` as an error; ADWIN,
Page-Hinkley and KSWIN take real values.

State: the pure-Python detectors are written out attribute by attribute and
restored exactly. ADWIN's buckets live in a Rust object that cannot be read,
so :class:`RiverADWIN` keeps the values seen since its last reset in a bounded
replay buffer and rebuilds ADWIN by replaying them (see its docstring).
"""

from __future__ import annotations

from abc import abstractmethod
from typing import Any, ClassVar, Protocol, cast

from river.drift import binary

from detectors.concept import _river_state
from detectors.concept.base import ErrorStreamDetector
from detectors.errors import require

__all__ = ["RiverDDM", "RiverEDDM", "RiverHDDMA", "RiverHDDMW"]


class _RiverModel(Protocol):
    """What the wrappers use of a river drift detector (river's own classes are not typed)."""

    @property
    def drift_detected(self) -> bool: ...

    def update(self, x: float) -> Any: ...


def _build(cls: Any, **config: Any) -> _RiverModel:
    """Instantiate river's (untyped) detector class ``cls`` with ``config``."""
    return cast(_RiverModel, cls(**config))


def _probability(name: str, value: float, *, open_low: bool = True) -> None:
    low_ok = value > 0.0 if open_low else value >= 0.0
    require(isinstance(value, int | float) and low_ok and value < 1.0, name,
            "a number in (0, 1)" if open_low else "a number in [0, 1)", value)


def _positive_int(name: str, value: int, minimum: int = 1) -> None:
    require(isinstance(value, int) and not isinstance(value, bool) and value >= minimum, name,
            f"an integer >= {minimum}", value)


def _positive(name: str, value: float) -> None:
    require(isinstance(value, int | float) and not isinstance(value, bool) and value > 0, name,
            "a positive number", value)


class _RiverDetector(ErrorStreamDetector):
    """Shared plumbing: build the river object from the config, feed it, write its state."""

    binary: ClassVar[bool]
    _river: _RiverModel

    @abstractmethod
    def _river_detector(self) -> _RiverModel:
        """A fresh river detector built from this wrapper's configuration."""

    def _reset(self) -> None:
        # A fresh river object is exactly river's own reset (river resets lazily, we eagerly).
        self._river = self._river_detector()

    def _update(self, x: float) -> bool:
        if self.binary:
            x = 1.0 if x >= 0.5 else 0.0
        self._river.update(x)
        return bool(self._river.drift_detected)

    def _learned_state(self) -> dict[str, Any]:
        learned = {key: value for key, value in vars(self._river).items()
                   if key not in self.config_keys and not callable(value)}
        return {"river": _river_state.encode(learned)}

    def _load_learned_state(self, state: dict[str, Any]) -> None:
        river = self._river_detector()
        for key, value in _river_state.decode(state["river"]).items():
            if key in self.config_keys or not hasattr(river, key):
                raise KeyError(f"unexpected river attribute {key!r}")
            setattr(river, key, value)
        self._river = river


class RiverDDM(_RiverDetector):
    """river's DDM (Gama et al. 2004): error rate vs its lowest ``p + s`` so far.

    Parameters
    ----------
    warm_start
        Events before the test starts.
    warning_threshold, drift_threshold
        Multiples of the standard deviation at the minimum for warning and drift.

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(7)
    >>> stream = np.r_[rng.random(2000) < 0.1, rng.random(2000) < 0.5].astype(float)
    >>> hits = RiverDDM().update_many(stream)
    >>> bool(((hits >= 2000) & (hits < 2300)).any())
    True

    """

    name = "river_ddm"
    binary = True
    config_keys = ("warm_start", "warning_threshold", "drift_threshold")

    def __init__(self, warm_start: int = 30, warning_threshold: float = 2.0,
                 drift_threshold: float = 3.0) -> None:
        _positive_int("warm_start", warm_start, 0)
        _positive("warning_threshold", warning_threshold)
        _positive("drift_threshold", drift_threshold)
        require(drift_threshold >= warning_threshold, "drift_threshold",
                f"a number >= warning_threshold ({warning_threshold})", drift_threshold)
        self.warm_start = warm_start
        self.warning_threshold = warning_threshold
        self.drift_threshold = drift_threshold
        super().__init__()

    def _river_detector(self) -> _RiverModel:
        return _build(binary.DDM, warm_start=self.warm_start,
                      warning_threshold=self.warning_threshold,
                      drift_threshold=self.drift_threshold)


class RiverEDDM(_RiverDetector):
    """river's EDDM (Baena-García et al. 2006): distance between errors vs its maximum.

    Parameters
    ----------
    warm_start
        Events (and errors) before the test starts.
    alpha, beta
        Warning and drift levels of the distance ratio (``alpha >= beta``).

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(7)
    >>> stream = np.r_[rng.random(5000) < 0.05, rng.random(3000) < 0.5].astype(float)
    >>> hits = RiverEDDM().update_many(stream)
    >>> bool(((hits >= 5000) & (hits < 6000)).any())
    True

    """

    name = "river_eddm"
    binary = True
    config_keys = ("warm_start", "alpha", "beta")

    def __init__(self, warm_start: int = 30, alpha: float = 0.95, beta: float = 0.9) -> None:
        _positive_int("warm_start", warm_start, 0)
        _probability("alpha", alpha)
        _probability("beta", beta)
        require(beta <= alpha, "beta", f"a number <= alpha ({alpha})", beta)
        self.warm_start = warm_start
        self.alpha = alpha
        self.beta = beta
        super().__init__()

    def _river_detector(self) -> _RiverModel:
        return _build(binary.EDDM, warm_start=self.warm_start, alpha=self.alpha, beta=self.beta)


class RiverHDDMA(_RiverDetector):
    """river's HDDM_A (Frías-Blanco et al. 2015): Hoeffding bound on moving averages.

    Parameters
    ----------
    drift_confidence, warning_confidence
        Significance levels of the drift and warning tests.
    two_sided_test
        Also signal when the error rate *falls* (river's default: no).

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(7)
    >>> stream = np.r_[rng.random(2000) < 0.1, rng.random(2000) < 0.5].astype(float)
    >>> hits = RiverHDDMA().update_many(stream)
    >>> bool(((hits >= 2000) & (hits < 2100)).any())
    True

    """

    name = "river_hddm_a"
    binary = True
    config_keys = ("drift_confidence", "warning_confidence", "two_sided_test")

    def __init__(self, drift_confidence: float = 0.001, warning_confidence: float = 0.005,
                 two_sided_test: bool = False) -> None:
        _probability("drift_confidence", drift_confidence)
        _probability("warning_confidence", warning_confidence)
        require(isinstance(two_sided_test, bool), "two_sided_test", "a bool", two_sided_test)
        self.drift_confidence = drift_confidence
        self.warning_confidence = warning_confidence
        self.two_sided_test = two_sided_test
        super().__init__()

    def _river_detector(self) -> _RiverModel:
        return _build(binary.HDDMA, drift_confidence=self.drift_confidence,
                      warning_confidence=self.warning_confidence,
                      two_sided_test=self.two_sided_test)


class RiverHDDMW(_RiverDetector):
    """river's HDDM_W (Frías-Blanco et al. 2015): McDiarmid bound on weighted moving averages.

    Parameters
    ----------
    drift_confidence, warning_confidence
        Significance levels of the drift and warning tests.
    lambda_val
        Weight of the newest value in the exponentially weighted means.
    two_sided_test
        Also signal when the error rate *falls* (river's default: no).

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(7)
    >>> stream = np.r_[rng.random(2000) < 0.1, rng.random(2000) < 0.5].astype(float)
    >>> hits = RiverHDDMW().update_many(stream)
    >>> bool(((hits >= 2000) & (hits < 2100)).any())
    True

    """

    name = "river_hddm_w"
    binary = True
    config_keys = ("drift_confidence", "warning_confidence", "lambda_val", "two_sided_test")

    def __init__(self, drift_confidence: float = 0.001, warning_confidence: float = 0.005,
                 lambda_val: float = 0.05, two_sided_test: bool = False) -> None:
        _probability("drift_confidence", drift_confidence)
        _probability("warning_confidence", warning_confidence)
        _probability("lambda_val", lambda_val)
        require(isinstance(two_sided_test, bool), "two_sided_test", "a bool", two_sided_test)
        self.drift_confidence = drift_confidence
        self.warning_confidence = warning_confidence
        self.lambda_val = lambda_val
        self.two_sided_test = two_sided_test
        super().__init__()

    def _river_detector(self) -> _RiverModel:
        return _build(binary.HDDMW, drift_confidence=self.drift_confidence,
                      warning_confidence=self.warning_confidence,
                      lambda_val=self.lambda_val, two_sided_test=self.two_sided_test)
