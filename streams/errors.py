"""Exceptions raised by :mod:`streams`: one root, causes chained with ``from``."""


class DriftlineError(Exception):
    """Root of every error raised by the streams package."""


class SettingsError(DriftlineError, ValueError):
    """Configuration is invalid; the message names the key, what was expected and what was given."""


class StackError(DriftlineError):
    """The embedded broker or Redis could not be started or reached."""


class CheckpointError(DriftlineError):
    """A checkpoint could not be written or read back."""
