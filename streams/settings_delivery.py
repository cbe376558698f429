"""The ``delivery`` section: the alert-delivery app (``driftline deliver``)."""

from __future__ import annotations

from dataclasses import dataclass

from detectors.errors import require


@dataclass(frozen=True)
class DeliverySettings:
    """Alert delivery to the webhooks of ``sinks.webhooks`` (``driftline deliver``).

    Parameters
    ----------
    group_id
        Consumer group (and Faust app id) of the delivery app, which reads the alerts
        topic; its committed offsets are the delivery queue. Empty: ``<group_id>-delivery``.
    web_host
        Address the delivery app's web port (``/healthz``) listens on.
    web_port
        Port of ``/healthz`` (0 = any free port).
    session_timeout_ms
        Consumer-group session timeout of the delivery app.
    commit_interval_s
        How often the offsets of alerts delivered (or parked) are committed; what a
        ``kill -9`` sends again is at most this much.

    Examples
    --------
    >>> DeliverySettings().group("driftline")
    'driftline-delivery'
    """

    group_id: str = ""
    web_host: str = "127.0.0.1"
    web_port: int = 9465
    session_timeout_ms: int = 10_000
    commit_interval_s: float = 1.0

    def __post_init__(self) -> None:
        """Refuse values that cannot work, naming the key."""
        require(0 <= self.web_port <= 65535, "web_port", "a port (0 = any free port)",
                self.web_port)
        require(bool(self.web_host), "web_host", "an address to listen on", self.web_host)
        require(self.session_timeout_ms >= 1000, "session_timeout_ms", "at least 1000",
                self.session_timeout_ms)
        require(self.commit_interval_s > 0, "commit_interval_s", "a number > 0",
                self.commit_interval_s)

    def group(self, worker_group: str) -> str:
        """The delivery app's consumer group, given the workers' ``group_id``."""
        return self.group_id or f"{worker_group}-delivery"
