"""The Faust app around a driftline process: lifecycle, signals and the one web port.

:func:`make_app` builds a faust-streaming app per call (nothing global). It hosts:

* the worker's batch loop (:class:`~streams.runtime.worker_service.WorkerService`,
  a thread: the confluent-kafka loop stays the hot path), unless ``worker=False``
  (``driftline dashboard``);
* one web server (``web.host:web.port``) with the dashboard's page, ``/api`` and
  ``/events`` behind its access rules, and ``/metrics``, ``/healthz``, ``/readyz``.

What Faust 0.15.3 would do by default and is turned off here: its boot strategy
starts an aiokafka consumer that joins a consumer group named after the app id,
a leader assignor that creates a ``<id>-__assignor-__leader`` topic, a reply
consumer and the table manager, even with no agent or table. The app is built
with Kafka off (:class:`WebOnlyBoot`): the worker's own confluent-kafka clients are
the only ones, and no Faust topic appears on the broker. Faust's web server binds
``0.0.0.0:6066`` by default and takes no port 0; driftline passes ``web.host``
(loopback unless configured) and picks a free port for 0.

:func:`run_app` runs the app without Faust's command line (``faust.Worker`` would
change the working directory, take over logging and standard output, and exit the
process): SIGTERM or SIGINT stops the app, whose stop waits for the worker's last
checkpoint; a second signal exits at once.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import threading
from collections.abc import Callable, Iterable
from dataclasses import replace
from typing import Any, cast

import faust
from faust.app.base import BootStrategy
from faust.web import Request, Response, View

from streams.errors import DriftlineError
from streams.runtime.outputs import WorkerStats
from streams.runtime.probes import HEALTH, METRICS_ROUTES, OPEN_PATHS, PROBE_ROUTES, Health
from streams.runtime.worker import Worker
from streams.runtime.worker_service import WorkerService
from streams.settings import Settings
from streams.settings_service import LOOPBACK_HOSTS
from streams.stack.embedded import free_port
from streams.ui.access import access_middleware
from streams.ui.dashboard import DASHBOARD_ROUTES, install_dashboard
from streams.ui.routes import Route

log = logging.getLogger(__name__)


class WebOnlyBoot(BootStrategy):
    """Faust's services without its Kafka clients: sensors, the web server, agents."""

    enable_kafka = False


class DriftlineApp(faust.App):
    """A Faust app hosting one driftline process; build it with :func:`make_app`."""

    BootStrategy = WebOnlyBoot
    worker_service: WorkerService | None = None
    health: Health | None = None

    async def on_first_start(self) -> None:
        """Create no data directory: driftline keeps no Faust tables (its state is in Redis)."""

    async def on_started(self) -> None:
        """Start the worker's batch loop once the web server listens."""
        await super().on_started()
        if self.worker_service is not None:
            await self.add_runtime_dependency(self.worker_service)

    @property
    def web_url(self) -> str | None:
        """Address of the dashboard page (``None`` without a web server)."""
        if not self.conf.web_enabled:
            return None
        host = self.conf.web_bind
        shown = "127.0.0.1" if host in ("0.0.0.0", "::", "") else host  # noqa: S104 - display
        return f"http://{shown}:{self.conf.web_port}/"


def make_app(settings: Settings, *, worker: bool = True,
             worker_factory: Callable[[Settings], Worker] = Worker) -> DriftlineApp:
    """Build the Faust app of one driftline process.

    Parameters
    ----------
    settings : Settings
        Everything the process needs; ``web`` says where its web server listens
        (port -1: none, 0: a free one).
    worker : bool
        Host a worker (``driftline worker``); ``False`` serves the dashboard alone.
    worker_factory : callable
        Builds the worker from the settings (benchmarks pass a subclass).

    Returns
    -------
    DriftlineApp
        Not started: run it with :func:`run_app` (or ``await app.start()``).

    Examples
    --------
    >>> from dataclasses import replace
    >>> from streams.settings import load_settings
    >>> settings = load_settings(environ={})
    >>> app = make_app(settings.with_overrides(web=replace(settings.web, port=18765)))
    >>> app.web_url, app.worker_service is not None
    ('http://127.0.0.1:18765/', True)
    >>> sorted(p for p in app_paths(app) if not p.startswith("/api"))
    ['/', '/events', '/healthz', '/metrics', '/readyz']
    """
    web_enabled = settings.web.port >= 0
    port = settings.web.port if settings.web.port > 0 else free_port()
    if web_enabled and settings.web.host not in LOOPBACK_HOSTS and not (
            settings.dashboard.token or settings.dashboard.username):
        log.warning("the web port listens on %s without dashboard credentials: anyone who "
                    "reaches it reads the dashboard (set dashboard.token_file or "
                    "dashboard.username/password_file)", settings.web.host)
    app = DriftlineApp(
        settings.group_id,
        broker=[f"kafka://{server.strip()}" for server in settings.bootstrap_servers.split(",")],
        autodiscover=False,
        web_enabled=web_enabled,
        web_port=port,
        web_bind=settings.web.host,
        web_host=settings.web.host,
        # The Host allow-list's default names the address the port listens on.
        web_application_options={"middlewares": [access_middleware(
            replace(settings.dashboard, host=settings.web.host), OPEN_PATHS)]},
    )
    app.worker_service = WorkerService(settings, worker_factory) if worker else None
    app.health = Health(settings, app.worker_service)
    if web_enabled:
        web_app = cast(Any, app.web).web_app
        install_dashboard(web_app, settings)
        web_app[HEALTH] = app.health
        register_routes(app, DASHBOARD_ROUTES + PROBE_ROUTES
                        + (METRICS_ROUTES if worker else ()))
    return app


def register_routes(app: faust.App, routes: Iterable[Route]) -> None:
    """Register each route's plain handler as a Faust view (``GET``) of ``app``."""
    for route in routes:
        app.page(route.path, name=route.path)(_view(route))


def _view(route: Route) -> Callable[[View, Request], Any]:
    handler = route.handler

    async def get(view: View, request: Request) -> Response:
        # The aiohttp driver hands its own requests through; the handler answers with
        # aiohttp responses (a stream for /events).
        return cast(Response, await handler(cast(Any, request)))

    get.__name__ = get.__qualname__ = f"view_{handler.__name__.strip('_')}"
    get.__doc__ = handler.__doc__
    return get


def app_paths(app: DriftlineApp) -> list[str]:
    """The paths ``app``'s web server routes (static files aside)."""
    router = cast(Any, app.web).web_app.router
    return sorted({resource.canonical for resource in router.resources()
                   if not resource.canonical.startswith("/static")})


async def serve(app: DriftlineApp, stop: threading.Event | None = None) -> WorkerStats | None:
    """Start ``app``, run it until stopped, stop it; return the hosted worker's totals.

    Without ``stop``, SIGTERM and SIGINT stop it (a second one exits at once); with
    it, setting ``stop`` does. It stops too when the hosted worker's loop ends on its
    own, and then raises what ended it.
    """
    loop = asyncio.get_running_loop()
    finished = asyncio.Event()
    service = app.worker_service
    if service is not None:
        def worker_finished() -> None:
            loop.call_soon_threadsafe(finished.set)

        service.on_finished = worker_finished
    if stop is None:
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, _on_signal, finished, signum)
    else:
        waiter = threading.Thread(target=_wait_for_stop, args=(stop, loop, finished),
                                  name="driftline-stop", daemon=True)
        waiter.start()
    try:
        try:
            await app.start()
        except OSError as exc:
            raise DriftlineError(f"web.port: cannot serve on {app.conf.web_bind}:"
                                 f"{app.conf.web_port} ({exc}); set DRIFTLINE_WEB_PORT to a "
                                 "free port (0 = any)") from exc
        await finished.wait()
    finally:
        await app.stop()
        if stop is None:
            for signum in (signal.SIGTERM, signal.SIGINT):
                loop.remove_signal_handler(signum)
    if service is not None and service.error is not None:
        raise service.error
    return service.stats if service is not None else None


def run_app(app: DriftlineApp, stop: threading.Event | None = None) -> WorkerStats | None:
    """Run ``app`` on a new event loop until stopped (see :func:`serve`)."""
    return asyncio.run(serve(app, stop))


def _on_signal(finished: asyncio.Event, signum: int) -> None:
    if finished.is_set():
        raise SystemExit(128 + signum)
    log.info("signal %s: stopping (the worker checkpoints first)", signal.Signals(signum).name)
    finished.set()


def _wait_for_stop(stop: threading.Event, loop: asyncio.AbstractEventLoop,
                   finished: asyncio.Event) -> None:
    while not stop.wait(0.2):
        if loop.is_closed() or finished.is_set():
            return
    try:
        loop.call_soon_threadsafe(finished.set)
    except RuntimeError:
        pass                       # the app stopped meanwhile: its loop is closed


__all__ = ["DriftlineApp", "WebOnlyBoot", "make_app", "register_routes", "run_app", "serve"]
