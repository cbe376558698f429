"""The Kafka worker as a Faust (mode) service: the batch loop runs in a thread.

The hot path stays the confluent-kafka ``consume(batch_size)`` loop of
:class:`~streams.runtime.worker.Worker` (DESIGN: 3.4 µs/event run this way, a
per-message agent ~60× more). The service starts that loop in its own thread when
the app starts, and on stop sets the loop's stop event and waits for the thread:
the worker's last checkpoint and its clean leave of the group happen before the
app reports itself stopped. A loop that ends on its own (an error) calls
``on_finished`` so that whoever runs the app stops it and reports the error.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Callable
from typing import Any

from mode import Service

from streams.runtime.outputs import WorkerStats
from streams.runtime.worker import Worker
from streams.settings import Settings

log = logging.getLogger(__name__)

STOP_TIMEOUT_S = 60.0


class WorkerService(Service):
    """Runs one :class:`Worker` in a thread for as long as the service runs.

    Parameters
    ----------
    settings : Settings
        The worker's settings.
    worker_factory : callable, optional
        Builds the worker from the settings (benchmarks pass a subclass).

    Examples
    --------
    >>> from streams.settings import load_settings
    >>> service = WorkerService(load_settings(environ={}))
    >>> service.worker is None, service.error is None
    (True, True)
    """

    def __init__(self, settings: Settings,
                 worker_factory: Callable[[Settings], Worker] = Worker,
                 **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.settings = settings
        self.worker_factory = worker_factory
        self.worker: Worker | None = None
        self.stats: WorkerStats | None = None
        self.error: BaseException | None = None
        """What ended the batch loop, if it did not end because it was asked to."""
        self.on_finished: Callable[[], None] = lambda: None
        """Called (from the worker's thread) when the batch loop has ended."""
        self._stop_loop = threading.Event()
        self._thread: threading.Thread | None = None

    async def on_start(self) -> None:
        """Build the worker (its Kafka and Redis clients) and start its batch loop."""
        self.worker = await asyncio.to_thread(self.worker_factory, self.settings)
        self._thread = threading.Thread(target=self._run, name="driftline-worker", daemon=True)
        self._thread.start()

    async def on_stop(self) -> None:
        """Ask the batch loop to stop and wait for its last checkpoint."""
        self._stop_loop.set()
        thread = self._thread
        if thread is not None:
            await asyncio.to_thread(thread.join, STOP_TIMEOUT_S)
            if thread.is_alive():
                log.error("the worker did not stop within %.0f s: its partitions resume from "
                          "their last checkpoint", STOP_TIMEOUT_S)

    @property
    def running(self) -> bool:
        """Whether the batch loop's thread is running."""
        return self._thread is not None and self._thread.is_alive()

    def _run(self) -> None:
        assert self.worker is not None
        try:
            self.stats = self.worker.run(self._stop_loop)
        except BaseException as exc:  # noqa: BLE001 - handed to whoever runs the app
            self.error = exc
        finally:
            self.on_finished()


__all__ = ["WorkerService"]
