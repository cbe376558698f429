"""driftline's version, as installed: one source of truth, the package metadata."""

from __future__ import annotations

from functools import cache


@cache
def driftline_version() -> str:
    """The installed distribution's version (``pyproject.toml``'s ``version``).

    Returns ``"unknown"`` when the code runs from a source tree that was never
    installed (``pip install -e .`` counts as installed).

    Examples
    --------
    >>> driftline_version().count(".") >= 1
    True
    """
    # Imported here: importlib.metadata costs ~30 ms at start-up, which every CLI command
    # (a `driftline replay`, say) paid whether or not it printed the version.
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("driftline")
    except PackageNotFoundError:
        return "unknown"
