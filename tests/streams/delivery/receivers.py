"""Local HTTP receivers that record every request, and alert events to send them."""

from __future__ import annotations

import asyncio
import hashlib
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import orjson
from aiohttp import web

from streams.stack.embedded import free_port


def make_alert(key: str, status: str = "firing", severity: str = "warning",
               model: str = "churn", ts: float = 1.7e9) -> dict[str, Any]:
    return {
        "schema_version": 1,
        "alert_id": hashlib.sha256(f"{key}|{status}|{ts}".encode()).hexdigest()[:32],
        "dedup_key": key, "model_id": model, "model_version": "v3", "kind": "data_drift",
        "status": status, "severity": severity, "feature": key.split("|")[3], "segment": None,
        "detector": "ks", "statistic": 0.31, "threshold": 0.1,
        "window": {"start_ts": ts - 60, "end_ts": ts, "events": 500},
        "reference": {"events": 1000}, "explanation": f"{key} moved ({status})", "ts": ts,
    }


@dataclass
class Request:
    body: bytes
    headers: dict[str, str]
    at: float
    status: int = 0

    @property
    def alert_id(self) -> str:
        return self.headers.get("X-Driftline-Alert-Id", "")

    def json(self) -> Any:
        return orjson.loads(self.body)


# What a receiver answers a request: (status, extra headers).
Respond = Callable[[Request], tuple[int, dict[str, str]]]


@dataclass
class RecordingReceiver:
    """An aiohttp server on 127.0.0.1 (own thread and loop) recording every request.

    ``stop()`` closes the port (connections are refused) and ``start()`` opens the
    same port again: a receiver that is down, then back.
    """

    respond: Respond = field(default=lambda _request: (200, {}))
    port: int = field(default_factory=free_port)
    requests: list[Request] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.lock = threading.Lock()
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        self.runner: web.AppRunner | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hook"

    async def _handle(self, http_request: web.Request) -> web.Response:
        request = Request(await http_request.read(), dict(http_request.headers), time.monotonic())
        with self.lock:
            self.requests.append(request)
        status, headers = self.respond(request)
        request.status = status
        return web.Response(status=status, headers=headers, text="ok" if status < 300 else "no")

    async def _start(self) -> None:
        app = web.Application()
        app.router.add_post("/hook", self._handle)
        self.runner = web.AppRunner(app)
        await self.runner.setup()
        await web.TCPSite(self.runner, "127.0.0.1", self.port).start()

    async def _stop(self) -> None:
        if self.runner is not None:
            await self.runner.cleanup()
            self.runner = None

    def start(self) -> RecordingReceiver:
        asyncio.run_coroutine_threadsafe(self._start(), self.loop).result(10)
        return self

    def stop(self) -> None:
        asyncio.run_coroutine_threadsafe(self._stop(), self.loop).result(10)

    def close(self) -> None:
        self.stop()
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)

    def ok(self) -> list[Request]:
        with self.lock:
            return [r for r in self.requests if 200 <= r.status < 300]
