"""The operational endpoints of the worker's web port: ``/healthz``, ``/readyz``, ``/metrics``.

* ``/healthz`` — liveness: the process answers, and (in a worker) its batch loop's
  thread runs. A failing liveness probe restarts the pod, so nothing outside the
  process (Redis, the broker) is checked here.
* ``/readyz`` — readiness: the consumer group has assigned this worker its
  partitions (possibly none, when the group has more workers than partitions), and
  Redis and the broker answer. ``driftline dashboard`` (no worker) checks Redis only.
* ``/metrics`` — the worker's Prometheus registry, in the text format.

They answer whoever reaches the port (:func:`streams.ui.access.access_middleware`
leaves them open): Prometheus and the kubelet carry no dashboard credentials.
"""

from __future__ import annotations

import asyncio
from typing import Any

import orjson
import redis
from aiohttp import web

from streams.runtime.worker_service import WorkerService
from streams.settings import Settings
from streams.state.connect import redis_client
from streams.ui.routes import Route

CHECK_TIMEOUT_S = 2.0
METRICS_CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


class Health:
    """What the probes read: the hosted worker service (if any) and Redis.

    Parameters
    ----------
    settings : Settings
        Where Redis is.
    service : WorkerService, optional
        The worker this process hosts; ``None`` for ``driftline dashboard``.

    Examples
    --------
    >>> from streams.settings import load_settings
    >>> Health(load_settings(environ={})).alive()
    {'alive': True}
    """

    def __init__(self, settings: Settings, service: WorkerService | None = None) -> None:
        self.settings = settings
        self.service = service
        self._redis = redis_client(settings.redis_url, settings.redis,
                                   socket_timeout=CHECK_TIMEOUT_S,
                                   socket_connect_timeout=CHECK_TIMEOUT_S)

    def alive(self) -> dict[str, Any]:
        """``{"alive": bool}``; false once a hosted worker's batch loop has ended."""
        if self.service is None:
            return {"alive": True}
        alive = self.service.running
        answer: dict[str, Any] = {"alive": alive}
        if not alive:
            answer["reason"] = ("the worker's batch loop has ended" if self.service.error is None
                                else f"the worker's batch loop failed: {self.service.error!r}")
        return answer

    def ready(self) -> dict[str, Any]:
        """The readiness checks and their verdict ``ready`` (blocking: Redis and broker calls)."""
        checks: dict[str, Any] = {"redis": self._redis_answers()}
        if self.service is not None:
            worker = self.service.worker
            checks["assigned"] = worker is not None and worker.assignments > 0
            checks["partitions"] = worker.partitions() if worker is not None else []
            checks["broker"] = (worker is not None
                                and worker.broker_reachable(CHECK_TIMEOUT_S))
            checks["alive"] = self.service.running
        ready = all(value for key, value in checks.items() if key != "partitions")
        return {"ready": ready, **checks}

    def metrics(self) -> bytes | None:
        """The hosted worker's metrics (``None`` before it exists, or without one)."""
        if self.service is None or self.service.worker is None:
            return None
        return self.service.worker.metrics.exposition()

    def _redis_answers(self) -> bool:
        try:
            return bool(self._redis.ping())
        except redis.RedisError:
            return False


HEALTH = web.AppKey("health", Health)


def _json(value: dict[str, Any], ok: bool) -> web.Response:
    return web.Response(body=orjson.dumps(value), status=200 if ok else 503,
                        content_type="application/json", headers={"Cache-Control": "no-cache"})


async def _healthz(request: web.Request) -> web.Response:
    answer = request.app[HEALTH].alive()
    return _json(answer, answer["alive"])


async def _readyz(request: web.Request) -> web.Response:
    answer = await asyncio.to_thread(request.app[HEALTH].ready)
    return _json(answer, answer["ready"])


async def _metrics(request: web.Request) -> web.Response:
    body = await asyncio.to_thread(request.app[HEALTH].metrics)
    if body is None:
        raise web.HTTPServiceUnavailable(text="no worker metrics yet\n")
    return web.Response(body=body, headers={"Content-Type": METRICS_CONTENT_TYPE})


PROBE_ROUTES: tuple[Route, ...] = (Route("/healthz", _healthz), Route("/readyz", _readyz))
METRICS_ROUTES: tuple[Route, ...] = (Route("/metrics", _metrics),)
OPEN_PATHS = frozenset(route.path for route in PROBE_ROUTES + METRICS_ROUTES)
"""Paths the dashboard's access rules leave open."""

__all__ = ["HEALTH", "METRICS_ROUTES", "OPEN_PATHS", "PROBE_ROUTES", "Health"]
