"""Logs on standard error: readable lines, or one JSON object per line for a log collector."""

from __future__ import annotations

import datetime as dt
import logging
import sys
from typing import IO

import orjson

TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


class JsonFormatter(logging.Formatter):
    """One JSON object per record: ``ts`` (UTC, ISO 8601), ``level``, ``logger``, ``message``.

    An exception logged with the record adds ``exc_info`` (its formatted traceback).

    Examples
    --------
    >>> record = logging.LogRecord("driftline", logging.WARNING, __file__, 1,
    ...                            "lag %d", (3,), None)
    >>> record.created = 0.0
    >>> JsonFormatter().format(record)
    '{"ts":"1970-01-01T00:00:00+00:00","level":"WARNING","logger":"driftline","message":"lag 3"}'
    """

    def format(self, record: logging.LogRecord) -> str:
        """The record as one line of JSON."""
        entry = {"ts": dt.datetime.fromtimestamp(record.created, dt.UTC).isoformat(),
                 "level": record.levelname, "logger": record.name,
                 "message": record.getMessage()}
        if record.exc_info:
            entry["exc_info"] = self.formatException(record.exc_info)
        return orjson.dumps(entry, default=str).decode()


def configure_logging(level: str, log_format: str, stream: IO[str] | None = None) -> None:
    """Send every logger's records at ``level`` or above to ``stream`` (standard error).

    Parameters
    ----------
    level
        ``DEBUG``, ``INFO``, ``WARNING`` or ``ERROR``.
    log_format
        ``text`` or ``json`` (see :class:`JsonFormatter`).
    stream
        Where to write; standard error by default.
    """
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(JsonFormatter() if log_format == "json"
                         else logging.Formatter(TEXT_FORMAT))
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level)


__all__ = ["JsonFormatter", "configure_logging"]
