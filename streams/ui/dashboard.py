"""The live web dashboard: a page, JSON reads of the hot view, and server-sent events.

The worker keeps the live view in Redis (:class:`~streams.state.hotview.HotView`) and
announces every write on its pub/sub channel. This server subscribes to that
channel and pushes what is new to each open page over ``/events``; it never
reads Kafka and holds no state of its own beyond what each page was sent.

Routes:

* ``/`` — the page (``streams/ui/static``: plain HTML, CSS and JS, no network);
* ``/api/models``, ``/api/labels``, ``/api/alerts?limit=``,
  ``/api/throughput?limit=``, ``/api/series?model_id=&model_version=&limit=`` —
  the hot view as JSON;
* ``/api/drilldown?model_id=&model_version=&feature=`` or ``?alert_id=``,
  ``/api/audit?model_id=&model_version=&limit=`` — the drill-down and the audit trail
  (:mod:`streams.ui.drilldown`);
* ``/events`` — server-sent events: one ``snapshot``, then an ``update`` with
  only the new windows, alerts and throughput samples after each write.

Label coverage, performance and segments are read from the hot view's
``driftline:hot:<group_id>:labels`` hash (fields ``model_id|partition``; see
:meth:`HotView.labels`); the page says "no labels joined yet" while it is empty.
Label-driven windows (performance, estimates) stay out of the drift series.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import logging
import threading
import time
from collections import OrderedDict
from pathlib import Path
from typing import Any

import orjson
import redis
from aiohttp import web

from streams.errors import DriftlineError
from streams.runtime.connections import redacted
from streams.settings import Settings
from streams.state.connect import async_redis_client, redis_client
from streams.state.hotview import HotView
from streams.ui import drilldown
from streams.ui.access import access_middleware

log = logging.getLogger("driftline.dashboard")

STATIC_DIR = Path(__file__).parent / "static"
MAX_LIMIT = 1000
# Writes arriving this close together are sent as one update: a busy worker writes
# the hot view after every batch, and a page needs no more than a few frames a second.
COALESCE_S = 0.05
POLL_S = 5.0            # re-check without a notification, in case one was missed
KEEPALIVE_S = 15.0
_HOT_VIEW = web.AppKey("hot_view", HotView)
_SETTINGS = web.AppKey("settings", Settings)
_CLOSING = web.AppKey("closing", asyncio.Event)


class LiveFeed:
    """What one page has been sent, so that each update holds only what is new.

    Parameters
    ----------
    hot : HotView
        The live view to read.
    alerts_limit : int
        Recent alerts in the snapshot, and the most looked at per update.
    seen_max : int
        Alert ids remembered to drop repeats (at-least-once delivery re-sends ids).
    """

    def __init__(self, hot: HotView, alerts_limit: int = 100, seen_max: int = 2000) -> None:
        self.hot = hot
        self.alerts_limit = alerts_limit
        self.seen_max = seen_max
        self._last_index: dict[str, int] = {}
        self._last_throughput_ts = 0.0
        self._seen: OrderedDict[str, None] = OrderedDict()
        self._models_json = b""

    def snapshot(self) -> dict[str, Any]:
        """Everything the page draws, and remember it as sent."""
        models = self.hot.models()
        self._models_json = orjson.dumps(models)
        series = {}
        for model in models:
            name = f"{model['model_id']}|{model['model_version']}"
            points = self.hot.series(model["model_id"], model["model_version"])
            series[name] = points
            self._last_index[name] = points[-1]["index"] if points else -1
        alerts = self.hot.alerts(self.alerts_limit)
        for alert in reversed(alerts):
            self._remember(alert)
        throughput = self.hot.throughput()
        if throughput:
            self._last_throughput_ts = throughput[-1]["ts"]
        return {"models": models, "labels": self.hot.labels(), "series": series,
                "alerts": alerts, "throughput": throughput, "server_time": time.time()}

    def update(self) -> dict[str, Any] | None:
        """What changed since the last call (``None`` when nothing did).

        ``series`` holds only windows newer than those sent, oldest first; a
        series whose windows restarted (a rebaseline) is sent whole and named in
        ``reset``. ``alerts`` holds unseen alerts, oldest first.
        """
        models = self.hot.models()
        models_json = orjson.dumps(models)
        series: dict[str, list[dict[str, Any]]] = {}
        reset = []
        for model in models:
            name = f"{model['model_id']}|{model['model_version']}"
            last = self._last_index.get(name, -1)
            recent = self.hot.series(model["model_id"], model["model_version"], limit=50)
            if recent and recent[-1]["index"] < last:
                recent = self.hot.series(model["model_id"], model["model_version"])
                reset.append(name)
                fresh = recent
            else:
                fresh = [point for point in recent if point["index"] > last]
            if fresh:
                series[name] = fresh
                self._last_index[name] = fresh[-1]["index"]
        alerts = [a for a in reversed(self.hot.alerts(self.alerts_limit)) if self._remember(a)]
        throughput = [p for p in self.hot.throughput(limit=50)
                      if p["ts"] > self._last_throughput_ts]
        if throughput:
            self._last_throughput_ts = throughput[-1]["ts"]
        if not (series or alerts or throughput or models_json != self._models_json):
            return None
        self._models_json = models_json
        return {"models": models, "labels": self.hot.labels(), "series": series,
                "reset": reset, "alerts": alerts, "throughput": throughput,
                "server_time": time.time()}

    def _remember(self, alert: dict[str, Any]) -> bool:
        """Note an alert as sent; ``False`` when it had been already."""
        alert_id = str(alert.get("alert_id", ""))
        if alert_id in self._seen:
            return False
        self._seen[alert_id] = None
        while len(self._seen) > self.seen_max:
            self._seen.popitem(last=False)
        return True


def _limit(request: web.Request, default: int) -> int:
    """The ``limit`` query parameter, validated.

    Raises
    ------
    aiohttp.web.HTTPBadRequest
        Naming the parameter, what was expected and what was given.
    """
    text = request.query.get("limit", str(default))
    try:
        value = int(text)
    except ValueError:
        value = 0
    if not 1 <= value <= MAX_LIMIT:
        raise web.HTTPBadRequest(text=f"limit: expected an integer from 1 to {MAX_LIMIT}, "
                                 f"got {text!r}")
    return value


async def _read(request: web.Request, method: str, *args: Any) -> web.Response:
    # The hot view's client is synchronous: keep its round trips off the event loop.
    try:
        value = await asyncio.to_thread(getattr(request.app[_HOT_VIEW], method), *args)
    except redis.RedisError as exc:
        raise web.HTTPServiceUnavailable(text=f"hot view unreadable: {exc}") from exc
    return web.Response(body=orjson.dumps(value), content_type="application/json")


async def _page(request: web.Request) -> web.FileResponse:
    return web.FileResponse(STATIC_DIR / "index.html", headers={"Cache-Control": "no-cache"})


async def _models(request: web.Request) -> web.Response:
    return await _read(request, "models")


async def _labels(request: web.Request) -> web.Response:
    return await _read(request, "labels")


async def _alerts(request: web.Request) -> web.Response:
    return await _read(request, "alerts", _limit(request, 50))


async def _throughput(request: web.Request) -> web.Response:
    return await _read(request, "throughput", _limit(request, 360))


async def _series(request: web.Request) -> web.Response:
    missing = [k for k in ("model_id", "model_version") if not request.query.get(k)]
    if missing:
        raise web.HTTPBadRequest(text=f"{missing[0]}: expected a non-empty query parameter, "
                                 "got none")
    return await _read(request, "series", request.query["model_id"],
                       request.query["model_version"], _limit(request, 360))


async def _drilldown_view(request: web.Request, view: Any) -> web.Response:
    """``view(hot_view, query)`` as JSON; its refusals as 400 (bad request) or 404 (unknown)."""
    try:
        value = await asyncio.to_thread(view, request.app[_HOT_VIEW], dict(request.query))
    except drilldown.NotInLiveView as exc:
        raise web.HTTPNotFound(text=str(exc)) from exc
    except drilldown.DrillDownError as exc:
        raise web.HTTPBadRequest(text=str(exc)) from exc
    except redis.RedisError as exc:
        raise web.HTTPServiceUnavailable(text=f"hot view unreadable: {exc}") from exc
    return web.Response(body=orjson.dumps(value), content_type="application/json")


async def _drilldown(request: web.Request) -> web.Response:
    return await _drilldown_view(request, drilldown.drilldown)


async def _audit(request: web.Request) -> web.Response:
    return await _drilldown_view(request, drilldown.audit_trail)


async def _send(response: web.StreamResponse, event: str, payload: Any) -> None:
    await response.write(b"event: " + event.encode() + b"\ndata: " + orjson.dumps(payload)
                         + b"\n\n")


async def _events(request: web.Request) -> web.StreamResponse:
    """Server-sent events: a snapshot, then updates as the worker writes the hot view."""
    app = request.app
    response = web.StreamResponse(headers={"Content-Type": "text/event-stream",
                                           "Cache-Control": "no-cache",
                                           "X-Accel-Buffering": "no"})
    await response.prepare(request)
    await response.write(b"retry: 2000\n\n")
    feed = LiveFeed(app[_HOT_VIEW])
    client = async_redis_client(app[_SETTINGS].redis_url, app[_SETTINGS].redis,
                                socket_timeout=5.0)
    try:
        # Closed by aclosing(): redis-py leaves PubSub.aclose unannotated.
        async with contextlib.aclosing(client.pubsub()) as pubsub:
            # Subscribe before the snapshot: a write between the two is then not lost.
            await pubsub.subscribe(app[_HOT_VIEW].channel)
            snapshot = await asyncio.to_thread(feed.snapshot)
            await _send(response, "snapshot", {"group_id": app[_SETTINGS].group_id, **snapshot})
            last_check = last_write = time.monotonic()
            while not app[_CLOSING].is_set():
                message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=1.0)
                now = time.monotonic()
                if message is None and now - last_check < POLL_S:
                    if now - last_write >= KEEPALIVE_S:
                        await response.write(b": keepalive\n\n")
                        last_write = now
                    continue
                if message is not None:
                    await asyncio.sleep(COALESCE_S)
                    while await pubsub.get_message(ignore_subscribe_messages=True, timeout=0.0):
                        pass
                last_check = time.monotonic()
                update = await asyncio.to_thread(feed.update)
                if update is not None:
                    await _send(response, "update", update)
                    last_write = time.monotonic()
    except ConnectionResetError:
        pass                     # the page went away
    except redis.RedisError as exc:
        # The page shows the problem and EventSource reconnects (with a new snapshot).
        log.warning("dashboard lost the hot view: %s", exc)
        try:
            await _send(response, "problem", {"error": f"hot view unreadable: {exc}"})
        except ConnectionResetError:
            pass
    finally:
        await client.aclose()
    return response


async def _on_shutdown(app: web.Application) -> None:
    app[_CLOSING].set()


def make_app(settings: Settings, hot: HotView | None = None) -> web.Application:
    """Build the dashboard's aiohttp application for ``settings``' Redis and group."""
    app = web.Application(middlewares=[access_middleware(settings.dashboard)])
    app[_SETTINGS] = settings
    app[_HOT_VIEW] = hot or HotView(settings.redis_url, settings.group_id,
                                           security=settings.redis)
    app[_CLOSING] = asyncio.Event()
    app.on_shutdown.append(_on_shutdown)
    app.router.add_get("/", _page)
    app.router.add_get("/api/models", _models)
    app.router.add_get("/api/labels", _labels)
    app.router.add_get("/api/alerts", _alerts)
    app.router.add_get("/api/throughput", _throughput)
    app.router.add_get("/api/series", _series)
    app.router.add_get("/api/drilldown", _drilldown)
    app.router.add_get("/api/audit", _audit)
    app.router.add_get("/events", _events)
    app.router.add_static("/static", STATIC_DIR)
    return app


class Dashboard:
    """The dashboard served from a background thread with its own event loop.

    ``start()`` returns once the port is bound (or raises); ``close()`` ends the
    open event streams and stops the server. Being a thread, it goes when the
    process goes: nothing outlives ``driftline up``.
    """

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.port = settings.dashboard.port
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stopped: asyncio.Event | None = None
        self._ready = threading.Event()
        self._error: BaseException | None = None

    @property
    def url(self) -> str:
        """Address of the page."""
        host = self.settings.dashboard.host
        shown = "127.0.0.1" if host in ("0.0.0.0", "") else host  # noqa: S104 - display only
        return f"http://{shown}:{self.port}/"

    def start(self, fallback_to_free_port: bool = False) -> str:
        """Serve in the background; return the URL.

        With ``fallback_to_free_port`` a busy configured port is replaced by a
        free one (the demo should not fail for a port); otherwise it is an error.
        """
        self._thread = threading.Thread(target=self._run, args=(fallback_to_free_port,),
                                        name="driftline-dashboard", daemon=True)
        self._thread.start()
        self._ready.wait(30)
        if self._error is not None:
            raise DriftlineError(f"dashboard.port: cannot serve on "
                                 f"{self.settings.dashboard.host}:{self.port} "
                                 f"({self._error})") from self._error
        return self.url

    def close(self) -> None:
        """Stop serving (open pages see the stream end)."""
        if self._loop is not None and self._stopped is not None and self._loop.is_running():
            self._loop.call_soon_threadsafe(self._stopped.set)
        if self._thread is not None:
            self._thread.join(10)

    def __enter__(self) -> Dashboard:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _run(self, fallback_to_free_port: bool) -> None:
        loop = asyncio.new_event_loop()
        self._loop = loop
        try:
            runner = loop.run_until_complete(self._bind(fallback_to_free_port))
        except BaseException as exc:  # noqa: BLE001 - handed to start()'s caller
            self._error = exc
            self._ready.set()
            loop.close()
            return
        self._ready.set()
        try:
            assert self._stopped is not None
            loop.run_until_complete(self._stopped.wait())
        finally:
            loop.run_until_complete(runner.cleanup())
            loop.close()

    async def _bind(self, fallback_to_free_port: bool) -> web.AppRunner:
        self._stopped = asyncio.Event()
        runner = web.AppRunner(make_app(self.settings), access_log=None, shutdown_timeout=2.0)
        await runner.setup()
        host = self.settings.dashboard.host
        if (host not in ("127.0.0.1", "::1", "localhost") and not self.settings.dashboard.token
                and not self.settings.dashboard.username):
            log.warning("the dashboard listens on %s without credentials: anyone who reaches "
                        "it reads it (set dashboard.token or dashboard.username/password)", host)
        try:
            await web.TCPSite(runner, host, self.port).start()
        except OSError as exc:
            if not (fallback_to_free_port and exc.errno == errno.EADDRINUSE):
                await runner.cleanup()
                raise
            log.warning("dashboard port %d is busy; using a free port", self.port)
            await web.TCPSite(runner, host, 0).start()
        self.port = int(runner.addresses[0][1])
        return runner


def start_dashboard(settings: Settings) -> Dashboard | None:
    """Start the dashboard for ``driftline up``/``demo``; ``None`` when ``port`` is -1."""
    if settings.dashboard.port < 0:
        return None
    dashboard = Dashboard(settings)
    dashboard.start(fallback_to_free_port=True)
    return dashboard


def serve(settings: Settings, stop: threading.Event) -> None:
    """``driftline dashboard``: serve against a running stack until ``stop`` is set."""
    try:
        redis_client(settings.redis_url, settings.redis, socket_timeout=5.0).ping()
    except redis.RedisError as exc:
        raise DriftlineError(f"redis_url: cannot reach {redacted(settings.redis_url)} ({exc}); "
                             "point DRIFTLINE_REDIS_URL at the stack's Redis") from exc
    if settings.dashboard.port < 0:
        raise DriftlineError("dashboard.port: expected a port (0 = any free port), got -1")
    with Dashboard(settings) as dashboard:
        print(f"driftline dashboard: {dashboard.url}  (hot view of group "
              f"{settings.group_id!r} in {redacted(settings.redis_url)}; Ctrl-C stops)", flush=True)
        stop.wait()
