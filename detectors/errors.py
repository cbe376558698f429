"""Exceptions raised by :mod:`detectors`: one root, everything else derives from it."""

import math


class DetectorError(Exception):
    """Root of every error raised by the detectors package."""


class ConfigurationError(DetectorError, ValueError):
    """A parameter was invalid; the message names it, what was expected and what was given."""


class StateError(DetectorError):
    """A serialized state could not be restored (wrong version, missing or malformed keys)."""


def require(condition: bool, name: str, expected: str, given: object) -> None:
    """Raise :class:`ConfigurationError` unless ``condition`` holds.

    Examples
    --------
    >>> require(3 > 0, "window_size", "a positive integer", 3)
    >>> require(-1 > 0, "window_size", "a positive integer", -1)
    Traceback (most recent call last):
    ...
    detectors.errors.ConfigurationError: window_size: expected a positive integer, got -1

    """
    if not condition:
        raise ConfigurationError(f"{name}: expected {expected}, got {given!r}")


def is_integer(value: object, minimum: int | None = None) -> bool:
    """Whether ``value`` is an ``int`` (not a ``bool``), and at least ``minimum`` if given.

    >>> is_integer(3, 1), is_integer(True), is_integer(2.0), is_integer(0, 1)
    (True, False, False, False)
    """
    return (isinstance(value, int) and not isinstance(value, bool)
            and (minimum is None or value >= minimum))


def is_number(value: object) -> bool:
    """Whether ``value`` is a finite ``int`` or ``float`` (not a ``bool``).

    >>> is_number(0.5), is_number(2), is_number(False), is_number(float("nan"))
    (True, True, False, False)
    """
    return (isinstance(value, int | float) and not isinstance(value, bool)
            and math.isfinite(value))
