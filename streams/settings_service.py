"""Settings of the worker process as a service: its one web port and its log format.

Declared apart from :mod:`streams.settings` (which registers them as the ``web`` and
``log`` sections) to keep that file readable; the keys, variables and reference are
derived the same way (``DRIFTLINE_WEB_PORT``, ``DRIFTLINE_LOG_FORMAT``, …).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

from detectors.errors import require

LOG_FORMATS = ("text", "json")
LOOPBACK_HOSTS = ("127.0.0.1", "::1", "localhost")
# Keys the web section replaced, in the order they are used when web.<key> is not set:
# the metrics port first (a Prometheus scrapes it), then the dashboard's.
DEPRECATED_WEB_KEYS = (("port", "worker", "metrics_port"), ("port", "dashboard", "port"),
                       ("host", "worker", "metrics_host"), ("host", "dashboard", "host"))
_log = logging.getLogger("driftline.settings")


@dataclass(frozen=True)
class WebSettings:
    """The one web port of a worker: dashboard, ``/api``, ``/events``, ``/metrics``, probes.

    Parameters
    ----------
    port
        Port of the worker's web server (0 = any free port, -1 = no web server). It
        serves the dashboard page, its ``/api`` and ``/events``, Prometheus
        ``/metrics``, ``/healthz`` (the process is alive) and ``/readyz`` (partitions
        assigned, Redis and the broker reachable). Replaces ``dashboard.port`` and
        ``worker.metrics_port``, which still work when this key is not set.
    host
        Address the web server listens on. The default keeps it on this machine
        (``0.0.0.0`` in a container); the dashboard's access rules (``dashboard.token``,
        ``dashboard.username``, ``dashboard.allowed_hosts``) cover the page, ``/api``
        and ``/events``, not ``/metrics`` and the probes.

    Examples
    --------
    >>> WebSettings().port, WebSettings().host
    (8765, '127.0.0.1')
    """

    port: int = 8765
    host: str = "127.0.0.1"

    def __post_init__(self) -> None:
        require(-1 <= self.port <= 65535, "port", "a port (0 = any free port, -1 = off)",
                self.port)
        require(bool(self.host), "host", "an address to listen on", self.host)


@dataclass(frozen=True)
class LogSettings:
    """How driftline writes its logs (to standard error).

    Parameters
    ----------
    format
        ``text`` (one readable line per record) or ``json`` (one JSON object per line:
        ``ts``, ``level``, ``logger``, ``message``, and ``exc_info`` when an exception
        is logged), for a log collector. ``--log-format`` on the command line wins.

    Examples
    --------
    >>> LogSettings().format
    'text'
    """

    format: str = "text"

    def __post_init__(self) -> None:
        require(self.format in LOG_FORMATS, "format", " or ".join(LOG_FORMATS), self.format)


def web_settings(raw: Mapping[str, Any], sections: Mapping[str, Any]) -> WebSettings:
    """The ``web`` section, with the deprecated ports and hosts it replaced applied (warned).

    Parameters
    ----------
    raw
        The settings as read (YAML and variables): which keys were given.
    sections
        The validated sections, by name (``web``, ``worker``, ``dashboard``).

    Examples
    --------
    >>> from types import SimpleNamespace
    >>> web_settings({"worker": {"metrics_port": 9464}},
    ...              {"worker": SimpleNamespace(metrics_port=9464)}).port
    9464
    """
    web: WebSettings = sections.get("web", WebSettings())
    given = set(raw.get("web") or {})
    changes: dict[str, Any] = {}
    for key, section, name in DEPRECATED_WEB_KEYS:
        if name not in (raw.get(section) or {}):
            continue
        _log.warning("%s.%s is deprecated: the worker serves the dashboard, /metrics and its "
                     "probes on one port, web.%s (DRIFTLINE_WEB_%s)%s", section, name, key,
                     key.upper(), "" if key in given or key in changes
                     else f"; using {section}.{name} as web.{key}")
        if key not in given and key not in changes:
            changes[key] = getattr(sections[section], name)
    return replace(web, **changes)


__all__ = ["LOG_FORMATS", "LOOPBACK_HOSTS", "LogSettings", "WebSettings", "web_settings"]
