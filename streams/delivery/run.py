"""Run the delivery app as a Faust worker (``driftline deliver``)."""

from __future__ import annotations

import logging
import tempfile
from pathlib import Path
from typing import Any

from streams.settings import Settings

log = logging.getLogger(__name__)


def run_delivery(settings: Settings, log_level: str = "INFO") -> int:
    """Create the topics, then run the delivery app until SIGTERM/SIGINT; the exit code."""
    from streams.delivery.app import make_delivery_app
    from streams.runtime.topics import ensure_topics

    ensure_topics(settings)
    with tempfile.TemporaryDirectory(prefix="driftline-deliver-") as datadir:
        return _run(make_delivery_app(settings, Path(datadir)), settings, log_level)


def _run(app: Any, settings: Settings, log_level: str) -> int:
    from faust.worker import Worker

    conf = settings.delivery
    log.info("delivering %s to %d receivers as group %s; /healthz on http://%s:%d/healthz",
             settings.topics.name("alerts"), len(settings.sinks.webhooks),
             app.conf.id, conf.web_host, conf.web_port)
    worker = Worker(app, loglevel=log_level, quiet=True, redirect_stdouts=False,
                    override_logging=False)
    try:
        worker.execute_from_commandline()
    except SystemExit as exc:
        return exc.code if isinstance(exc.code, int) else 0
    return 0
