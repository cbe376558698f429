"""Exceptions raised by :mod:`detectors`: one root, everything else derives from it."""


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
